"""Import pages: upload, mapping, dry run, confirmation, progress, summary, history."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal, format_timedelta
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal import excel_csv, i18n
from portal.accounts.models import Account, Role
from portal.contacts import queries as contact_queries
from portal.contacts import service as contacts
from portal.contacts.models import Group
from portal.extensions import db
from portal.imports import check, forms, queries, service, tasks
from portal.imports import mapping as m
from portal.imports.models import ImportJob, ImportStatus
from portal.imports.reasons import message, skip_label
from portal.safe_csv import safe_row
from portal.tenancy import get_owned_or_404, require_role, tenant_blueprint

bp = tenant_blueprint("imports", __name__)


def _target_choices() -> list[tuple[str, str]]:
    choices = [(value, str(label)) for value, label in forms.TARGET_LABELS.items()]
    for key, field in service.custom_fields(g.account.id).items():
        choices.append((f"{m.CUSTOM_PREFIX}{key}", _("Field: %(label)s", label=field.label)))
    return choices


def _new_field_choices(column: str) -> list[tuple[str, str]]:
    """A column without a target can become a custom field in the same step."""
    name = column.strip() or _("(no name)")
    return [
        (f"{m.NEW_FIELD_PREFIX}{kind}", str(text) % {"name": name})
        for kind, text in forms.NEW_FIELD_LABELS.items()
    ]


@bp.route("/imports")
def list_imports():
    return render_template("imports/list.html", jobs=queries.history(g.account))


@bp.route("/imports/new", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def new_import():
    form = forms.UploadForm()
    groups = contact_queries.groups_of(g.account)
    form.group.choices = [SelectChoice("", _("— choose a group —"))] + [
        SelectChoice(str(x.id), x.name) for x in groups
    ]
    if request.method == "GET" and request.args.get("group"):
        form.group.data = request.args["group"]
    if form.validate_on_submit():
        group = _chosen_group(form)
        if group is not None:
            job = _store_upload(form, group)
            if job is not None:
                return redirect(url_for("imports.show_import", import_id=job.id))
    return render_template("imports/new.html", form=form)


def _chosen_group(form: forms.UploadForm) -> Group | None:
    if form.new_group.data and form.new_group.data.strip():
        try:
            return contacts.create_group(
                g.account,
                form.new_group.data,
                actor=current_user,
                ip=request.remote_addr,
                source="ui",
            )
        except contacts.ServiceError as exc:
            form.new_group.errors.append(str(exc))
            return None
    if form.group.data:
        return get_owned_or_404(Group, int(form.group.data))
    form.group.errors.append(_("Choose a group or name a new one."))
    return None


def _store_upload(form: forms.UploadForm, group: Group) -> ImportJob | None:
    upload = form.file.data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        upload.save(path)
        try:
            job = service.create_import(
                g.account,
                actor=current_user,
                group=group,
                source_path=path,
                filename=upload.filename or "upload",
                source="ui",
            )
        except service.ImportRefused as exc:
            db.session.rollback()
            form.file.errors.append(str(exc))
            return None
    db.session.commit()
    return job


@bp.route("/imports/<int:import_id>")
def show_import(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    context = {
        "job": job,
        "progress": queries.progress(job),
        "message": message,
        "problem_text": check.problem_text,
        "detail_text": detail_text,
        "skip_label": skip_label,
        "recognised": check.recognised_as(job),
        "target_labels": dict(_target_choices()),
        "meaning_labels": check.MEANING_LABELS,
        "date_format_labels": check.DATE_FORMAT_LABELS,
        "mode_labels": forms.MODE_LABELS,
        "can_resume": service.can_resume(job),
        "file_problem": service.file_problem(job),
    }
    if job.status == ImportStatus.UPLOADED:
        form = forms.MappingForm(mode=job.mode, import_consent=job.import_consent)
        return render_template(
            "imports/mapping.html",
            form=form,
            choices=_target_choices(),
            new_field_choices=_new_field_choices,
            preview=service.preview_rows(job),
            **context,
        )
    if job.status == ImportStatus.READY:
        sample = service.preview_rows(job, check.SAMPLE_ROWS)
        return render_template(
            "imports/confirm.html",
            form=forms.MappingForm(),
            consent_columns=check.consent_columns(job),
            effects=check.consent_effects(
                job, job.dry_run.get("consent", {}), job.dry_run.get("consent_examples", {})
            ),
            date_columns=check.date_columns(job, sample, g.account.timezone),
            warnings=queries.problems(job, limit=check.WARNINGS_SHOWN, kind="warning"),
            **context,
        )
    if job.status == ImportStatus.FINISHED:
        return render_template(
            "imports/summary.html",
            problems=queries.problems(job, limit=50),
            effects=check.consent_effects(job, job.consent_counts or {}),
            **context,
        )
    return render_template("imports/progress.html", **context)


@bp.route("/imports/<int:import_id>/mapping", methods=["POST"])
@require_role(Role.EDITOR)
def save_mapping(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    form = forms.MappingForm()
    if not form.validate_on_submit():
        abort(400)
    mapping = [request.form.get(f"column-{i}", "") for i in range(len(job.header))]
    return _configure_and_check(
        job,
        mapping=mapping,
        mode=form.mode.data,
        import_consent=form.import_consent.data,
        restore_deleted=form.restore_deleted.data,
    )


def _configure_and_check(job: ImportJob, **options) -> Response:
    """Save the mapping and options, then (re)check the file; a refusal is flashed."""
    try:
        service.configure(job, actor=current_user, **options)
    except service.ImportRefused as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("imports.show_import", import_id=job.id))
    db.session.commit()
    tasks.enqueue_check(job)
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.route("/imports/<int:import_id>/reading", methods=["POST"])
@require_role(Role.EDITOR)
def change_reading(import_id: int):
    """From the check step: how dates are read and what unknown words mean; then the
    file is checked again."""
    job = get_owned_or_404(ImportJob, import_id)
    if not forms.MappingForm().validate_on_submit() or job.status != ImportStatus.READY:
        return redirect(url_for("imports.show_import", import_id=job.id))
    formats = {
        str(i): request.form[f"date-{i}"]
        for i in range(len(job.header))
        if f"date-{i}" in request.form
    }
    meanings: dict[str, dict[str, str]] = {}
    for name, meaning in request.form.items():
        if name.startswith("meaning-"):
            _, position, index = name.split("-", 2)
            word = request.form.get(f"word-{position}-{index}", "")
            meanings.setdefault(position, {})[word] = meaning
    return _configure_and_check(
        job,
        mapping=job.mapping,
        mode=job.mode,
        import_consent=job.import_consent,
        restore_deleted=job.restore_deleted,
        date_formats=formats,
        date_zone=request.form.get("date_zone", job.date_zone),
        value_meanings=meanings,
    )


@bp.route("/imports/<int:import_id>/discard", methods=["POST"])
@require_role(Role.EDITOR)
def discard_import(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    if forms.MappingForm().validate_on_submit():
        try:
            service.discard(job, actor=current_user, ip=request.remote_addr)
        except service.ImportRefused as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("imports.show_import", import_id=job.id))
        db.session.commit()
        flash(_("The import was discarded; its file was deleted."), "info")
    return redirect(url_for("imports.list_imports"))


@bp.route("/imports/<int:import_id>/edit", methods=["POST"])
@require_role(Role.EDITOR)
def edit_mapping(import_id: int):
    """Back from the confirmation to the mapping."""
    job = get_owned_or_404(ImportJob, import_id)
    if forms.MappingForm().validate_on_submit() and service.back_to_mapping(job):
        db.session.commit()
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.route("/imports/<int:import_id>/start", methods=["POST"])
@require_role(Role.EDITOR)
def start_import(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    if forms.MappingForm().validate_on_submit() and job.status == ImportStatus.READY:
        tasks.enqueue_run(job)
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.route("/imports/<int:import_id>/resume", methods=["POST"])
@require_role(Role.EDITOR)
def resume_import(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    if forms.MappingForm().validate_on_submit() and service.can_resume(job):
        if job.started_at is not None:
            tasks.enqueue_run(job)
        else:
            tasks.enqueue_check(job)
        flash(_("The import continues where it stopped."), "info")
    return redirect(url_for("imports.show_import", import_id=job.id))


@bp.route("/imports/<int:import_id>/status")
def import_status(import_id: int):
    job = get_owned_or_404(ImportJob, import_id)
    status_text = forms.label(forms.STATUS_LABELS, job.status)
    progress = queries.progress(job)
    return jsonify({**progress, "status_text": status_text, "detail_text": detail_text(progress)})


def detail_text(progress: dict) -> str:
    """The phase, rows done of all, and the time left, in the reader's language."""
    text = forms.label(forms.PHASE_LABELS, progress["phase"])
    if progress["phase"] in ("check", "import") and progress["rows_total"]:
        text += " · " + _(
            "%(done)s of %(total)s lines",
            done=format_decimal(progress["rows_done"]),
            total=format_decimal(progress["rows_total"]),
        )
    if progress["eta_seconds"]:
        text += " · " + _(
            "about %(time)s left",
            time=format_timedelta(timedelta(seconds=progress["eta_seconds"]), threshold=1.1),
        )
    return text


