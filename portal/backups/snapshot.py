"""Taking a backup: a snapshot of a group's master data, streamed into the file store.

It holds email, names, custom fields, tags and the group's sign-up and sign-off data with
opt-out reasons — never activities — in the import format (imports/portal_format).
Snapshots are taken automatically before an import into the group from the portal and
before the group is deleted from the portal, when both the account's and the group's
"Automatic backups" switch are on; the API, integrations and jobs make none (`source`
decides, see the receivers at the bottom, connected to portal.core.signals by backups/wiring.py)."""

from __future__ import annotations

import csv
import io
import logging
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from psycopg import sql as pgsql
from sqlalchemy import func, literal, select

from portal import clock
from portal.backups.models import Backup, BackupPendingDeletion, BackupReason
from portal.backups.read import FETCH_ROWS, ROWS_PER_CHUNK, account_of
from portal.backups.retention import RETENTION_DAYS
from portal.contacts import fields as contact_fields
from portal.contacts.models import Contact, ContactStatus, Group, Subscription, Tag, contact_tags
from portal.core import audit, sql
from portal.core.errors import ServiceError
from portal.core.storage import BackupStorage, StorageError, get_storage, new_key
from portal.extensions import db
from portal.imports.models import ImportJob
from portal.imports.portal_format import field_text, header_for, iso_time, tag_order
from portal.safe_csv import safe_row

if TYPE_CHECKING:
    from portal.accounts.models import Account, User

log = logging.getLogger(__name__)

COMPRESS_LEVEL = 6
_TAG_SEP = "\x1f"  # joins tag names in SQL; names never contain it


def automatic_backups_on(account: Account, group: Group) -> bool:
    """Both switches must be on: the account's (settings, privacy) and the group's."""
    return bool(account.automatic_backups and group.automatic_backups)


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
        tag_text = ";".join(sorted(tags.split(_TAG_SEP), key=tag_order)) if tags else ""
        writer.writerow(
            safe_row(
                [
                    email,
                    first,
                    last,
                    tag_text,
                    "yes" if active else "no",
                    iso_time(signup),
                    iso_time(signoff),
                    reason or "",
                    *(field_text(fields.get(key)) for key in field_keys),
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
    account = account_of(group.account_id)
    started = clock.now()
    field_keys = [f.key for f in contact_fields.custom_fields(account)]
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
        _record_pending_deletions(backup, stats)
        _audit_created(backup, group, account, actor)
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


def _record_pending_deletions(backup: Backup, stats: _SnapshotStats) -> None:
    """The contacts that were "to be deleted" at the snapshot (an undo deletes them
    again), in batches."""
    for start in range(0, len(stats.pending), FETCH_ROWS):
        db.session.execute(
            BackupPendingDeletion.__table__.insert(),
            [
                {"backup_id": backup.id, "contact_id": cid, "deleted_at": deleted_at}
                for cid, deleted_at in stats.pending[start : start + FETCH_ROWS]
            ],
        )


def _audit_created(backup: Backup, group: Group, account: Account, actor: User | None) -> None:
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
            "contacts": backup.contact_count,
            "import_id": backup.import_id,
        },
    )


def _group_is_empty(group: Group) -> bool:
    return (
        db.session.scalar(
            select(Subscription.id)
            .where(Subscription.group_id == group.id, Subscription.account_id == group.account_id)
            .limit(1)
        )
        is None
    )


def backup_before_import(job: ImportJob) -> None:
    """A portal import into a group whose switches are on: snapshot first - except of an
    empty group (a backup of nothing, issue 17): the import is marked instead, keeps
    before images as if it had a backup, and its undo empties the group again."""
    if job.source != "ui" or job.group_id is None or job.group_was_empty:
        return
    group = db.session.get(Group, job.group_id)
    if group is None or not automatic_backups_on(account_of(job.account_id), group):
        return
    if _group_is_empty(group):
        job.group_was_empty = True
        return
    backup = snapshot(group, reason=BackupReason.IMPORT, actor=job.created_by, import_job=job)
    job.backup_id = backup.id


def backup_before_group_delete(group: Group, actor: User | None, source: str) -> None:
    """A group deleted from the portal: snapshot first; no backup, no deletion."""
    if source != "ui" or not automatic_backups_on(account_of(group.account_id), group):
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
