"""Backups of a group's master data: snapshot, verified reading, download, one-click
restore, undo of an import, retention.

A backup is a gzip-compressed CSV in exactly the import format (mapping.PORTAL_HEADER,
then one "field:<key>" column per custom field), UTF-8 with BOM, every cell formula-
guarded. It holds email, names, custom fields, tags and the group's sign-up and sign-off
data with opt-out reasons — never activities. Snapshots are taken automatically before
an import into the group from the portal and before the group is deleted from the
portal, when both the account's and the group's "Automatic backups" switch are on; the
API, integrations and jobs make none (`source` decides, see the receivers at the bottom,
connected to portal.core.signals by the area's init_app).

Every read (download, restore, undo) first checks the file against the sha256 on the
row; a damaged or missing file is refused with a message and nothing is changed.
Forgotten addresses (suppression list) are left out of every read: a backup never
brings a forgotten person back. See docs/decisions/backups-*.md."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import re
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    column,
    delete,
    func,
    literal,
    select,
    text,
)

from portal import clock, events, excel_csv
from portal.accounts.models import Account
from portal.backups.models import (
    Backup,
    BackupPendingDeletion,
    BackupReason,
    ImportUndo,
    UndoStatus,
)
from portal.contacts import service as contacts
from portal.contacts.models import (
    Contact,
    ContactStatus,
    CustomField,
    FieldType,
    Group,
    Subscription,
    Tag,
    contact_tags,
    search_columns,
)
from portal.core import audit, privacy, sql
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression
from portal.core.storage import BackupStorage, StorageError, get_storage, new_key
from portal.database import UTCDateTime
from portal.extensions import db
from portal.imports import mapping as m
from portal.imports import service as imports
from portal.imports.models import ImportBeforeImage, ImportJob, ImportStatus
from portal.safe_csv import TRIGGERS, safe_row

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.excel_csv import ExcelCsv

log = logging.getLogger(__name__)

RETENTION_DAYS = 30
COMPRESS_LEVEL = 6
ROWS_PER_CHUNK = 2000  # CSV rows compressed and handed to the storage at a time
FETCH_ROWS = 5000  # rows per round trip of the server-side cursor
READ_BYTES = 1 << 20
ORPHAN_AGE = timedelta(days=1)  # files without a row older than this are swept
_TAG_SEP = "\x1f"  # joins tag names in SQL; names never contain it


class BackupUnreadable(ServiceError):
    """The backup file is missing or damaged; nothing was read from it."""


class UndoRefused(ServiceError):
    """The import cannot be undone (the message says why)."""


MISSING = _l(
    "The backup file could not be found, so this backup cannot be used. Nothing has been "
    "downloaded or restored. Please contact the support team."
)
DAMAGED = _l(
    "The backup file is damaged (its checksum does not match), so it is refused. Nothing has "
    "been downloaded or restored. Please contact the support team."
)

REASON_LABELS = {
    BackupReason.IMPORT.value: _l("Before an import"),
    BackupReason.GROUP_DELETED.value: _l("Before the group was deleted"),
    BackupReason.MANUAL.value: _l("Made by hand"),
}


# --- switches ----------------------------------------------------------------------------


def _account(account_id: int) -> Account:
    return db.session.get(Account, account_id)


def automatic_backups_on(account: Account, group: Group) -> bool:
    """Both switches must be on: the account's (settings, privacy) and the group's."""
    return bool(account.automatic_backups and group.automatic_backups)


# --- snapshot ----------------------------------------------------------------------------


def header_for(field_keys: list[str]) -> list[str]:
    return [*m.PORTAL_HEADER, *(f"{m.CUSTOM_PREFIX}{key}" for key in field_keys)]


def _iso(value: datetime | None) -> str:
    """ISO 8601 in UTC with offset (microseconds only when there are some)."""
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # as PostgreSQL's ->> writes it


def _snapshot_query(group: Group):
    """The group's contacts with their subscription and tags, one row each, in
    contact id order (read straight from the (group_id, contact_id) index). Tags are
    aggregated per contact in SQL, so a million contacts cost one query.

    The tenant is checked on the subscription, not on the contact: with a condition on
    contacts.account_id, PostgreSQL statistics taken before a new account's first
    import (its ids outside the histogram, "1 row") planned a nested loop that scanned
    all the account's contacts once per subscription — minutes for 50,000 (found by the
    crash drills). Contacts are then only reached through their primary key."""
    aggregate = func.string_agg if sql.is_postgres() else func.group_concat
    tags = (
        select(aggregate(Tag.name, literal(_TAG_SEP)))
        .select_from(contact_tags.join(Tag, Tag.id == contact_tags.c.tag_id))
        .where(contact_tags.c.contact_id == Subscription.contact_id)
        .scalar_subquery()
    )
    return (
        select(
            Contact.id,
            Contact.email,
            Contact.first_name,
            Contact.last_name,
            Contact.fields,
            Contact.status,
            Contact.deleted_at,
            Subscription.active,
            Subscription.activated_at,
            Subscription.deactivated_at,
            Subscription.optout_reason,
            tags,
        )
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.group_id == group.id, Subscription.account_id == group.account_id)
        .order_by(Subscription.contact_id)
    )


class _SnapshotStats:
    def __init__(self) -> None:
        self.contacts = 0
        self.pending: list[tuple[int, datetime | None]] = []


def _csv_chunks(rows, field_keys: list[str], stats: _SnapshotStats) -> Iterator[bytes]:
    """The CSV (BOM, header, one line per contact), gzip-compressed as it is written."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(header_for(field_keys))
    pending = ContactStatus.DELETED.value
    count = 0
    for row in rows:
        (cid, email, first, last, fields, status, deleted_at) = row[:7]
        (active, signup, signoff, reason, tags) = row[7:]
        fields = fields or {}
        tag_text = ";".join(sorted(tags.split(_TAG_SEP), key=_tag_order)) if tags else ""
        writer.writerow(
            safe_row(
                [
                    email,
                    first,
                    last,
                    tag_text,
                    "yes" if active else "no",
                    _iso(signup),
                    _iso(signoff),
                    reason or "",
                    *(_field_text(fields.get(key)) for key in field_keys),
                ]
            )
        )
        if status == pending:
            stats.pending.append((cid, deleted_at))
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            data = compressor.compress(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
            if data:
                yield data
    stats.contacts = count
    yield compressor.compress(buffer.getvalue().encode("utf-8")) + compressor.flush()


def _tag_order(name: str) -> tuple[str, str]:
    return (name.lower(), name)


def _portable_chunks(group: Group, field_keys: list[str], stats: _SnapshotStats):
    """Any database: rows through SQLAlchemy (a server-side cursor where the driver has
    one), the CSV written by Python."""
    result = db.session.execute(
        _snapshot_query(group),
        execution_options={"stream_results": True, "yield_per": FETCH_ROWS},
    )
    try:
        yield from _csv_chunks(result, field_keys, stats)
    finally:
        result.close()


# PostgreSQL writes the CSV lines itself: the same cells as _csv_chunks (formula guard,
# CSV quoting, ISO times), made on the database's core and fetched through a server-side
# cursor while this process compresses the previous batch on the other core.
_PG_GUARD = (
    "CASE WHEN left({e}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {e} ELSE {e} END"
)
# CSV-quoted (always; doubled quotes inside), the empty string for NULL
_PG_QUOTE = "COALESCE('\"' || replace({e}, '\"', '\"\"') || '\"', '')"
_PG_TIME = (
    "to_char({t}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
    "CAST(extract(microseconds FROM {t}) AS bigint) % 1000000 <> 0 "
    "THEN to_char({t}, '.US') ELSE '' END || '+00:00'"
)
# in no particular order (an ORDER BY here costs a sort per contact: +40 % at 1M)
_PG_TAGS = (
    "(SELECT string_agg(t.name, ';') FROM contact_tags ct "
    "JOIN tags t ON t.id = ct.tag_id WHERE ct.contact_id = s.contact_id)"
)


def _postgres_lines(group: Group, field_keys: list[str]):
    """SELECT of one CSV line per contact; values are quoted literals. The inner query
    is fenced (OFFSET 0), so that the tags subquery and the field lookups run once per
    row and not once per mention in the guard and quoting expressions."""
    from psycopg import sql as pgsql

    raw = [
        pgsql.SQL("c.email"),
        pgsql.SQL("c.first_name"),
        pgsql.SQL("c.last_name"),
        pgsql.SQL(_PG_TAGS),
        *(pgsql.SQL("(c.fields ->> {})").format(pgsql.Literal(key)) for key in field_keys),
    ]
    names = [pgsql.Identifier(f"v{i}") for i in range(len(raw))]

    def text_cell(name: pgsql.Composable) -> pgsql.Composable:
        return pgsql.SQL(_PG_QUOTE).format(e=pgsql.SQL(_PG_GUARD).format(e=name))

    cells = [
        # an address needs no quoting: the normalized form has no comma, quote or newline
        pgsql.SQL("COALESCE(" + _PG_GUARD + ", '')").format(e=pgsql.SQL("r.v0")),
        *(text_cell(pgsql.SQL("r.{}").format(name)) for name in names[1:4]),
        pgsql.SQL("CASE WHEN r.active THEN 'yes' ELSE 'no' END"),
        pgsql.SQL("COALESCE(" + _PG_TIME.format(t="r.activated_at") + ", '')"),
        pgsql.SQL("COALESCE(" + _PG_TIME.format(t="r.deactivated_at") + ", '')"),
        pgsql.SQL("COALESCE(r.optout_reason, '')"),
        *(text_cell(pgsql.SQL("r.{}").format(name)) for name in names[4:]),
    ]
    inner = pgsql.SQL(", ").join(
        [pgsql.SQL("{} AS {}").format(expr, name) for expr, name in zip(raw, names, strict=True)]
    )
    return pgsql.SQL(
        "SELECT {line} FROM (SELECT {inner}, s.active, s.activated_at, s.deactivated_at, "
        "s.optout_reason FROM subscriptions s JOIN contacts c ON c.id = s.contact_id "
        "WHERE s.group_id = {group} AND s.account_id = {account} "
        "ORDER BY s.contact_id OFFSET 0) AS r"
    ).format(
        line=pgsql.SQL(" || ',' || ").join(cells),
        inner=inner,
        group=pgsql.Literal(group.id),
        account=pgsql.Literal(group.account_id),
    )


def _postgres_chunks(group: Group, field_keys: list[str], stats: _SnapshotStats):
    from concurrent.futures import ThreadPoolExecutor

    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
    head = io.StringIO()
    head.write("\ufeff")
    csv.writer(head, lineterminator="\r\n").writerow(header_for(field_keys))
    yield compressor.compress(head.getvalue().encode("utf-8"))
    raw = db.session.connection().connection.driver_connection
    count = 0
    # zlib lets go of the GIL: batch n is compressed while batch n + 1 is fetched
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-gzip") as gzip_thread,
        raw.cursor(name=f"backup_{uuid.uuid4().hex[:12]}") as cursor,
    ):
        cursor.itersize = FETCH_ROWS
        cursor.execute(_postgres_lines(group, field_keys))
        previous = None
        while lines := cursor.fetchmany(FETCH_ROWS):
            count += len(lines)
            data = ("\r\n".join(line for (line,) in lines) + "\r\n").encode("utf-8")
            current = gzip_thread.submit(compressor.compress, data)
            if previous is not None:
                yield previous.result()
            previous = current
        if previous is not None:
            yield previous.result()
    stats.contacts = count
    yield compressor.flush()
    stats.pending = [
        (cid, deleted_at)
        for cid, deleted_at in db.session.execute(
            select(Contact.id, Contact.deleted_at)
            .join(Subscription, Subscription.contact_id == Contact.id)
            .where(
                Subscription.group_id == group.id,
                Subscription.account_id == group.account_id,
                Contact.status == ContactStatus.DELETED.value,
            )
        )
    ]


