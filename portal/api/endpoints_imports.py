"""/api/v1/imports (start from a file or from JSON rows, read status and counters) and
/api/v1/backups (list, download).

An API import runs on the same engine as the portal's, with source "api": it makes no
backup first. JSON rows are written to a CSV file in the portal's own import format
and then imported like an upload, so both paths validate and report rows alike."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, g, jsonify, request, stream_with_context, url_for
from flask_babel import lazy_gettext as _l

from portal import excel_csv
from portal.api import schemas as s
from portal.api.core import ApiError, Param, actor, client_ip, operation, parse_query
from portal.api.serialize import iso, owned_or_404
from portal.backups import read
from portal.backups.models import Backup
from portal.backups.read import (
    BackupUnreadable,
    download_filenames,
    download_stream,
    live_backup,
    record_download,
)
from portal.contacts.models import Group
from portal.contacts.service import TAG_SEPARATORS
from portal.core import audit
from portal.extensions import db
from portal.imports import queries as import_queries
from portal.imports import service as imports
from portal.imports import tasks as import_tasks
from portal.imports.check import problem_text
from portal.imports.models import ImportJob
from portal.imports.portal_format import header_for
from portal.safe_csv import safe_row

SOURCE = "api"
PROBLEMS_SHOWN = 100


def import_json(job: ImportJob) -> dict[str, Any]:
    progress = import_queries.progress(job)
    return {
        "id": job.id,
        "status": job.status,
        "finished": bool(progress["finished"]),
        "percent": int(progress["percent"]),
        "group_id": job.group_id,
        "group_name": job.group_name or "",
        "source": job.source,
        "mode": job.mode,
        "import_consent": bool(job.import_consent),
        "restore_deleted": bool(job.restore_deleted),
        "filename": job.filename or "",
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "counters": job.counters(),
        "skipped_reasons": dict(job.skipped_reasons or {}),
        "consent": dict(job.consent_counts or {}),
        "error": job.error or "",
        "problems": [
            {
                "line": p.line,
                "kind": p.kind,
                "code": p.code,
                "message": problem_text(p),
            }
            for p in import_queries.problems(job, limit=PROBLEMS_SHOWN)
        ],
    }


# --- JSON rows -> a CSV file in the portal's import format ------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _tags_cell(value: Any, index: int) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    for name in value:
        if any(sep in name for sep in TAG_SEPARATORS):
            msg = _l("A tag may not contain a comma, a semicolon or a vertical bar (, ; |).")
            raise ApiError(422, msg, fields={f"rows[{index}].tags": str(msg)})
    return ",".join(value)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Write the rows as CSV (every cell quoted and formula-guarded, which the import
    reader undoes); returns the header."""
    known = set(imports.custom_fields(g.account.id))
    keys: list[str] = []
    for index, row in enumerate(rows):
        for key in row.get("fields") or {}:
            if key not in known:
                msg = _l("There is no custom field “%(key)s”.", key=key)
                raise ApiError(422, msg, fields={f"rows[{index}].fields.{key}": str(msg)})
            if key not in keys:
                keys.append(key)
    header = header_for(keys)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        for index, row in enumerate(rows):
            fields = row.get("fields") or {}
            cells = [
                _cell(row.get("email")),
                _cell(row.get("first_name")),
                _cell(row.get("last_name")),
                _tags_cell(row.get("tags"), index),
                _cell(row.get("active")),
                _cell(row.get("signup_at")),
                _cell(row.get("signoff_at")),
                _cell(row.get("optout_reason")),
                *(_cell(fields.get(k)) for k in keys),
            ]
            writer.writerow(safe_row(cells))
    return header


# --- starting an import --------------------------------------------------------------------------

FORM_PARAMS = [
    Param("group_id", s.IMPORT_OPTIONS["group_id"], required=True),
    Param("mode", s.IMPORT_OPTIONS["mode"]),
    Param("import_consent", s.IMPORT_OPTIONS["import_consent"]),
    Param("restore_deleted", s.IMPORT_OPTIONS["restore_deleted"]),
    Param("mapping", {"type": "string", "maxLength": 20_000}),
]


def _options_from_form() -> dict[str, Any]:
    options = parse_query(FORM_PARAMS, source=request.form, status=422)
    mapping = None
    if options.get("mapping"):
        try:
            mapping = json.loads(options["mapping"])
        except ValueError:
            mapping = None
        if not isinstance(mapping, list) or not all(isinstance(t, str) for t in mapping):
            msg = _l("“mapping” must be a JSON list of texts.")
            raise ApiError(422, msg, fields={"mapping": str(msg)})
    options["mapping"] = mapping
    return options


