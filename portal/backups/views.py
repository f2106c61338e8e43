"""The backups page, download, one-click restore and the undo of an import.

Who may do what: every member sees the list (dates, groups, counts - no personal data);
download, restore and undo need at least the editor role, because a download holds the
personal data of the whole group and a restore or undo changes it. CSRF protection is
global (every POST)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock, excel_csv, i18n
from portal.accounts.models import Account, Role
from portal.backups import read, tasks
from portal.backups.models import Backup, RestoreMode, UndoStatus
from portal.backups.read import (
    BackupUnreadable,
    download_filenames,
    download_stream,
    live_backup,
    record_download,
)
from portal.backups.restore import (
    RestoreRefused,
    find_target,
    latest_restores,
    request_restore,
    restore_preview,
    restore_running,
)
from portal.backups.retention import RETENTION_DAYS
from portal.backups.scratch import Preview
from portal.backups.undo import (
    UndoRefused,
    latest_undo,
    request_undo,
    undo_blocker,
    undo_message,
    undo_preview,
)
from portal.contacts import queries
from portal.extensions import db
from portal.imports.models import ImportJob
from portal.template_helpers import BACKUP_REASON_LABELS, expiry_text, human_size
from portal.tenancy import can, get_owned_or_404, require_role, tenant_blueprint

bp = tenant_blueprint("backups", __name__)

RESTORE_MODE_LABELS = {
    RestoreMode.EXACT.value: _l("set back to the backup"),
    RestoreMode.ADD_MISSING.value: _l("only what was missing added back"),
}


def _live_or_redirect(backup_id: int):
    """The backup, or a redirect to the list when it has expired meanwhile."""
    backup = get_owned_or_404(Backup, backup_id)
    if backup.expires_at <= clock.now():
        flash(_("This backup has expired and is being deleted."), "warning")
        return None
    return backup


@bp.route("/backups")
def list_backups():
    backups = read.list_backups(g.account)
    existing = {group.id for group in queries.groups_of(g.account)}
    now, tz = clock.now(), i18n.current_timezone()
    return render_template(
        "backups/list.html",
        backups=backups,
        existing_groups=existing,
        reason_labels=BACKUP_REASON_LABELS,
        expiry=lambda b: expiry_text(b, now, tz),
        human_size=human_size,
        can_use=can(Role.EDITOR),
        retention_days=RETENTION_DAYS,
        restores=latest_restores(g.account.id),
        restore_modes=RESTORE_MODE_LABELS,
        imports_of={
            job.id: job
            for job in db.session.scalars(
                db.select(ImportJob).where(
                    ImportJob.account_id == g.account.id,
                    ImportJob.id.in_([b.import_id for b in backups if b.import_id]),
                )
            )
        },
    )


@bp.route("/backups/<int:backup_id>/download")
@require_role(Role.EDITOR)
def download_backup(backup_id: int):
    backup = _live_or_redirect(backup_id)
    if backup is None:
        return redirect(url_for("backups.list_backups"))
    try:
        stream = download_stream(backup, excel=excel_csv.for_reader(g.account.id))
    except BackupUnreadable as exc:
        flash(str(exc), "danger")
        return redirect(url_for("backups.list_backups"))
    record_download(backup, actor=current_user, ip=request.remote_addr)
    db.session.commit()
    name, readable = download_filenames(backup, i18n.current_timezone())
    return Response(
        stream_with_context(stream),
        content_type=excel_csv.CONTENT_TYPE,
        headers={
            "Content-Disposition": excel_csv.content_disposition(name, readable),
            "Cache-Control": "no-store",
        },
    )


def _preview_or_message(make_preview):
    """The dry run, or None with a flashed message when the backup cannot be read."""
    try:
        return make_preview()
    except BackupUnreadable as exc:
        flash(str(exc), "danger")
        return None


@bp.route("/backups/<int:backup_id>/restore", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def restore_backup(backup_id: int):
    """GET: the confirmation page, filled by a dry run (nothing is written). POST: the
    chosen mode is restored on a worker; it plans again and records what it did."""
    backup = _live_or_redirect(backup_id)
    if backup is None:
        return redirect(url_for("backups.list_backups"))
    if request.method == "POST":
        return _confirm_restore(backup)
    running = restore_running(backup)
    preview = None if running else _preview_or_message(lambda: restore_preview(backup))
    if preview is None and not running:
        return redirect(url_for("backups.list_backups"))
    target = find_target(backup)
    return render_template(
        "backups/confirm_restore.html",
        backup=backup,
        preview=preview,
        running=running,
        target=target,
        modes=RestoreMode,
        reason_labels=BACKUP_REASON_LABELS,
    )


def expected_counts(form, mode: str) -> dict[str, int]:
    """The counts the confirmation page showed for the chosen mode (its hidden fields),
    so that the restore can say when the group changed in between."""
    expected = {}
    for key in Preview({}).outcome(RestoreMode.EXACT):
        value = form.get(f"expected_{mode}_{key}", "")
        if value.isdigit():
            expected[key] = int(value)
    return expected


def flash_restore_outcome(restore) -> None:
    """After the enqueue (at once in tests and with a synchronous queue): what happened."""
    db.session.refresh(restore)
    if restore.status == UndoStatus.FINISHED:
        flash(_("The backup has been restored."), "success")
    elif restore.status == UndoStatus.FAILED:
        flash(restore.error or _("The restore failed. Nothing was changed."), "danger")
    else:
        flash(_("The backup is being restored. Reload this page in a moment."), "info")


def flash_undo_outcome(undo) -> None:
    db.session.refresh(undo)
    if undo.status == UndoStatus.FINISHED:
        flash(_("The import has been undone."), "success")
    elif undo.status == UndoStatus.FAILED:
        flash(undo_message(undo), "danger")
    else:
        flash(_("The import is being undone. Reload this page in a moment."), "info")


def _confirm_restore(backup: Backup):
    mode = request.form.get("mode", "")
    expected = expected_counts(request.form, mode)
    try:
        restore = request_restore(backup, mode=mode, expected=expected, actor=current_user)
    except RestoreRefused as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("backups.restore_backup", backup_id=backup.id))
    tasks.enqueue_restore(restore)
    flash_restore_outcome(restore)
    return redirect(url_for("backups.list_backups", _anchor=f"backup-{backup.id}"))


@bp.route("/backups/undo/<int:import_id>", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def undo_import(import_id: int):
    """GET: the confirmation page with the undo's dry run. POST: the undo."""
    job = get_owned_or_404(ImportJob, import_id)
    back = request.args.get("back") == "history"
    if request.method == "GET":
        blocker = undo_blocker(job)
        preview = None
        if blocker is None:
            preview = _preview_or_message(lambda: undo_preview(job))
            if preview is None:
                return redirect(url_for("imports.show_import", import_id=job.id))
        return render_template(
            "backups/confirm_undo.html",
            job=job,
            blocker=blocker,
            preview=preview,
            backup=live_backup(job.account_id, job.backup_id),
        )
    try:
        undo = request_undo(job, actor=current_user, ip=request.remote_addr)
    except UndoRefused as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("imports.show_import", import_id=job.id))
    tasks.enqueue_undo(undo)
    flash_undo_outcome(undo)
    if back:
        return redirect(url_for("imports.list_imports"))
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.app_context_processor
def _undo_helpers():
    """For the import summary (templates/imports/summary.html includes backups/_undo.html)."""

    def undoable(job: ImportJob) -> bool:
        """The history and the backups page offer "Undo this import" (editors)."""
        return job.source == "ui" and undo_blocker(job) is None

    def import_undo(job: ImportJob) -> dict:
        undo = latest_undo(job)
        return {
            "backup": live_backup(job.account_id, job.backup_id),
            "undo": undo,
            "blocker": undo_blocker(job),
            "message": undo_message(undo) if undo is not None else "",
        }

    return {"import_undo": import_undo, "undoable": undoable}


# --- the account's home page (added by the area's init_app) ------------------------------


def home_panel(account: Account, now: datetime) -> dict[str, Any]:
    """The newest backups."""
    return {
        "backups": read.latest_backups(account, now=now),
        "backup_reasons": BACKUP_REASON_LABELS,
    }