def snapshot(
    group: Group,
    *,
    reason: BackupReason | str,
    actor: User | None = None,
    import_job: ImportJob | None = None,
    storage: BackupStorage | None = None,
    _portable: bool = False,
) -> Backup:
    """Save the group's master data now and return the (flushed) Backup row.

    Streams, so memory stays flat for a million contacts: on PostgreSQL the database
    writes the CSV lines (server-side cursor) while this process compresses them; other
    databases hand the rows to a cursor and Python writes the CSV. `_portable` forces
    the second path (a test compares the two on PostgreSQL). On any error the file is
    removed again and the error raised (the caller's import or deletion stops)."""
    storage = storage or get_storage()
    account = _account(group.account_id)
    started = clock.now()
    field_keys = [f.key for f in contacts.custom_fields(account)]
    key = new_key(account.id)
    stats = _SnapshotStats()
    postgres = sql.is_postgres()
    make_chunks = _postgres_chunks if postgres and not _portable else _portable_chunks
    stored = storage.write_stream(key, make_chunks(group, field_keys, stats))
    try:
        backup = Backup(
            account_id=account.id,
            group_id=group.id,
            group_name=group.name,
            reason=BackupReason(reason).value,
            import_id=import_job.id if import_job is not None else None,
            created_by_id=getattr(actor, "id", None),
            created_at=started,
            expires_at=started + timedelta(days=RETENTION_DAYS),
            contact_count=stats.contacts,
            size=stored.size,
            checksum=stored.checksum,
            storage_key=stored.key,
        )
        db.session.add(backup)
        db.session.flush()
        for start in range(0, len(stats.pending), FETCH_ROWS):
            db.session.execute(
                BackupPendingDeletion.__table__.insert(),
                [
                    {"backup_id": backup.id, "contact_id": cid, "deleted_at": deleted_at}
                    for cid, deleted_at in stats.pending[start : start + FETCH_ROWS]
                ],
            )
        audit.record(
            "backup.created",
            account=account,
            actor=actor,
            object_type="backup",
            object_id=backup.id,
            details={
                "name": group.name,
                "group_id": group.id,
                "reason": backup.reason,
                "contacts": stats.contacts,
                "import_id": backup.import_id,
            },
        )
    except BaseException:
        storage.delete(key)
        raise
    log.info(
        "backup %s of group %s: %s contacts, %s bytes in %.1f s",
        backup.id,
        group.id,
        stats.contacts,
        stored.size,
        (clock.now() - started).total_seconds(),
    )
    return backup


