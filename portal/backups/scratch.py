"""The dry-run machinery that the restore of a backup (restore.py) and the undo of an
import (undo.py) share (issue 17, point 1): recovery that says what it will do and does
what it says.

Before every restore and every undo the portal shows a confirmation page filled by a dry
run: the backup is loaded into the scratch tables below (private to the connection),
every line and every member of the group is classified by set-based SQL into the table
`backup_plan`, and the counts and a few example addresses are read from it (Preview) -
then the transaction is rolled back, so nothing is written. The confirmed restore
(restore.run_restore, on a worker) and the undo (undo.run_undo) build the same plan again
in their own transaction and apply it, so the counts they record are the plan's: what the
page showed, unless the group changed in between (then the restore says so, see
docs/decisions/backups-restore-and-undo.md).

Forgotten addresses (suppression list) are never loaded, only counted: left alone."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    select,
    text,
)

from portal import events
from portal.backups.models import Backup, RestoreMode
from portal.backups.read import (
    DAMAGED,
    FETCH_ROWS,
    BackupUnreadable,
    account_of,
    forgotten_filter,
    read_rows,
)
from portal.contacts import fields as contact_fields
from portal.contacts.models import CustomField, FieldType, search_columns
from portal.core import sql
from portal.core.storage import BackupStorage
from portal.database import UTCDateTime
from portal.extensions import db
from portal.imports import mapping as m
from portal.imports.models import ImportJob, ImportStatus
from portal.imports.portal_format import parse_time, unguard


def import_running_into(group_id: int, except_id: int | None = None) -> bool:
    running = (ImportStatus.RUNNING.value, ImportStatus.QUEUED.value, ImportStatus.WAITING.value)
    query = select(ImportJob.id).where(
        ImportJob.group_id == group_id, ImportJob.status.in_(running)
    )
    if except_id is not None:
        query = query.where(ImportJob.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


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
# backup does not hold (line empty): see restore.py and undo.py
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
# the contacts whose tags differ from their backup line's (restore.py, undo.py)
TAG_DIFF = Table(
    "backup_tag_diff", _scratch, Column("contact_id", BigInteger, primary_key=True), **_TEMP
)
SCRATCH_TABLES = (UNDO_ROWS, UNDO_TAGS, UNDO_LINKS, UNDO_REMOVED, PLAN, TAG_DIFF)


def sql_clause(statement: str, **params: Any):
    """SQL built from constants with its parameters bound; datetimes as UTCDateTime
    (SQLite stores them as text in SQLAlchemy's format)."""
    used = {k: v for k, v in params.items() if re.search(rf":{k}\b", statement)}
    return text(statement).bindparams(
        *[
            bindparam(k, v, type_=UTCDateTime()) if isinstance(v, datetime) else bindparam(k, v)
            for k, v in used.items()
        ]
    )


def run_sql(statement: str, **params: Any) -> int:
    return db.session.execute(sql_clause(statement, **params)).rowcount or 0


def set_tags_exactly(lines: str, **params: Any) -> None:
    """The contacts of `lines` — a SELECT of (line, contact_id) over the loaded backup —
    get exactly the backup's tags: a missing tag is created, every other link removed.
    The restore passes its touched lines, the undo every line that has a contact."""
    run_sql(
        f"""INSERT INTO tags (account_id, name, created_at)
           SELECT DISTINCT :acc, t.name, :now FROM backup_undo_tags t
           JOIN ({lines}) x ON x.line = t.line WHERE true
           ON CONFLICT (account_id, name) DO NOTHING""",  # noqa: S608  # nosec B608  # constants only
        **params,
    )
    run_sql(
        f"""INSERT INTO backup_undo_links (contact_id, tag_id)
           SELECT DISTINCT x.contact_id, tg.id FROM backup_undo_tags t
           JOIN ({lines}) x ON x.line = t.line
           JOIN tags tg ON tg.account_id = :acc AND tg.name = t.name""",  # noqa: S608  # nosec B608  # constants only
        **params,
    )
    run_sql(
        f"""DELETE FROM contact_tags
           WHERE contact_id IN (SELECT x.contact_id FROM ({lines}) x)
             AND NOT EXISTS (SELECT 1 FROM backup_undo_links l
                             WHERE l.contact_id = contact_tags.contact_id
                               AND l.tag_id = contact_tags.tag_id)""",  # noqa: S608  # nosec B608  # constants only
        **params,
    )
    run_sql(
        """INSERT INTO contact_tags (contact_id, tag_id)
           SELECT contact_id, tag_id FROM backup_undo_links WHERE true
           ON CONFLICT (contact_id, tag_id) DO NOTHING""",
        **params,
    )


def emit_contacts(kind: str, id_select: str, **params: Any) -> None:
    """Tell a linked provider (portal.events) about every contact id the SELECT returns."""
    ids = sql_clause(id_select, **params).columns(column("contact_id", BigInteger))
    events.emit_select(params["acc"], kind, ids, source="undo")


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
        cells = [unguard(c) for c in cells] + [""] * (self.width - len(cells))
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
            "activated_at": parse_time(signup),
            "deactivated_at": parse_time(signoff),
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


def load_scratch(backup: Backup, storage: BackupStorage) -> int:
    """Fill the scratch tables from the verified backup; returns the number of rows
    (without the forgotten addresses, which are left out)."""
    create_scratch()
    connection = db.session.connection()
    definitions = {f.key: f for f in contact_fields.custom_fields(account_of(backup.account_id))}
    rows_iter = read_rows(storage, backup.storage_key, forgotten_filter(backup.account_id))
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
        sql_clause(
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


EXAMPLES = 3  # example addresses shown per kind
NO_ID = -1  # a group or backup that does not exist (matches no row)


@dataclass
class Preview:
    """What a restore or an undo will do: counts per kind and example addresses."""

    counts: dict[str, int]
    examples: dict[str, list[str]] = field(default_factory=dict)
    forgotten: int = 0  # backup lines left out: forgotten since (never shown by address)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    @property
    def removed(self) -> int:
        """Members the backup does not hold (they leave the group in "exact" mode)."""
        return self.count("removed") + self.count("orphaned")

    @property
    def modes_differ(self) -> bool:
        return self.removed > 0

    def outcome(self, mode: str) -> dict[str, int]:
        """The counts the restore in `mode` records (those the page shows for it)."""
        exact = mode == RestoreMode.EXACT
        return {
            "set_back": self.count("set_back"),
            "added": self.count("added"),
            "brought_back": self.count("brought_back"),
            "removed": self.removed if exact else 0,
            "to_be_deleted": self.count("orphaned") if exact else 0,
            "kept": self.count("kept"),
            "forgotten": self.forgotten,
            "unchanged": self.count("unchanged"),
        }


def match_contacts(account_id: int) -> None:
    """Which contact each line of the backup is (forgotten and purged ones: none)."""
    run_sql(
        """UPDATE backup_undo_rows SET contact_id = c.id FROM contacts c
           WHERE c.account_id = :acc AND c.email = backup_undo_rows.email""",
        acc=account_id,
    )
    if sql.strategy().analyze:  # contact_id is set now
        db.session.execute(text("ANALYZE backup_undo_rows"))


_NOW_TAGS = """SELECT ct.contact_id, t.name FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
    WHERE ct.contact_id IN (SELECT contact_id FROM backup_undo_rows)"""

_BACKUP_TAGS = """SELECT u.contact_id, bt.name FROM backup_undo_tags bt
    JOIN backup_undo_rows u ON u.line = bt.line WHERE u.contact_id IS NOT NULL"""


def find_tag_differences() -> None:
    """backup_tag_diff: the matched contacts whose tags are not exactly their line's -
    two set differences (hash joins), not two correlated subqueries per line."""
    for first, second in ((_NOW_TAGS, _BACKUP_TAGS), (_BACKUP_TAGS, _NOW_TAGS)):
        run_sql(
            f"""INSERT INTO backup_tag_diff (contact_id)
               SELECT DISTINCT d.contact_id FROM ({first} EXCEPT {second}) d WHERE true
               ON CONFLICT (contact_id) DO NOTHING"""  # noqa: S608  # nosec B608  # constants only
        )


_TAGS_DIFFER = "u.contact_id IN (SELECT contact_id FROM backup_tag_diff)"


def master_data_differs(fragment: dict[str, str]) -> str:
    """Names, custom fields or tags of `contacts` differ from the line `u`."""
    return f"""(COALESCE(contacts.first_name, '') <> COALESCE(u.first_name, '')
       OR COALESCE(contacts.last_name, '') <> COALESCE(u.last_name, '')
       OR {fragment["contact_fields_differ"]} OR {_TAGS_DIFFER})"""


def subscription_differs(fragment: dict[str, str]) -> str:
    d = fragment["differ"]
    return f"""(s.active <> u.active OR s.activated_at {d} u.activated_at
       OR s.deactivated_at {d} u.deactivated_at OR s.optout_reason {d} u.optout_reason)"""


def plan_counts() -> dict[str, int]:
    return {
        kind: int(n)
        for kind, n in db.session.execute(
            text("SELECT kind, COUNT(*) FROM backup_plan GROUP BY kind")
        )
    }


def plan_examples(kinds: tuple[str, ...], counts: dict[str, int]) -> dict[str, list[str]]:
    """A few addresses per kind (the contact's, or the backup's for one not there yet)."""
    found: dict[str, list[str]] = {}
    for kind in kinds:
        if kind == "unchanged" or not counts.get(kind):
            continue
        found[kind] = list(
            db.session.scalars(
                sql_clause(
                    """SELECT COALESCE(c.email, u.email) FROM backup_plan p
                       LEFT JOIN contacts c ON c.id = p.contact_id
                       LEFT JOIN backup_undo_rows u ON u.line = p.line
                       WHERE p.kind = :kind
                       ORDER BY COALESCE(c.email, u.email) LIMIT :n""",
                    kind=kind,
                    n=EXAMPLES,
                )
            )
        )
    return found


def describe_counts(counts: dict[str, Any]) -> dict[str, int]:
    return {k: int(counts.get(k, 0)) for k in Preview({}).outcome(RestoreMode.EXACT)}
