"""Integrations page: the linked provider, the tag-compatibility report and mapping, the
full sync, the delivery log, and lossless exports (and importing them elsewhere).

Owners and admins link a provider and accept the tag mapping; there is no "unlink":
the page says to contact the support team, who reset it from the support console.
Editors export and import packages; viewers read."""

from __future__ import annotations

import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

from flask import (
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal import excel_csv, i18n
from portal.accounts.models import Role
from portal.contacts import queries
from portal.contacts.models import Group
from portal.core import audit
from portal.core.errors import ServiceError
from portal.core.forms import EmptyForm
from portal.core.storage import StorageError
from portal.extensions import db
from portal.imports import tasks as import_tasks
from portal.integrations import (
    delivery,
    export,
    forms,
    profiles,
    service,
    sync,
    targets,
    tasks,
)
from portal.integrations.models import EventStatus, ExportRun, OutgoingEvent, SyncRun
from portal.tenancy import can, get_owned_or_404, require_role, tenant_blueprint

bp = tenant_blueprint("integrations", __name__)
log = logging.getLogger(__name__)


def _export_form():
    form = forms.ExportForm()
    form.group.choices = [SelectChoice("", _("All contacts"))] + [
        SelectChoice(str(grp.id), grp.name) for grp in queries.groups_of(g.account)
    ]
    return form


@bp.route("/integrations")
def overview():
    link = service.current_link(g.account)
    latest_sync = sync.latest(link) if link else None
    return render_template(
        "integrations/overview.html",
        link=link,
        profile=profiles.PROFILES[link.profile] if link else None,
        profiles=profiles.PROFILES,
        link_form=forms.LinkForm(formdata=None),
        sync_run=latest_sync,
        sync_progress=sync.progress(latest_sync) if latest_sync else None,
        can_resume_sync=bool(latest_sync and sync.can_resume(latest_sync)),
        counts=delivery.counts_for(link) if link else None,
        log=delivery.log_for(link) if link else [],
        past=[p for p in service.past_links(g.account) if not p.is_linked],
        export_form=_export_form(),
        package_form=forms.PackageForm(formdata=None),
        exports=export.recent(g.account),
        can_configure=can(Role.ADMIN),
        can_export=can(Role.EDITOR),
        action_form=EmptyForm(),
        delivery_error=targets.error_text,
    )


@bp.route("/integrations/link", methods=["POST"])
@require_role(Role.ADMIN)
def link():
    form = forms.LinkForm()
    if form.validate_on_submit():
        try:
            service.link_provider(
                g.account,
                profile=form.profile.data,
                url=form.url.data,
                actor=current_user,
                ip=request.remote_addr,
            )
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("integrations.overview"))
        db.session.commit()
        flash(
            _("The provider is linked. Check how your tags will travel, then start the sync."),
            "success",
        )
        return redirect(url_for("integrations.tags"))
    for errors in form.errors.values():
        for error in errors:
            flash(error, "danger")
    return redirect(url_for("integrations.overview"))


@bp.route("/integrations/tags", methods=["GET", "POST"])
def tags():
    """The tag-compatibility report: for the linked provider (editable, to accept), or
    for any provider shape before switching (?profile=, read-only)."""
    link = service.current_link(g.account)
    profile_key = request.args.get("profile") or (
        link.profile if link else profiles.DEFAULT_PROFILE
    )
    if profile_key not in profiles.PROFILES:
        abort(404)
    editable = link is not None and profile_key == link.profile and can(Role.ADMIN)
    saved = {t: mp.remote_name for t, mp in service.saved_mapping(link).items()} if link else {}
    rows = service.compatibility_report(g.account, profile_key, saved if editable else None)
    form = forms.mapping_form(rows)
    errors: dict[int, str] = {}
    if request.method == "POST":
        if not editable:
            abort(403)
        if form.validate_on_submit():
            names = {row.tag_id: form[f"tag_{row.tag_id}"].data or "" for row in rows}
            try:
                service.accept_mapping(link, names, actor=current_user, ip=request.remote_addr)
            except service.MappingInvalid as exc:
                db.session.rollback()
                errors = exc.errors
                rows = service.compatibility_report(g.account, profile_key, names)
            else:
                run = sync.start(link, actor=current_user)
                tasks.enqueue_sync(run)
                flash(_("The mapping is saved. The full sync has started."), "success")
                return redirect(url_for("integrations.overview", _anchor="sync"))
    return render_template(
        "integrations/tags.html",
        link=link,
        profile=profiles.PROFILES[profile_key],
        profiles=profiles.PROFILES,
        rows=rows,
        form=form,
        errors=errors,
        editable=editable,
        problem_labels=profiles.PROBLEMS,
    )


@bp.route("/integrations/sync/<int:sync_id>/status")
def sync_status(sync_id: int):
    return jsonify(sync.progress(get_owned_or_404(SyncRun, sync_id)))