@bp.route("/imports/<int:import_id>/problems.csv")
@require_role(Role.EDITOR)  # the original cells of the rows: personal data, as a backup
def download_problems(import_id: int):
    """Failed rows: line, reason in the reader's language, then the original cells."""
    job = get_owned_or_404(ImportJob, import_id)
    out = io.StringIO()
    out.write("\ufeff")
    # the delimiter of the uploaded file (these are its rows), else the reader's language's
    delimiter = job.delimiter if job.delimiter in (",", ";") else None
    writer = csv.writer(
        out, delimiter=delimiter or excel_csv.delimiter_for(i18n.current_language())
    )
    writer.writerow(safe_row([_("Line"), _("Reason"), *job.header]))
    for problem in queries.problems(job):
        writer.writerow(
            safe_row([str(problem.line), check.problem_text(problem, job.source), *problem.cells])
        )
    name = f"import-{job.id}-failed-rows.csv"
    return Response(
        out.getvalue(),
        content_type=excel_csv.CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the account's home page (added by the area's init_app) ------------------------------


def home_panel(account: Account, now: datetime) -> dict[str, Any]:
    """The imports still running or waiting, and the latest ended ones."""
    return {
        "imports_unfinished": queries.unfinished(account),
        "imports_ended": queries.latest_ended(account),
        "import_percent": queries.percent,
    }