def _start(source_path: Path, filename: str, options: dict[str, Any], header=None) -> ImportJob:
    group = owned_or_404(Group, options["group_id"])
    try:
        job = imports.create_import(
            g.account,
            actor=None,
            group=group,
            source_path=source_path,
            filename=filename,
            source=SOURCE,
        )
        if header is not None and job.header != header:  # our own file: must read back as written
            raise RuntimeError("the import file of JSON rows did not read back")
        imports.configure(
            job,
            mapping=options.get("mapping") or job.mapping,
            mode=options.get("mode") or "update_add",
            import_consent=bool(options.get("import_consent")),
            restore_deleted=bool(options.get("restore_deleted")),
        )
    except imports.ImportRefused as exc:
        raise ApiError(422, exc.args[0], fields={"file": str(exc.args[0])}) from exc

    audit.record(
        "api.import_started",
        account=g.account,
        actor=actor(),
        object_type="import",
        object_id=job.id,
        details={"group": job.group_name, "source": SOURCE, "filename": job.filename},
        ip=client_ip(),
    )
    import_tasks.enqueue_run(job)  # commits the row first, then queues the work
    db.session.refresh(job)
    return job


@operation(
    "POST",
    "/imports",
    tag="imports",
    summary="Start an import into a group",
    description=(
        "Send a file (multipart/form-data: CSV, TXT or XLSX, columns recognised by their "
        "headers in five languages, or `mapping`) or JSON rows. The import runs in the "
        "background on the portal's import engine; an import through the API makes no "
        "backup. Poll GET /imports/{import_id} for its status, counters and the rows that "
        "were not imported. Forgotten addresses are skipped."
    ),
    body=s.IMPORT_JSON,
    multipart=s.IMPORT_MULTIPART,
    responses={202: ("Accepted: the import is queued.", s.ref("Import"))},
    errors=(400, 404, 413, 415, 422),
)
def start_import(body: dict[str, Any] | None):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        if body is None:  # multipart
            options = _options_from_form()
            upload = request.files.get("file")
            if upload is None:
                msg = _l("Send the list as the form field “file”.")
                raise ApiError(400, msg, fields={"file": str(msg)})
            upload.save(path)
            job = _start(path, upload.filename or "upload.csv", options)
        else:
            header = _write_rows(path, body["rows"])
            job = _start(path, "api-rows.csv", body, header=header)
    response = jsonify(import_json(job))
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_import", import_id=job.id)
    return response


@operation(
    "GET",
    "/imports/<int:import_id>",
    tag="imports",
    summary="Status and counters of an import",
    responses={200: ("The import.", s.ref("Import"))},
    errors=(404,),
)
def get_import(import_id: int):
    return jsonify(import_json(owned_or_404(ImportJob, import_id)))


# --- backups ----------------------------------------------------------------------------------


def backup_json(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "group_id": backup.group_id,
        "group_name": backup.group_name,
        "reason": backup.reason,
        "created_at": iso(backup.created_at),
        "expires_at": iso(backup.expires_at),
        "contact_count": backup.contact_count,
        "size": backup.size,
    }


@operation(
    "GET",
    "/backups",
    tag="backups",
    summary="List the account's backups",
    description="By group name, newest first; backups are kept for 30 days.",
    responses={200: ("The backups.", s.listing("Backup"))},
)
def list_backups():
    return jsonify(data=[backup_json(b) for b in read.list_backups(g.account)])


@operation(
    "GET",
    "/backups/<int:backup_id>/download",
    tag="backups",
    summary="Download a backup as CSV",
    description=(
        "In exactly the import format (UTF-8 with BOM); forgotten addresses are left out. "
        "The file is checked against its checksum first: a damaged file is refused (409)."
    ),
    responses={200: ("The CSV file.", {"type": "string", "x-media": "text/csv"})},
    errors=(404, 409),
)
def download_backup(backup_id: int):
    backup = live_backup(g.account.id, owned_or_404(Backup, backup_id).id)
    if backup is None:
        raise ApiError(404, _l("There is no backup with this id, or it has expired."))
    try:
        stream = download_stream(backup)
    except BackupUnreadable as exc:
        raise ApiError(409, exc.args[0], code="unreadable") from exc
    record_download(backup, actor=actor(), ip=client_ip())
    db.session.commit()
    zone = ZoneInfo(g.account.timezone)  # an API key has no reader: the account's zone
    name, readable = download_filenames(backup, zone)
    return Response(
        stream_with_context(stream),
        content_type=excel_csv.CONTENT_TYPE,
        headers={"Content-Disposition": excel_csv.content_disposition(name, readable)},
    )