# --- reading -----------------------------------------------------------------------------


def verify(backup: Backup, storage: BackupStorage | None = None) -> None:
    """Raise BackupUnreadable unless the stored file has the row's size and sha256."""
    storage = storage or get_storage()
    try:
        size, checksum = _measure(storage, backup.storage_key)
    except StorageError as exc:
        log.error("backup %s: %s", backup.id, exc)
        raise BackupUnreadable(MISSING) from exc
    if size != backup.size or checksum != backup.checksum:
        log.error(
            "backup %s: checksum mismatch (size %s, expected %s)", backup.id, size, backup.size
        )
        raise BackupUnreadable(DAMAGED)


def _measure(storage: BackupStorage, key: str) -> tuple[int, str]:
    """Size and sha256 of the stored bytes, read as a stream."""
    digest = hashlib.sha256()
    size = 0
    with storage.open(key) as fh:
        while chunk := fh.read(READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _unguard(cell: str) -> str:
    """Undo the formula guard of safe_csv (as the importer does)."""
    if cell[:1] == "'" and cell[1:2] in TRIGGERS:
        return cell[1:]
    return cell


def _suppressed(account_id: int) -> Callable[[str], bool] | None:
    """A test "is this address forgotten?" for the account, or None when it has no
    forgotten addresses (then nothing needs hashing)."""
    hashes = set(
        db.session.scalars(
            select(Suppression.email_hash).where(Suppression.account_id == account_id)
        )
    )
    if not hashes:
        return None
    hash_ = privacy.hasher()
    return lambda email: hash_(_unguard(email).strip().lower()) in hashes


def _rows(
    storage: BackupStorage, key: str, skip: Callable[[str], bool] | None
) -> Iterator[list[str]]:
    """The stored CSV as rows (header first), without forgotten addresses."""
    try:
        with (
            storage.open(key) as raw,
            gzip.open(raw, "rt", encoding="utf-8-sig", newline="") as fh,
        ):
            reader = csv.reader(fh)
            yield next(reader)
            for cells in reader:
                if skip is not None and cells and skip(cells[0]):
                    continue
                yield cells
    except StorageError as exc:
        raise BackupUnreadable(MISSING) from exc
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise BackupUnreadable(DAMAGED) from exc


def download_stream(
    backup: Backup, storage: BackupStorage | None = None, excel: ExcelCsv | None = None
) -> Iterator[bytes]:
    """The backup as the CSV users download (UTF-8 with BOM). The file is verified
    before the first byte; forgotten addresses are left out. With `excel` (the backups
    page) the file is the one for Excel in the reader's language (portal/excel_csv.py);
    without it (the API) it is the stored machine format. The stored file never changes:
    restore and undo read it."""
    storage = storage or get_storage()
    verify(backup, storage)
    skip = _suppressed(backup.account_id)
    if excel is not None:
        return excel.encode(_rows(storage, backup.storage_key, skip))
    if skip is None:
        return _plain_bytes(storage, backup.storage_key)
    return _filtered_bytes(storage, backup.storage_key, skip)


def _plain_bytes(storage: BackupStorage, key: str) -> Iterator[bytes]:
    with storage.open(key) as raw, gzip.open(raw, "rb") as fh:
        while chunk := fh.read(READ_BYTES):
            yield chunk


def _filtered_bytes(storage: BackupStorage, key: str, skip) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    for count, cells in enumerate(_rows(storage, key, skip), start=1):
        writer.writerow(cells)
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_csv(backup: Backup, path: Path, storage: BackupStorage | None = None) -> int:
    """Write the verified backup as a plain CSV file (for a restore); returns the rows."""
    storage = storage or get_storage()
    verify(backup, storage)
    skip = _suppressed(backup.account_id)
    rows = -1
    with Path(path).open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        for cells in _rows(storage, backup.storage_key, skip):
            writer.writerow(cells)
            rows += 1
    return rows


def download_filenames(backup: Backup, zone: ZoneInfo | None = None) -> tuple[str, str]:
    """(ASCII, readable) names in the zone's local time, without spaces:
    backup-<group>-<YYYY-MM-DD-HHMM>.csv (the time the backup was made)."""
    return excel_csv.file_names(
        "backup", backup.group_name, backup.created_at, zone or ZoneInfo("UTC"), "csv"
    )


def download_filename(backup: Backup, zone: ZoneInfo | None = None) -> str:
    """The ASCII name (the header's fallback name)."""
    return download_filenames(backup, zone)[0]


def record_download(backup: Backup, *, actor: User | None, ip: str | None = None) -> None:
    audit.record(
        "backup.downloaded",
        account=_account(backup.account_id),
        actor=actor,
        object_type="backup",
        object_id=backup.id,
        details={"name": backup.group_name, "contacts": backup.contact_count},
        ip=ip,
    )


# --- the backups page ----------------------------------------------------------------------


def list_backups(account: Account, now: datetime | None = None) -> list[Backup]:
    """The account's live backups, by group name and then newest first."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(Backup)
            .where(Backup.account_id == account.id, Backup.expires_at > now)
            .order_by(
                func.lower(Backup.group_name),
                Backup.group_name,
                Backup.created_at.desc(),
                Backup.id.desc(),
            )
        )
    )


def latest_backups(account: Account, limit: int = 5, now: datetime | None = None) -> list[Backup]:
    """The account's newest live backups, whatever their group (the home page)."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(Backup)
            .where(Backup.account_id == account.id, Backup.expires_at > now)
            .order_by(Backup.created_at.desc(), Backup.id.desc())
            .limit(limit)
        )
    )


