"""Lossless exports for a provider switch (seed article: export contacts *with* their
tags, lists and groups before switching).

- **CSV** stored in exactly the import format (the backups' format: `email, first_name,
  last_name, tags, active, signup_at, signoff_at, optout_reason, field:<key>…`, UTF-8
  with BOM, formula-guarded); downloaded for Excel in the reader's language
  (excel_stream, portal/excel_csv.py), which the import maps back as well. One group:
  one CSV. All contacts: a ZIP with one CSV per group (the contact's master data and
  tags in every file, the sign-up and sign-off data of that group), `no-group.csv` for
  contacts in no group, and `manifest.json` naming the group of each file exactly.
  The importer maps every file without questions, and `import_package()` imports such
  a ZIP into another account group by group, so export → import reproduces contacts,
  custom fields, tags, groups and their consent data.
- **JSON Lines**: one object per contact with all groups nested.
- Contacts "to be deleted" and forgotten ones are never exported. Large exports are a
  job with progress; the file can be downloaded for EXPORT_HOURS, then it is removed.
- The file lives in the file store (area "exports"; on the folder store
  instance/exports/<account>/): the worker that writes it and the web process that hands
  it out may be on different machines. ExportRun.path holds its key, `sha256` what was
  stored; every download verifies it (storage.local_copy).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import clock, excel_csv
from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.contacts.models import (
    Contact,
    ContactStatus,
    Group,
    Source,
    Subscription,
    Tag,
    contact_tags,
)
from portal.core import move
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression
from portal.core.storage import (
    EXPORTS,
    BackupStorage,
    StoredFile,
    get_storage,
    local_copy,
    remove_unreferenced,
    store_file,
)
from portal.extensions import db
from portal.imports import mapping as m
from portal.imports import service as imports
from portal.imports.models import ImportJob
from portal.imports.portal_format import field_text, header_for, iso_time, tag_order
from portal.integrations.models import ExportRun, RunStatus
from portal.safe_csv import safe_row

if TYPE_CHECKING:
    from portal.accounts.models import User

EXPORT_HOURS = 48
BATCH = 1000
FORMATS = ("csv", "jsonl")
NO_GROUP_FILE = "no-group.csv"
# An uploaded package may unpack to at most this much, and pack at most this well: real
# exports compress 5-20 times, zip bombs a thousand times (as for .xlsx in imports.reader).
PACKAGE_MAX_UNCOMPRESSED = 8 * 1024**3
PACKAGE_MAX_RATIO = 200


def store() -> BackupStorage:
    return get_storage(EXPORTS)


def start(account: Account, *, fmt: str, group: Group | None, actor: User | None) -> ExportRun:
    if fmt not in FORMATS:
        raise ServiceError(_l("Please choose CSV or JSON Lines."))
    live = [Contact.account_id == account.id, Contact.status == ContactStatus.ACTIVE.value]
    query = select(func.count(Contact.id)).where(*live)
    if group is not None:
        query = query.join(Subscription, Subscription.contact_id == Contact.id).where(
            Subscription.group_id == group.id
        )
    run = ExportRun(
        account_id=account.id,
        group_id=group.id if group else None,
        group_name=group.name if group else "",
        all_contacts=group is None,
        format=fmt,
        created_by_id=getattr(actor, "id", None),
        total=db.session.scalar(query) or 0,
    )
    db.session.add(run)
    db.session.flush()
    return run


def _field_keys(account_id: int) -> list[str]:
    return list(imports.custom_fields(account_id))


def _batches(query) -> Iterator[list]:
    """Keyset over contact ids, BATCH at a time."""
    after = 0
    while True:
        rows = list(
            db.session.execute(query.where(Contact.id > after).order_by(Contact.id).limit(BATCH))
        )
        if not rows:
            return
        # read before the caller commits: a contact erased or purged meanwhile cannot
        # be refreshed afterwards, and the export would stop on it
        after = rows[-1][0].id
        yield rows


def _tags_of(ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    for contact_id, name in db.session.execute(
        select(contact_tags.c.contact_id, Tag.name)
        .join(Tag, Tag.id == contact_tags.c.tag_id)
        .where(contact_tags.c.contact_id.in_(ids))
    ):
        tags.setdefault(contact_id, []).append(name)
    return {cid: sorted(names, key=tag_order) for cid, names in tags.items()}


def _csv_line(contact: Contact, sub: Subscription | None, tags: list[str], keys: list[str]) -> list:
    fields = contact.fields or {}
    return safe_row(
        [
            contact.email,
            contact.first_name,
            contact.last_name,
            ";".join(tags),
            ("yes" if sub.active else "no") if sub is not None else "",
            iso_time(sub.activated_at) if sub is not None else "",
            iso_time(sub.deactivated_at) if sub is not None else "",
            (sub.optout_reason or "") if sub is not None else "",
            *(field_text(fields.get(key)) for key in keys),
        ]
    )


def _write_group_csv(
    out: io.TextIOBase, run: ExportRun, group_id: int | None, keys: list[str]
) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(header_for(keys))
    live = (Contact.account_id == run.account_id, Contact.status == ContactStatus.ACTIVE.value)
    if group_id is None:
        in_any = select(Subscription.id).where(Subscription.contact_id == Contact.id).exists()
        query = select(Contact).where(*live, ~in_any)
    else:
        query = (
            select(Contact, Subscription)
            .join(Subscription, Subscription.contact_id == Contact.id)
            .where(*live, Subscription.group_id == group_id)
        )
    for rows in _batches(query):
        tags = _tags_of([row[0].id for row in rows])
        for row in rows:
            contact, sub = row[0], (row[1] if len(row) > 1 else None)
            writer.writerow(_csv_line(contact, sub, tags.get(contact.id, []), keys))
        _progress(run, len(rows))


def _progress(run: ExportRun, n: int) -> None:
    run.processed += n
    db.session.commit()


def _json_lines(out: io.TextIOBase, run: ExportRun) -> None:
    live = (Contact.account_id == run.account_id, Contact.status == ContactStatus.ACTIVE.value)
    query = select(Contact).where(*live)
    if run.group_id is not None:
        query = query.where(
            select(Subscription.id)
            .where(Subscription.contact_id == Contact.id, Subscription.group_id == run.group_id)
            .exists()
        )
    for rows in _batches(query):
        ids = [row[0].id for row in rows]
        tags = _tags_of(ids)
        groups: dict[int, list[dict[str, Any]]] = {}
        for sub, name in db.session.execute(
            select(Subscription, Group.name)
            .join(Group, Group.id == Subscription.group_id)
            .where(Subscription.contact_id.in_(ids))
            .order_by(Group.name)
        ):
            groups.setdefault(sub.contact_id, []).append(
                {
                    "name": name,
                    "active": sub.active,
                    "signup_at": iso_time(sub.activated_at) or None,
                    "signoff_at": iso_time(sub.deactivated_at) or None,
                    "optout_reason": sub.optout_reason,
                }
            )
        for (contact,) in rows:
            line = {
                "email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "fields": contact.fields or {},
                "tags": tags.get(contact.id, []),
                "groups": groups.get(contact.id, []),
                "created_at": iso_time(contact.created_at),
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        _progress(run, len(rows))


def _safe_filename(name: str, used: set[str]) -> str:
    base = re.sub(r"[^\w\-. ]+", "_", name, flags=re.UNICODE).strip(" ._") or "group"
    candidate, n = f"{base[:80]}.csv", 2
    while candidate.lower() in used or candidate == NO_GROUP_FILE:
        candidate, n = f"{base[:76]}-{n}.csv", n + 1
    used.add(candidate.lower())
    return candidate


WRITE_ATTEMPTS = 3  # an export written while people are erased is written again


def run(export: ExportRun) -> None:
    """Write the file (from the start when run again) and make it downloadable.

    The contacts are read batch after batch, each committed: someone erased ("forget
    me") while the file is written may already be in it. Erasure removes the exports it
    finds (withdraw_exports); this one, when an erasure in the account happened since it
    began, is written again (a few times at most, then it stays withdrawn). The check
    comes after the file is committed, so an erasure that did not see the file yet is
    seen by the check."""
    for _attempt in range(WRITE_ATTEMPTS):
        export.status = RunStatus.RUNNING.value
        export.processed = 0
        export.error = ""
        db.session.commit()
        began = clock.now()
        stored = _write(export)
        export.path, export.size, export.sha256 = stored.key, stored.size, stored.checksum
        export.status = RunStatus.FINISHED.value
        export.finished_at = clock.now()
        export.expires_at = export.finished_at + timedelta(hours=EXPORT_HOURS)
        db.session.commit()
        if not _erased_since(export.account_id, began):
            return
        store().delete(stored.key)
        export.path = ""
        export.error = ERASED
        db.session.commit()


def _write(export: ExportRun) -> StoredFile:
    """Write the file into a temporary folder of this machine (a ZIP is written with
    seeks), then stream it into the file store. The temporary file goes either way;
    half a file of people's data helps nobody."""
    keys = _field_keys(export.account_id)
    suffix = "jsonl" if export.format == "jsonl" else ("zip" if export.all_contacts else "csv")
    with tempfile.TemporaryDirectory(prefix="portal-export-") as folder:
        path = Path(folder) / f"export.{suffix}"
        if export.format == "jsonl":
            with path.open("w", encoding="utf-8", newline="") as out:
                _json_lines(out, export)
        elif not export.all_contacts:
            with path.open("w", encoding="utf-8", newline="") as out:
                _write_group_csv(out, export, export.group_id, keys)
        else:
            _write_package(path, export, keys)
        return store_file(store(), f"{export.account_id}/{uuid.uuid4().hex}.{suffix}", path)


def _erased_since(account_id: int, began) -> bool:
    return (
        db.session.scalar(
            select(Suppression.id)
            .where(Suppression.account_id == account_id, Suppression.created_at >= began)
            .limit(1)
        )
        is not None
    )


# ExportRun.error of an export whose file was removed because contacts were erased after it
ERASED = "erased"


def withdraw_exports(account_id: int) -> int:
    """ "Forget me" in the account: every export file still kept is removed, and its
    page says why. An export is a copy of the people as they were; filtering it on every
    read (like a backup) would still leave the erased person on disk for up to
    EXPORT_HOURS, and rewriting a package in the request of an erasure costs more than
    asking the customer to export again. Returns the number of files removed."""
    removed = 0
    files = store()
    for export in db.session.scalars(
        select(ExportRun).where(ExportRun.account_id == account_id, ExportRun.path != "")
    ):
        files.delete(export.path)
        export.path = ""
        export.error = ERASED
        removed += 1
    return removed


def withdraw_on_erasure(account_id: int, emails: set[str]) -> int:
    """Receiver of signals.before_erasure: "forget me" in an account withdraws its
    exports (lifecycle.traces)."""
    return withdraw_exports(account_id)


def _write_package(path: Path, export: ExportRun, keys: list[str]) -> None:
    groups = list(
        db.session.scalars(
            select(Group).where(Group.account_id == export.account_id).order_by(Group.name)
        )
    )
    used: set[str] = set()
    definitions = imports.custom_fields(export.account_id).values()
    manifest = {
        "format": "recipient-portal-export",
        "version": 1,
        "groups": {},
        "fields": [
            {"key": d.key, "label": d.label, "type": d.type, "choices": d.choices or []}
            for d in definitions
        ],
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for group in groups:
            name = _safe_filename(group.name, used)
            manifest["groups"][name] = group.name
            with package.open(name, "w") as raw, io.TextIOWrapper(raw, "utf-8", newline="") as out:
                _write_group_csv(out, export, group.id, keys)
        with (
            package.open(NO_GROUP_FILE, "w") as raw,
            io.TextIOWrapper(raw, "utf-8", newline="") as out,
        ):
            _write_group_csv(out, export, None, keys)
        package.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    # a contact in several groups is counted once per file; the bar ends at 100 %
    export.total = max(export.total, export.processed)


def downloadable(export: ExportRun, now=None) -> bool:
    """Can the file be downloaded (finished, not expired, in the store)?"""
    if export.status != RunStatus.FINISHED.value or not export.path:
        return False
    if export.expires_at is not None and export.expires_at <= (now or clock.now()):
        return False
    return store().exists(export.path)


def export_copy(export: ExportRun) -> AbstractContextManager[Path]:
    """The stored file as a file on this machine, verified against its sha256, for as
    long as the block runs (storage.local_copy). StorageError when it is gone,
    FileDamaged when it was changed."""
    return local_copy(store(), export.path, export.sha256 or "")


def download_names(
    export: ExportRun, account: Account, zone: ZoneInfo | None = None
) -> tuple[str, str]:
    """(ASCII, readable) names in the zone's local time, without spaces:
    <account>-<group or "all">-<YYYY-MM-DD-HHMM>.<csv|zip|jsonl>."""
    ext = Path(export.path).suffix.lstrip(".") or export.format
    return excel_csv.file_names(
        account.slug, export.group_name or "all", export.created_at, zone or ZoneInfo("UTC"), ext
    )


def download_name(export: ExportRun, account: Account, zone: ZoneInfo | None = None) -> str:
    return download_names(export, account, zone)[0]


# --- the file people download ----------------------------------------------------------------
# The stored CSV and ZIP stay in the machine format (the format import_package and the
# API know, written once by the job whoever reads it). A person downloading one gets it
# for Excel in their language, translated on the way out like a backup (excel_csv).


def excel_stream(export: ExportRun, path: Path, language: str, zone: ZoneInfo) -> Iterator[bytes]:
    """The stored CSV or ZIP for Excel in the language: every CSV translated
    (excel_csv), the ZIP's manifest naming the custom fields as the files do."""
    fields = {k: (f.label, f.type) for k, f in imports.custom_fields(export.account_id).items()}
    if not export.all_contacts:
        return _excel_csv(path, excel_csv.ExcelCsv(language, zone, fields))
    return _excel_package(path, language, zone, fields)


def _excel_csv(path: Path, excel: excel_csv.ExcelCsv) -> Iterator[bytes]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        yield from excel.encode(csv.reader(fh))


class _Sink(io.RawIOBase):
    """Where the streamed ZIP is written; the bytes are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _excel_package(
    path: Path, language: str, zone: ZoneInfo, fields: dict[str, tuple[str, str]]
) -> Iterator[bytes]:
    """The ZIP rewritten member by member while it is sent (never whole in memory)."""
    sink = _Sink()
    with zipfile.ZipFile(path) as stored:
        manifest = json.loads(stored.read("manifest.json"))
        for definition in manifest.get("fields") or []:
            # the label the files' headers use, for import_package's new fields
            current = fields.get(definition.get("key"))
            if current is not None:
                definition["label"] = current[0]
            else:
                fields[definition.get("key")] = (definition.get("label"), definition.get("type"))
        excel = excel_csv.ExcelCsv(language, zone, fields)
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in stored.infolist():
                if info.filename == "manifest.json":
                    continue
                big = info.file_size > 1 << 30
                with (
                    stored.open(info) as raw,
                    io.TextIOWrapper(raw, "utf-8-sig", newline="") as fh,
                    out.open(info.filename, "w", force_zip64=big) as target,
                ):
                    for chunk in excel.encode(csv.reader(fh)):
                        target.write(chunk)
                        yield sink.take()
            out.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    yield sink.take()


def recent(account: Account, limit: int = 10) -> list[ExportRun]:
    return list(
        db.session.scalars(
            select(ExportRun)
            .where(ExportRun.account_id == account.id)
            .order_by(ExportRun.id.desc())
            .limit(limit)
        )
    )


def sweep_expired(now=None) -> int:
    now = now or clock.now()
    removed = 0
    files = store()
    for export in db.session.scalars(
        select(ExportRun).where(
            ExportRun.expires_at.is_not(None), ExportRun.expires_at <= now, ExportRun.path != ""
        )
    ):
        files.delete(export.path)
        export.path = ""
        removed += 1
    db.session.commit()
    return removed


def sweep_orphans(now=None) -> int:
    """Export files no export points to (a worker died between the store and its row),
    after a day: nobody can download them, and they hold people's data. Returns how
    many were removed."""
    cutoff = (now or clock.now()) - timedelta(days=1)
    referenced = set(db.session.scalars(select(ExportRun.path).where(ExportRun.path != "")))
    return len(remove_unreferenced(store(), referenced, cutoff))


def _known_files(source: BackupStorage):
    """For move-files: the export files, with the size and sha256 their rows keep."""
    columns = (ExportRun.id, ExportRun.path, ExportRun.size, ExportRun.sha256)
    return move.rows_of(select(*columns).where(ExportRun.path != ""), ExportRun.id)


move.register(EXPORTS, _known_files)


# --- importing a package into another account -------------------------------------------


def import_package(
    account: Account, package_path: Path, *, actor: User | None, source: Source
) -> list[ImportJob]:
    """One import per file of an export ZIP, into the group of the manifest's name
    (created when missing), in "update and add" with the sign-up and sign-off data. The
    caller commits and enqueues the jobs (imports.tasks.enqueue_run)."""
    try:
        package = zipfile.ZipFile(package_path)
        manifest = json.loads(package.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ServiceError(_l("This is not an export of the recipient portal.")) from exc
    if not _manifest_shape_ok(manifest):
        package.close()
        raise ServiceError(_l("This is not an export of the recipient portal."))
    _ensure_fields(account, manifest.get("fields") or [], source=source)
    jobs = []
    with package, tempfile.TemporaryDirectory(prefix="portal-package-") as folder:
        names = [NO_GROUP_FILE, *manifest.get("groups", {})]
        names = [member for member in names if member in package.namelist()]
        _refuse_bombs([package.getinfo(member) for member in names])
        for member in names:
            target = Path(folder) / Path(member).name
            with package.open(member) as packed, target.open("wb") as out:
                shutil.copyfileobj(packed, out)  # streamed: never a whole file in memory
            group = None
            if member != NO_GROUP_FILE:
                group_name = manifest["groups"][member]
                group = _group_named(account, group_name) or contacts.create_group(
                    account,
                    group_name,
                    actor=actor,
                    source=source if source in ("ui", "api") else "job",
                )
            job = imports.create_import(
                account,
                actor=actor,
                group=group,
                source_path=target,
                filename=member,
                source=source,
            )
            if m.EMAIL not in job.mapping:
                raise ServiceError(_l("This is not an export of the recipient portal."))
            imports.configure(
                job,
                mapping=job.mapping,
                mode="update_add",
                import_consent=True,
                restore_deleted=False,
            )
            jobs.append(job)
    return jobs


def _manifest_shape_ok(manifest: Any) -> bool:
    """The manifest this module writes: groups maps file names to group names, fields is
    a list of definitions with a text key (anything else is not our export)."""
    if not isinstance(manifest, dict):
        return False
    groups, fields = manifest.get("groups", {}), manifest.get("fields") or []
    if not isinstance(groups, dict) or not isinstance(fields, list):
        return False
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in groups.items()):
        return False
    return all(isinstance(d, dict) and isinstance(d.get("key", ""), str) for d in fields)


def _refuse_bombs(members: list[zipfile.ZipInfo]) -> None:
    total = sum(info.file_size for info in members)
    packed = sum(info.compress_size for info in members) or 1
    if total > PACKAGE_MAX_UNCOMPRESSED or total / packed > PACKAGE_MAX_RATIO:
        raise ServiceError(
            _l("The export file unpacks to an unreasonable size and was refused for safety.")
        )


def _group_named(account: Account, name: str) -> Group | None:
    return db.session.scalar(
        select(Group)
        .where(Group.account_id == account.id, func.lower(Group.name) == name.lower())
        .order_by(Group.id)
        .limit(1)
    )


def _ensure_fields(account: Account, definitions: list[dict[str, Any]], *, source: Source) -> None:
    """The exporting account's custom fields, so that every field:<key> column maps."""
    existing = imports.custom_fields(account.id)
    for d in definitions:
        if d.get("key") and d["key"] not in existing:
            contact_fields.create_custom_field(
                account,
                d["key"],
                d.get("label") or d["key"],
                d.get("type") or "text",
                choices=d.get("choices") or None,
                source=source,
            )