@bp.route("/integrations/sync/<int:sync_id>/resume", methods=["POST"])
@require_role(Role.ADMIN)
def resume_sync(sync_id: int):
    run = get_owned_or_404(SyncRun, sync_id)
    if EmptyForm().validate_on_submit() and sync.can_resume(run):
        tasks.enqueue_sync(run)
        flash(_("The sync continues where it stopped."), "info")
    return redirect(url_for("integrations.overview", _anchor="sync"))


@bp.route("/integrations/events/<int:event_id>/resend", methods=["POST"])
@require_role(Role.ADMIN)
def resend_event(event_id: int):
    event = get_owned_or_404(OutgoingEvent, event_id)
    if EmptyForm().validate_on_submit() and event.status == EventStatus.FAILED.value:
        delivery.resend(event)
        db.session.commit()
        tasks.schedule_delivery(event.link_id)
        flash(_("The event is sent again."), "info")
    return redirect(url_for("integrations.overview", _anchor="deliveries"))


# --- exports ------------------------------------------------------------------------------


@bp.route("/integrations/exports", methods=["POST"])
@require_role(Role.EDITOR)
def start_export():
    form = _export_form()
    if not form.validate_on_submit():
        abort(400)
    group = None
    if form.group.data:
        group = get_owned_or_404(Group, form.group.data)  # "abc", 2**64: a 404, not a 500
    run = export.start(g.account, fmt=form.format.data, group=group, actor=current_user)
    db.session.commit()
    tasks.enqueue_export(run)
    return redirect(url_for("integrations.show_export", export_id=run.id))


@bp.route("/integrations/exports/<int:export_id>")
@require_role(Role.EDITOR)
def show_export(export_id: int):
    run = get_owned_or_404(ExportRun, export_id)
    return render_template("integrations/export.html", run=run, available=export.downloadable(run))


@bp.route("/integrations/exports/<int:export_id>/status")
@require_role(Role.EDITOR)
def export_status(export_id: int):
    run = get_owned_or_404(ExportRun, export_id)
    percent = 100 if run.status == "finished" else min(99, 100 * run.processed // max(run.total, 1))
    return jsonify({"status": run.status, "percent": percent, "processed": run.processed})


@bp.route("/integrations/exports/<int:export_id>/download")
@require_role(Role.EDITOR)
def download_export(export_id: int):
    run = get_owned_or_404(ExportRun, export_id)
    if not export.downloadable(run):
        abort(410)
    files = ExitStack()  # the file on this machine until the response is sent
    try:
        path = files.enter_context(export.export_copy(run))
    except StorageError:
        log.exception("export %s: the stored file cannot be read", run.id)
        abort(410)

    audit.record(
        "export.downloaded",
        account=g.account,
        actor=current_user,
        object_type="export",
        object_id=run.id,
        details={"format": run.format, "group": run.group_name},
        ip=request.remote_addr,
    )
    db.session.commit()
    zone = i18n.current_timezone()
    name, readable = export.download_names(run, g.account, zone)
    if run.format != "csv":  # JSON Lines stays the machine format
        response = send_file(path, as_attachment=True, download_name=readable)
    else:
        stream = export.excel_stream(run, path, i18n.current_language(), zone)
        response = Response(
            stream_with_context(stream),
            content_type="application/zip" if run.all_contacts else excel_csv.CONTENT_TYPE,
            headers={
                "Content-Disposition": excel_csv.content_disposition(name, readable),
                "Cache-Control": "no-store",
            },
        )
    response.call_on_close(files.close)
    return response


@bp.route("/integrations/import-package", methods=["POST"])
@require_role(Role.EDITOR)
def import_package():
    form = forms.PackageForm()
    upload = request.files.get("file")
    if not form.validate_on_submit() or upload is None or not upload.filename:
        flash(_("Please choose the export file."), "danger")
        return redirect(url_for("integrations.overview", _anchor="exports"))
    with tempfile.TemporaryDirectory(prefix="portal-upload-") as folder:
        path = Path(folder) / "package.zip"
        upload.save(path)
        try:
            jobs = export.import_package(g.account, path, actor=current_user, source="ui")
        except ServiceError as exc:  # ImportRefused included
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("integrations.overview", _anchor="exports"))
    db.session.commit()
    for job in jobs:  # the same check step as any import: nothing is written before it
        import_tasks.enqueue_check(job)
    flash(
        ngettext(
            "%(num)d import is being checked. Confirm it on its check page.",
            "%(num)d imports are being checked (one per group). Confirm each on its check page.",
            len(jobs),
        ),
        "success",
    )
    if len(jobs) == 1:
        return redirect(url_for("imports.show_import", import_id=jobs[0].id))
    return redirect(url_for("imports.list_imports"))