def live_backup(account_id: int, backup_id: int | None) -> Backup | None:
    """The backup if it exists in this account and has not expired."""
    if backup_id is None:
        return None
    return db.session.scalar(
        select(Backup).where(
            Backup.id == backup_id,
            Backup.account_id == account_id,
            Backup.expires_at > clock.now(),
        )
    )


def days_left(backup: Backup, now: datetime | None = None, tz: ZoneInfo | None = None) -> int:
    """Calendar days (in the reader's timezone) until the cleanup removes it: 30 on the
    day it was made, 0 on its last day."""
    tz = tz or ZoneInfo("UTC")
    today = (now or clock.now()).astimezone(tz).date()
    return max(0, (backup.expires_at.astimezone(tz).date() - today).days)


def expiry_text(backup: Backup, now: datetime | None = None, tz: ZoneInfo | None = None) -> str:
    days = days_left(backup, now, tz)
    if days == 0:
        return _("today")
    return ngettext("in %(num)d day", "in %(num)d days", days)


def human_size(size: int) -> str:
    """1.5 MB / 1,5 MB - in the reader's number format."""
    for factor, label in (
        (1024**3, _l("%(size)s GB")),
        (1024**2, _l("%(size)s MB")),
        (1024, _l("%(size)s KB")),
    ):
        if size >= factor:
            return str(label) % {"size": format_decimal(size / factor, format="#,##0.#")}
    return ngettext("%(num)d byte", "%(num)d bytes", size)


# --- one-click restore ---------------------------------------------------------------------


def _target_group(backup: Backup, actor: User | None, ip: str | None) -> Group:
    """The original group; when it was deleted, a group of that name (recreated if need be)."""
    account = _account(backup.account_id)
    group = db.session.get(Group, backup.group_id) if backup.group_id else None
    if group is not None and group.account_id == account.id:
        return group
    group = db.session.scalar(
        select(Group)
        .where(Group.account_id == account.id, func.lower(Group.name) == backup.group_name.lower())
        .order_by(Group.id)
        .limit(1)
    )
    if group is not None:
        return group
    return contacts.create_group(account, backup.group_name, actor=actor, source="ui", ip=ip)


def restore(backup: Backup, *, actor: User | None, ip: str | None = None) -> ImportJob:
    """Prepare the one-click restore: an import in "update and add" with the sign-up and
    sign-off data, into the original group. The caller enqueues it (imports.tasks
    .enqueue_run) and shows the import's progress page. The engine never reactivates
    an unsubscribed contact unless the backup's sign-up is newer than the sign-off, and
    the file holds no forgotten address. Source "restore" makes no new backup."""
    account = _account(backup.account_id)
    with tempfile.TemporaryDirectory(prefix="portal-restore-") as tmp:
        path = Path(tmp) / "backup.csv"
        write_csv(backup, path)
        group = _target_group(backup, actor, ip)
        try:
            job = imports.create_import(
                account,
                actor=actor,
                group=group,
                source_path=path,
                filename=download_filename(backup),
                source="restore",
            )
        except imports.ImportError_ as exc:
            raise BackupUnreadable(DAMAGED) from exc
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    audit.record(
        "backup.restored",
        account=account,
        actor=actor,
        object_type="backup",
        object_id=backup.id,
        details={"name": backup.group_name, "group_id": group.id, "import_id": job.id},
        ip=ip,
    )
    return job


# --- undo of an import ---------------------------------------------------------------------


def latest_undo(job: ImportJob) -> ImportUndo | None:
    return db.session.scalar(
        select(ImportUndo).where(ImportUndo.import_id == job.id).order_by(ImportUndo.id.desc())
    )


