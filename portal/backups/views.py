"""The backups page, download, one-click restore and the undo of an import.

Who may do what: every member sees the list (dates, groups, counts - no personal data);
download, restore and undo need at least the editor role, because a download holds the
personal data of the whole group and a restore or undo changes it. CSRF protection is
global (every POST)."""

from __future__ import annotations

from flask import (
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock, excel_csv, i18n
from portal.accounts.models import Role
from portal.backups import service, tasks
from portal.backups.models import Backup, UndoStatus
from portal.contacts import service as contacts
from portal.extensions import db
from portal.imports import service as imports
from portal.imports import tasks as import_tasks
from portal.imports.models import ImportJob
from portal.tenancy import can, get_owned_or_404, require_role, tenant_blueprint

bp = tenant_blueprint("backups", __name__)


def _live_or_redirect(backup_id: int):
    """The backup, or a redirect to the list when it has expired meanwhile."""
    backup = get_owned_or_404(Backup, backup_id)
    if backup.expires_at <= clock.now():
        flash(_("This backup has expired and is being deleted."), "warning")
        return None
    return backup


@bp.route("/backups")
def list_backups():
    backups = service.list_backups(g.account)
    existing = {group.id for group in contacts.groups_of(g.account)}
    now, tz = clock.now(), i18n.current_timezone()
    return render_template(
        "backups/list.html",
        backups=backups,
        existing_groups=existing,
        reason_labels=service.REASON_LABELS,
        expiry=lambda b: service.expiry_text(b, now, tz),
        human_size=service.human_size,
        can_use=can(Role.EDITOR),
        retention_days=service.RETENTION_DAYS,
    )


@bp.route("/backups/<int:backup_id>/download")
@require_role(Role.EDITOR)
def download_backup(backup_id: int):
    backup = _live_or_redirect(backup_id)
    if backup is None:
        return redirect(url_for("backups.list_backups"))
    try:
        stream = service.download_stream(backup, excel=excel_csv.for_reader(g.account.id))
    except service.BackupUnreadable as exc:
        flash(str(exc), "danger")
        return redirect(url_for("backups.list_backups"))
    service.record_download(backup, actor=current_user, ip=request.remote_addr)
    db.session.commit()
    name, readable = service.download_filenames(backup, i18n.current_timezone())
    return Response(
        stream_with_context(stream),
        content_type=excel_csv.CONTENT_TYPE,
        headers={
            "Content-Disposition": excel_csv.content_disposition(name, readable),
            "Cache-Control": "no-store",
        },
    )


@bp.route("/backups/<int:backup_id>/restore", methods=["POST"])
@require_role(Role.EDITOR)
def restore_backup(backup_id: int):
    backup = _live_or_redirect(backup_id)
    if backup is None:
        return redirect(url_for("backups.list_backups"))
    try:
        job = service.restore(backup, actor=current_user, ip=request.remote_addr)
    except (service.BackupUnreadable, contacts.ServiceError, imports.ImportError_) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("backups.list_backups"))
    import_tasks.enqueue_run(job)  # commits the import row first
    flash(
        _(
            "The backup of “%(name)s” is being restored into the group “%(group)s”. "
            "Unsubscribed contacts stay unsubscribed.",
            name=backup.group_name,
            group=job.group_name,
        ),
        "info",
    )
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.route("/backups/undo/<int:import_id>", methods=["POST"])
@require_role(Role.EDITOR)
def undo_import(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    try:
        undo = service.request_undo(job, actor=current_user, ip=request.remote_addr)
    except service.UndoRefused as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("imports.show_import", import_id=job.id))
    tasks.enqueue_undo(undo)
    db.session.refresh(undo)
    if undo.status == UndoStatus.FINISHED:
        flash(_("The import has been undone."), "success")
    elif undo.status == UndoStatus.FAILED:
        flash(service.undo_message(undo), "danger")
    else:
        flash(_("The import is being undone. Reload this page in a moment."), "info")
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.app_context_processor
def _undo_helpers():
    """For the import summary (templates/imports/summary.html includes backups/_undo.html)."""

    def import_undo(job: ImportJob) -> dict:
        undo = service.latest_undo(job)
        return {
            "backup": service.live_backup(job.account_id, job.backup_id),
            "undo": undo,
            "blocker": service.undo_blocker(job),
            "message": service.undo_message(undo) if undo is not None else "",
        }

    return {"import_undo": import_undo}