def _import_running_into(group_id: int, except_id: int | None = None) -> bool:
    running = (ImportStatus.RUNNING.value, ImportStatus.QUEUED.value, ImportStatus.WAITING.value)
    query = select(ImportJob.id).where(
        ImportJob.group_id == group_id, ImportJob.status.in_(running)
    )
    if except_id is not None:
        query = query.where(ImportJob.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


def undo_blocker(job: ImportJob) -> str | None:
    """Why the import cannot be undone now (a sentence for the user), or None."""
    if job.undone_at is not None:
        return _("This import has already been undone.")
    if job.status != ImportStatus.FINISHED:
        return _("Only a finished import can be undone.")
    if job.group_was_empty:
        if job.created_at + timedelta(days=RETENTION_DAYS) <= clock.now():
            return ngettext(
                "Imports can be undone for %(num)d day.",
                "Imports can be undone for %(num)d days.",
                RETENTION_DAYS,
            )
    elif live_backup(job.account_id, job.backup_id) is None:
        return _("There is no backup of the group from before this import (any more).")
    if job.group_id is None or db.session.get(Group, job.group_id) is None:
        return _(
            "The group of this import has been deleted. Restore one of its backups on the "
            "backups page instead."
        )
    undo = latest_undo(job)
    if undo is not None and undo.status in (UndoStatus.QUEUED, UndoStatus.RUNNING):
        return _("The import is being undone.")
    if _import_running_into(job.group_id, except_id=job.id):
        return _("Another import into this group is running. Please wait until it has finished.")
    return None


def request_undo(job: ImportJob, *, actor: User | None, ip: str | None = None) -> ImportUndo:
    """Record the wish to undo (committed by the caller before the job is enqueued)."""
    reason = undo_blocker(job)
    if reason is not None:
        raise UndoRefused(reason)
    undo = ImportUndo(
        account_id=job.account_id,
        import_id=job.id,
        backup_id=job.backup_id,
        created_by_id=getattr(actor, "id", None),
        status=UndoStatus.QUEUED.value,
    )
    db.session.add(undo)
    db.session.flush()
    return undo


# Scratch tables of one undo, private to its connection (never part of the schema).
_scratch = MetaData()
_TEMP = {"prefixes": ["TEMPORARY"], "postgresql_on_commit": "DROP"}
UNDO_ROWS = Table(
    "backup_undo_rows",
    _scratch,
    Column("line", Integer, primary_key=True),
    Column("email", String(320)),
    Column("contact_id", BigInteger),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("search_name", String(400)),
    Column("search_name_rev", String(400)),
    Column("fields", Text),
    Column("active", Boolean),
    Column("activated_at", UTCDateTime()),
    Column("deactivated_at", UTCDateTime()),
    Column("optout_reason", String(16)),
    Index("ix_backup_undo_rows_contact", "contact_id"),
    **_TEMP,
)
UNDO_TAGS = Table(
    "backup_undo_tags",
    _scratch,
    Column("line", Integer),
    Column("name", String(100)),
    Index("ix_backup_undo_tags_line", "line", "name"),
    **_TEMP,
)
UNDO_LINKS = Table(
    "backup_undo_links",
    _scratch,
    Column("contact_id", BigInteger, primary_key=True),
    Column("tag_id", Integer, primary_key=True),
    **_TEMP,
)
UNDO_REMOVED = Table(
    "backup_undo_removed", _scratch, Column("contact_id", BigInteger, primary_key=True), **_TEMP
)
# the dry run's verdict per backup line (line set) or per contact of the group that the
# backup does not hold (line empty): see recovery.py
PLAN = Table(
    "backup_plan",
    _scratch,
    Column("line", Integer),
    Column("contact_id", BigInteger),
    Column("kind", String(16)),
    Index("ix_backup_plan_kind", "kind", "contact_id"),
    Index("ix_backup_plan_line", "line"),
    **_TEMP,
)
# the contacts whose tags differ from their backup line's (recovery.py)
TAG_DIFF = Table(
    "backup_tag_diff", _scratch, Column("contact_id", BigInteger, primary_key=True), **_TEMP
)
SCRATCH_TABLES = (UNDO_ROWS, UNDO_TAGS, UNDO_LINKS, UNDO_REMOVED, PLAN, TAG_DIFF)


def _clause(statement: str, **params: Any):
    """SQL built from constants with its parameters bound; datetimes as UTCDateTime
    (SQLite stores them as text in SQLAlchemy's format)."""
    used = {k: v for k, v in params.items() if re.search(rf":{k}\b", statement)}
    return text(statement).bindparams(
        *[
            bindparam(k, v, type_=UTCDateTime()) if isinstance(v, datetime) else bindparam(k, v)
            for k, v in used.items()
        ]
    )


def _execute(statement: str, **params: Any) -> int:
    return db.session.execute(_clause(statement, **params)).rowcount or 0


def _emit(kind: str, id_select: str, **params: Any) -> None:
    """Tell a linked provider (portal.events) about every contact id the SELECT returns."""
    ids = _clause(id_select, **params).columns(column("contact_id", BigInteger))
    events.emit_select(params["acc"], kind, ids, source="undo")


def _parse_time(cell: str) -> datetime | None:
    cell = cell.strip()
    if not cell:
        return None
    value = datetime.fromisoformat(cell.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class _RowReader:
    """Turns the cells of a backup line into a scratch row and its tag names."""

    def __init__(self, header: list[str], definitions: dict[str, CustomField]) -> None:
        names = [h.strip() for h in header]
        if tuple(names[: len(m.PORTAL_HEADER)]) != m.PORTAL_HEADER:
            raise BackupUnreadable(DAMAGED)
        self.width = len(names)
        self.fields = [
            (
                i,
                name.removeprefix(m.CUSTOM_PREFIX),
                definitions.get(name.removeprefix(m.CUSTOM_PREFIX)),
            )
            for i, name in enumerate(names)
            if name.startswith(m.CUSTOM_PREFIX)
        ]

    @staticmethod
    def _value(definition: CustomField | None, raw: str) -> Any:
        if definition is not None and definition.type == FieldType.NUMBER:
            try:
                number = float(raw)
            except ValueError:
                return raw
            return int(raw) if raw.lstrip("-").isdigit() else number
        return raw

    def read(self, line: int, cells: list[str]) -> tuple[dict[str, Any], list[str]]:
        cells = [_unguard(c) for c in cells] + [""] * (self.width - len(cells))
        email, first, last, tags, active, signup, signoff, reason = cells[: len(m.PORTAL_HEADER)]
        fields = {key: self._value(d, cells[i]) for i, key, d in self.fields if cells[i] != ""}
        is_active = active.strip().lower() == "yes"
        row = {
            "line": line,
            "email": email.strip(),
            "first_name": first,
            "last_name": last,
            # search_name(_rev): filled by fill_search_names for the lines written only
            "fields": json.dumps(fields, ensure_ascii=False, sort_keys=True),
            "active": is_active,
            "activated_at": _parse_time(signup),
            "deactivated_at": _parse_time(signoff),
            "optout_reason": (reason.strip() or None) if not is_active else None,
        }
        names = list(dict.fromkeys(t for t in tags.split(";") if t))
        return row, names


def create_scratch() -> None:
    """The scratch tables, empty (private to the connection, gone with its transaction
    on PostgreSQL; dropped by drop_scratch on SQLite)."""
    connection = db.session.connection()
    for table in SCRATCH_TABLES:
        if not sql.is_postgres(connection):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")
        table.create(connection)


def drop_scratch() -> None:
    if not sql.is_postgres():
        for table in SCRATCH_TABLES:
            db.session.execute(text(f"DROP TABLE IF EXISTS temp.{table.name}"))


def _load_scratch(backup: Backup, storage: BackupStorage) -> int:
    """Fill the scratch tables from the verified backup; returns the number of rows
    (without the forgotten addresses, which are left out)."""
    create_scratch()
    connection = db.session.connection()
    definitions = {f.key: f for f in contacts.custom_fields(_account(backup.account_id))}
    rows_iter = _rows(storage, backup.storage_key, _suppressed(backup.account_id))
    reader = _RowReader(next(rows_iter), definitions)
    lines = ((line, *reader.read(line, cells)) for line, cells in enumerate(rows_iter, start=2))
    try:
        if sql.strategy(connection).copy_rows:
            return _copy_scratch(connection, lines)
        return _insert_scratch(connection, lines)
    except (ValueError, IndexError) as exc:
        raise BackupUnreadable(DAMAGED) from exc


def _insert_scratch(connection, lines) -> int:
    rows: list[dict] = []
    tags: list[dict] = []
    count = 0
    for line, row, names in lines:
        rows.append(row)
        tags.extend({"line": line, "name": name} for name in names)
        if len(rows) >= FETCH_ROWS:
            connection.execute(UNDO_ROWS.insert(), rows)
            count += len(rows)
            rows = []
        if len(tags) >= FETCH_ROWS:
            connection.execute(UNDO_TAGS.insert(), tags)
            tags = []
    if rows:
        connection.execute(UNDO_ROWS.insert(), rows)
        count += len(rows)
    if tags:
        connection.execute(UNDO_TAGS.insert(), tags)
    return count


_ROW_COLUMNS = [
    c.name
    for c in UNDO_ROWS.columns
    if c.name not in ("contact_id", "search_name", "search_name_rev")
]


def fill_search_names(condition: str, **params: Any) -> None:
    """The search columns of the backup lines that will be written (`condition` on the
    line `u`): computed in Python (Unicode folding), so only for those - most lines of
    a restore or an undo change nothing, and folding costs ~1 s per 100k names."""
    found = db.session.execute(
        _clause(
            f"SELECT u.line, u.first_name, u.last_name FROM backup_undo_rows u WHERE {condition}",  # noqa: S608  # nosec B608  # constants only
            **params,
        )
    ).all()
    statement = (
        UNDO_ROWS.update()
        .where(UNDO_ROWS.c.line == bindparam("l"))
        .values(search_name=bindparam("sn"), search_name_rev=bindparam("snr"))
    )
    for start in range(0, len(found), FETCH_ROWS):
        batch = []
        for line, first, last in found[start : start + FETCH_ROWS]:
            names = search_columns(first or "", last or "")
            batch.append({"l": line, "sn": names["search_name"], "snr": names["search_name_rev"]})
        db.session.execute(statement, batch)


def _copy_scratch(connection, lines) -> int:
    """PostgreSQL: COPY, ~6 times faster than batched INSERTs for 100k lines (measured,
    docs/BENCHMARKS.md). One COPY at a time per connection: the tags wait in a spooled
    temporary file (in memory up to 16 MB) until the lines are in."""
    raw = connection.connection.driver_connection
    count = 0
    with (
        tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+", newline="") as spool,
        raw.cursor() as cursor,
    ):
        columns = ", ".join(_ROW_COLUMNS)
        with cursor.copy(f"COPY backup_undo_rows ({columns}) FROM STDIN") as copy:  # nosec B608  # the scratch table's own column names
            for line, row, names in lines:
                copy.write_row([sql.utc_param(row[name], sql.POSTGRESQL) for name in _ROW_COLUMNS])
                for name in names:  # one JSON array per tag: any name survives
                    spool.write(json.dumps([line, name]) + "\n")
                count += 1
        spool.seek(0)
        with cursor.copy("COPY backup_undo_tags (line, name) FROM STDIN") as copy:
            for entry in spool:
                copy.write_row(json.loads(entry))
    # temporary tables get no statistics otherwise
    connection.exec_driver_sql("ANALYZE backup_undo_rows")
    connection.exec_driver_sql("ANALYZE backup_undo_tags")
    return count


def _apply_undo(job: ImportJob, backup: Backup | None, undo: ImportUndo, plan) -> None:
    """The set-based undo on the scratch tables (loaded and classified by
    recovery.plan_undo: the contacts matched, the counts taken), in the caller's
    transaction. Without a backup the group was empty before the import."""
    from portal.backups import recovery  # recovery builds on this module: a cycle

    fragment = sql.fragments()
    differ = fragment["differ"]
    p = {
        "acc": job.account_id,
        "gid": job.group_id,
        "bid": backup.id if backup is not None else -1,
        "now": clock.now(),
        "since": recovery.undo_since(job, backup),
        "finished": job.finished_at or clock.now(),
    }
    undo.restored = plan.count("set_back")  # only the contacts that change
    fill_search_names(
        "u.contact_id IN (SELECT contact_id FROM backup_plan WHERE kind = 'set_back')"
    )
    # names and custom fields exactly as in the backup
    _execute(
        f"""UPDATE contacts SET first_name = u.first_name, last_name = u.last_name,
               search_name = u.search_name, search_name_rev = u.search_name_rev,
               fields = {fragment["json"].format("u.fields")}, updated_at = :now
           FROM backup_undo_rows u
           WHERE contacts.id = u.contact_id AND (contacts.first_name <> u.first_name
              OR contacts.last_name <> u.last_name OR {fragment["contact_fields_differ"]})""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    # contacts that were "to be deleted" then and that the import brought back
    _execute(
        """UPDATE contacts SET status = 'deleted', deleted_at = p.deleted_at, updated_at = :now
           FROM backup_pending_deletions p
           WHERE p.backup_id = :bid AND contacts.id = p.contact_id
             AND contacts.account_id = :acc AND contacts.status <> 'deleted'""",
        **p,
    )
    # tags: exactly the backup's; tags the import created and nobody uses go again
    _execute(
        """INSERT INTO tags (account_id, name, created_at)
           SELECT DISTINCT :acc, t.name, :now FROM backup_undo_tags t WHERE true
           ON CONFLICT (account_id, name) DO NOTHING""",
        **p,
    )
    _execute(
        """INSERT INTO backup_undo_links (contact_id, tag_id)
           SELECT DISTINCT u.contact_id, tg.id FROM backup_undo_tags t
           JOIN backup_undo_rows u ON u.line = t.line
           JOIN tags tg ON tg.account_id = :acc AND tg.name = t.name
           WHERE u.contact_id IS NOT NULL""",
        **p,
    )
    _execute(
        """DELETE FROM contact_tags
           WHERE contact_id IN (SELECT contact_id FROM backup_undo_rows
                                WHERE contact_id IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM backup_undo_links l
                             WHERE l.contact_id = contact_tags.contact_id
                               AND l.tag_id = contact_tags.tag_id)""",
        **p,
    )
    _execute(
        """INSERT INTO contact_tags (contact_id, tag_id)
           SELECT contact_id, tag_id FROM backup_undo_links WHERE true
           ON CONFLICT (contact_id, tag_id) DO NOTHING""",
        **p,
    )
    # sign-up and sign-off data exactly as in the backup - except that nobody who
    # signed off or up *after* the import is switched back by its undo
    _execute(
        f"""UPDATE subscriptions SET active = u.active, activated_at = u.activated_at,
               deactivated_at = u.deactivated_at, optout_reason = u.optout_reason
           FROM backup_undo_rows u
           WHERE subscriptions.group_id = :gid AND subscriptions.contact_id = u.contact_id
             AND (subscriptions.active <> u.active
                  OR subscriptions.activated_at {differ} u.activated_at
                  OR subscriptions.deactivated_at {differ} u.deactivated_at
                  OR subscriptions.optout_reason {differ} u.optout_reason)
             AND (subscriptions.active = u.active
                  OR (u.active AND (subscriptions.deactivated_at IS NULL
                                    OR subscriptions.deactivated_at <= :finished))
                  OR (NOT u.active AND (subscriptions.activated_at IS NULL
                                        OR subscriptions.activated_at <= :finished)))""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    _execute(
        """INSERT INTO subscriptions (account_id, contact_id, group_id, active, activated_at,
               deactivated_at, optout_reason, source)
           SELECT :acc, u.contact_id, :gid, u.active, u.activated_at, u.deactivated_at,
               u.optout_reason, 'restore'
           FROM backup_undo_rows u WHERE u.contact_id IS NOT NULL
           ON CONFLICT (contact_id, group_id) DO NOTHING""",
        **p,
    )
    # contacts the group holds now and the backup does not: out of the group, and
    # deleted when they did not exist before the backup and are in no other group
    undo.removed = _execute(
        """INSERT INTO backup_undo_removed (contact_id)
           SELECT s.contact_id FROM subscriptions s
           WHERE s.group_id = :gid AND NOT EXISTS (
               SELECT 1 FROM backup_undo_rows u WHERE u.contact_id = s.contact_id)""",
        **p,
    )
    _execute(
        """DELETE FROM subscriptions WHERE group_id = :gid
           AND contact_id IN (SELECT contact_id FROM backup_undo_removed)""",
        **p,
    )
    new_and_alone = """FROM contacts WHERE account_id = :acc
           AND id IN (SELECT contact_id FROM backup_undo_removed)
           AND created_at >= :since
           AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.contact_id = contacts.id)"""
    _emit(events.CONTACT_PURGED, f"SELECT id AS contact_id {new_and_alone}", **p)
    undo.deleted = _execute(f"DELETE {new_and_alone}", **p)  # nosec B608  # constants only
    _tell_undo_listeners(p)
    _set_back_before_images(job, fragment)
    _execute(
        """DELETE FROM tags WHERE account_id = :acc AND created_at >= :since
           AND created_at <= :finished
           AND NOT EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.tag_id = tags.id)""",
        **p,
    )


def _set_back_before_images(job: ImportJob, fragment: dict[str, str]) -> None:
    """Every contact the import changed, field by field as it was: names, custom fields,
    status, updated_at and tags — also those in other groups only, which the group's
    backup does not hold (models.ImportBeforeImage). Contacts forgotten since have no
    image any more (it goes with the contact)."""
    p = {"iid": job.id}
    _execute(
        f"""UPDATE contacts SET first_name = b.first_name, last_name = b.last_name,
               search_name = b.search_name, search_name_rev = b.search_name_rev,
               fields = {fragment["json"].format("b.fields")}, status = b.status,
               deleted_at = b.deleted_at, updated_at = b.updated_at
           FROM import_before_images b
           WHERE b.import_id = :iid AND contacts.id = b.contact_id""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    tags, tag_id = fragment["image_tags"], fragment["tag_id"]
    _execute(
        f"""DELETE FROM contact_tags
           WHERE contact_id IN (SELECT contact_id FROM import_before_images WHERE import_id = :iid)
             AND NOT EXISTS (SELECT 1 FROM import_before_images b {tags}
                             WHERE b.import_id = :iid AND b.contact_id = contact_tags.contact_id
                               AND {tag_id} = contact_tags.tag_id)""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    _execute(
        f"""INSERT INTO contact_tags (contact_id, tag_id)
           SELECT b.contact_id, tg.id FROM import_before_images b {tags}
           JOIN tags tg ON tg.id = {tag_id}
           WHERE b.import_id = :iid
           ON CONFLICT (contact_id, tag_id) DO NOTHING""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    _execute("DELETE FROM import_before_images WHERE import_id = :iid", **p)


def _tell_undo_listeners(p: dict[str, Any]) -> None:
    """After an undo: the contacts set back to the backup (or back to "to be deleted"),
    and those only taken out of the group, as one event each; the body a provider gets
    carries their current groups and tags."""
    _emit(
        events.CONTACT_DELETED,
        """SELECT p.contact_id FROM backup_pending_deletions p
           JOIN contacts c ON c.id = p.contact_id AND c.account_id = :acc
           WHERE p.backup_id = :bid AND c.status = 'deleted'""",
        **p,
    )
    _emit(
        events.CONTACT_UPDATED,
        """SELECT c.id AS contact_id FROM contacts c
           WHERE c.account_id = :acc AND c.status <> 'deleted'
             AND (c.id IN (SELECT contact_id FROM backup_undo_rows)
                  OR c.id IN (SELECT contact_id FROM backup_undo_removed))""",
        **p,
    )


def run_undo(undo: ImportUndo, storage: BackupStorage | None = None) -> None:
    """Put the group back as the import's backup shows it, in one transaction: either
    the whole undo happens or none of it. Called by the RQ task and by tests."""
    storage = storage or get_storage()
    if undo.status == UndoStatus.FINISHED:
        return
    job = db.session.get(ImportJob, undo.import_id)
    undo.status = UndoStatus.RUNNING.value
    db.session.commit()
    try:
        sql.lock_group(job.group_id)  # imports into this group wait for the undo
        if job.undone_at is not None:
            raise UndoRefused(_l("This import has already been undone."))
        backup = live_backup(job.account_id, job.backup_id)
        if (
            (backup is None and not job.group_was_empty)
            or job.group_id is None
            or db.session.get(Group, job.group_id) is None
        ):
            raise UndoRefused(
                _l("The backup or the group of this import no longer exists; nothing was changed.")
            )
        if _import_running_into(job.group_id, except_id=job.id):
            raise UndoRefused(
                _l("Another import into this group is running. Please wait until it has finished.")
            )
        from portal.backups import recovery  # recovery builds on this module: a cycle

        plan = recovery.plan_undo(job, backup, storage)
        _apply_undo(job, backup, undo, plan)
        drop_scratch()
        db.session.expire_all()
        job = db.session.get(ImportJob, undo.import_id)
        now = clock.now()
        job.undone_at = now
        undo.status = UndoStatus.FINISHED.value
        undo.finished_at = now
        audit.record(
            "import.undone",
            account=_account(job.account_id),
            actor=undo.created_by,
            object_type="import",
            object_id=job.id,
            details={
                "group": job.group_name,
                "backup_id": backup.id if backup is not None else None,
                "restored": undo.restored,
                "removed": undo.removed,
                "deleted": undo.deleted,
            },
        )
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        undo = db.session.get(ImportUndo, undo.id)
        undo.status = UndoStatus.FAILED.value
        undo.error = str(exc.args[0]) if isinstance(exc, ServiceError) else ""
        undo.finished_at = clock.now()
        db.session.commit()
        if not isinstance(exc, ServiceError):
            raise


def undo_message(undo: ImportUndo) -> str:
    if undo.status == UndoStatus.FAILED:
        return undo.error or _("The undo failed. Nothing was changed. Please try again.")
    return ""


# --- retention -----------------------------------------------------------------------------


def delete_backup(backup: Backup, storage: BackupStorage | None = None) -> None:
    """File first, then the row: a failure leaves a row to retry, never a lost file.
    Without its backup an import cannot be undone, so its before images go too."""
    (storage or get_storage()).delete(backup.storage_key)
    db.session.execute(
        delete(BackupPendingDeletion).where(BackupPendingDeletion.backup_id == backup.id)
    )
    undone_by_it = select(ImportJob.id).where(ImportJob.backup_id == backup.id)
    db.session.execute(
        delete(ImportBeforeImage).where(ImportBeforeImage.import_id.in_(undone_by_it))
    )
    db.session.delete(backup)


def remove_expired(now: datetime | None = None, storage: BackupStorage | None = None) -> int:
    """Remove the backups older than 30 days (file and row), in batches, and sweep files
    that no row points to (left by an interrupted snapshot). Returns the backups removed."""
    storage = storage or get_storage()
    now = now or clock.now()
    removed = 0
    while True:
        batch = list(
            db.session.scalars(
                select(Backup).where(Backup.expires_at <= now).order_by(Backup.id).limit(500)
            )
        )
        if not batch:
            break
        for backup in batch:
            delete_backup(backup, storage)
        db.session.commit()
        removed += len(batch)
    # imports into an empty group have no backup: their before images (the undo's
    # records) go after the same 30 days
    stale = select(ImportJob.id).where(
        ImportJob.group_was_empty, ImportJob.created_at <= now - timedelta(days=RETENTION_DAYS)
    )
    db.session.execute(delete(ImportBeforeImage).where(ImportBeforeImage.import_id.in_(stale)))
    db.session.commit()
    known = set(db.session.scalars(select(Backup.storage_key)))
    for entry in list(storage.entries()):
        if entry.key not in known and entry.modified_at < now - ORPHAN_AGE:
            storage.delete(entry.key)
            log.warning("removed backup file %s that no backup row points to", entry.key)
    if removed:
        log.info("removed %s expired backup(s)", removed)
    return removed


# --- moving files between stores ----------------------------------------------------------


@dataclass
class MoveCounts:
    moved: int = 0
    already_there: int = 0  # verified in the target (a run before was interrupted)
    missing: int = 0  # in neither store
    damaged: int = 0  # the source's bytes do not match the row: left where they are
    without_row: int = 0  # files in the source no backup points to (swept by retention)


def _matches(backup: Backup, storage: BackupStorage) -> bool:
    """The store holds exactly the row's bytes (size and sha256); unlike verify() a
    missing file is an answer here, not an error to log."""
    try:
        return _measure(storage, backup.storage_key) == (backup.size, backup.checksum)
    except StorageError:
        return False


def move_files(source: BackupStorage, target: BackupStorage) -> MoveCounts:
    """Move every backup's file from `source` to `target` (flask portal move-files).
    The copy is read back and checked against the row's sha256 before the source copy
    is deleted, so a file is never lost; a second run continues where one stopped
    (a verified copy is not written again, only its source copy removed)."""
    counts = MoveCounts()
    known: set[str] = set()
    last_id = 0
    while batch := list(
        db.session.scalars(select(Backup).where(Backup.id > last_id).order_by(Backup.id).limit(500))
    ):
        for backup in batch:
            known.add(backup.storage_key)
            _move_one(backup, source, target, counts)
        last_id = batch[-1].id
        db.session.rollback()  # nothing written here; let go of the rows read
    counts.without_row = sum(1 for e in source.entries() if e.key not in known)
    return counts


def _move_one(backup: Backup, source: BackupStorage, target: BackupStorage, counts) -> None:
    key = backup.storage_key
    if target.exists(key):
        if _matches(backup, target):
            source.delete(key)
            counts.already_there += 1
            return
        target.delete(key)  # a damaged copy of a run before: made again
    if not source.exists(key):
        log.error("backup %s: file %s is in neither store", backup.id, key)
        counts.missing += 1
        return
    with source.open(key) as fh:
        stored = target.write_stream(key, iter(lambda: fh.read(READ_BYTES), b""))
    if (stored.size, stored.checksum) != (backup.size, backup.checksum) or not _matches(
        backup, target
    ):
        log.error("backup %s: file %s does not match its checksum, not moved", backup.id, key)
        target.delete(key)
        counts.damaged += 1
        return
    source.delete(key)
    counts.moved += 1


# --- receivers of portal.core.signals: automatic backups --------------------------------


def _group_is_empty(group: Group) -> bool:
    return (
        db.session.scalar(
            select(Subscription.id)
            .where(Subscription.group_id == group.id, Subscription.account_id == group.account_id)
            .limit(1)
        )
        is None
    )


def snapshot_before_import(job: ImportJob) -> None:
    """A portal import into a group whose switches are on: snapshot first - except of an
    empty group (a backup of nothing, issue 17): the import is marked instead, keeps
    before images as if it had a backup, and its undo empties the group again."""
    if job.source != "ui" or job.group_id is None or job.group_was_empty:
        return
    group = db.session.get(Group, job.group_id)
    if group is None or not automatic_backups_on(_account(job.account_id), group):
        return
    if _group_is_empty(group):
        job.group_was_empty = True
        return
    backup = snapshot(group, reason=BackupReason.IMPORT, actor=job.created_by, import_job=job)
    job.backup_id = backup.id


def snapshot_before_group_delete(group: Group, actor: User | None, source: str) -> None:
    """A group deleted from the portal: snapshot first; no backup, no deletion."""
    if source != "ui" or not automatic_backups_on(_account(group.account_id), group):
        return
    try:
        snapshot(group, reason=BackupReason.GROUP_DELETED, actor=actor)
    except (OSError, StorageError) as exc:
        log.exception("backup before deleting group %s failed", group.id)
        raise ServiceError(
            _l(
                "The backup of the group could not be saved, so the group was not deleted. "
                "Please try again later."
            )
        ) from exc
