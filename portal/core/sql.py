"""Where PostgreSQL and SQLite differ — in one place.

The same code runs on both (DESIGN.md: SQLite embedded, PostgreSQL in production, CI
proves both). Most statements are portable; what is not falls into three kinds:

- **fragments**: a few SQL snippets each database spells differently (JSON, LATERAL,
  IS DISTINCT FROM), in one table, FRAGMENTS, that the hand-written statements of the
  import merge and of the backup restore and undo format in;
- **parameters and locks**: a datetime handed to a raw statement or to COPY
  (utc_param), and the row lock that makes imports into a group wait while it is
  set back (lock_group);
- **strategies**: what the portal deliberately does differently per database because
  the database works differently, named in STRATEGIES (see Strategy) instead of behind
  an `if dialect == "postgresql"` at each place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.engine import Connection, Engine

from portal.extensions import db

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def dialect_name(bind: Connection | Engine | None = None) -> str:
    """ "postgresql" or "sqlite": of `bind`, else of the session's connection."""
    return (bind if bind is not None else db.session.get_bind()).dialect.name


def is_postgres(bind: Connection | Engine | None = None) -> bool:
    return dialect_name(bind) == POSTGRESQL


# --- strategies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """The deliberate differences, each measured (docs/BENCHMARKS.md) or forced by how
    the database locks."""

    # bulk rows (staged import lines, a backup's scratch rows): COPY ... FROM STDIN on
    # PostgreSQL, ~6 times faster than batched INSERTs; SQLite gets a thousand rows per
    # INSERT statement (one executemany gave up the GIL once per row)
    copy_rows: bool
    # an import stages its file in a session (a server process) of its own while the
    # merge runs beside it; SQLite has one writer at a time, so the same session merges
    # after each batch
    separate_staging_session: bool
    # SELECT ... FOR UPDATE on the group (lock_group) and advisory locks give imports,
    # restores and undos their turns; SQLite's one write lock already serializes them
    row_locks: bool
    # refresh the planner's statistics (ANALYZE) of tables an import or a restore just
    # filled; SQLite plans without them
    analyze: bool
    # an import's new contacts get their ids from the sequence when its chunk is
    # classified, so every later statement joins by primary key; SQLite looks them up
    # by address after the insert
    ids_from_sequence: bool


STRATEGIES = {
    POSTGRESQL: Strategy(
        copy_rows=True,
        separate_staging_session=True,
        row_locks=True,
        analyze=True,
        ids_from_sequence=True,
    ),
    SQLITE: Strategy(
        copy_rows=False,
        separate_staging_session=False,
        row_locks=False,
        analyze=False,
        ids_from_sequence=False,
    ),
}


def strategy(bind: Connection | Engine | None = None) -> Strategy:
    return STRATEGIES[dialect_name(bind)]


# --- parameters and locks --------------------------------------------------------------


def utc_param(value: Any, dialect: str) -> Any:
    """A datetime as a raw statement (exec_driver_sql) or COPY takes it, bypassing the
    UTCDateTime column type: naive UTC for PostgreSQL, SQLAlchemy's own text format
    ("2026-01-31 23:59:59.000000") for SQLite, which stores datetimes as text. Any
    other value (None included) is returned as it is."""
    if not isinstance(value, datetime):
        return value
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds") if dialect == SQLITE else naive


_groups = table("groups", column("id"))


def lock_group(group_id: int | None) -> None:
    """Where the database has row locks: hold the group's row until the transaction ends,
    so that imports into it, a restore and an undo of it take turns (SQLite: its one
    write lock already does)."""
    if group_id is None or not strategy().row_locks:
        return
    db.session.execute(select(_groups.c.id).where(_groups.c.id == group_id).with_for_update())


# --- fragments -------------------------------------------------------------------------

FRAGMENTS: dict[str, dict[str, str]] = {
    POSTGRESQL: {
        "json": "CAST({} AS json)",
        "differ": "IS DISTINCT FROM",
        "merge_fields": "CAST(CAST({base} AS jsonb) || CAST({patch} AS jsonb) AS json)",
        # the import: would the patch change the contact's fields?
        "fields_differ": (
            "(CAST({base} AS jsonb) || CAST({patch} AS jsonb)) <> CAST({base} AS jsonb)"
        ),
        # the restore and the undo: are the contact's fields the backup line's?
        "contact_fields_differ": "CAST(contacts.fields AS jsonb) <> CAST(u.fields AS jsonb)",
        "json_array": "json_build_array",
        "json_object": "json_build_object",
        "empty_json": "CAST('{}' AS json)",
        "by_email": "",
        # the tag names of a staged row (a JSON array), as rows with a column `value`
        "tag_names": "json_array_elements_text(CAST({} AS json)) AS t",
        "tag_join": "CROSS JOIN LATERAL json_array_elements_text(CAST({} AS json)) AS t",
        # the tag ids of a before image (a JSON array), as rows with a column `value`
        "image_tags": "CROSS JOIN LATERAL json_array_elements_text(CAST(b.tag_ids AS json)) t",
        "tag_id": "CAST(t.value AS integer)",
        "on_commit_drop": "ON COMMIT DROP",
        # one index look-up per staged row, whatever the statistics say: a hash join
        # would read every contact of the account for every chunk
        "probe": (
            "LEFT JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {on} OFFSET 0) {alias} ON true"
        ),
        "offset_0": "OFFSET 0",
        "tag_ids": """COALESCE((SELECT CAST(json_agg(ct.tag_id ORDER BY ct.tag_id) AS text)
                     FROM contact_tags ct WHERE ct.contact_id = c.id), '[]')""",
    },
    SQLITE: {
        "json": "{}",
        "differ": "IS NOT",
        "merge_fields": "json_patch({base}, {patch})",
        "fields_differ": "json_patch({base}, {patch}) <> json({base})",
        # same keys, types and values, whatever the order of the keys
        "contact_fields_differ": """NOT (
            (SELECT COUNT(*) FROM json_each(contacts.fields))
              = (SELECT COUNT(*) FROM json_each(u.fields))
            AND NOT EXISTS (SELECT 1 FROM json_each(u.fields) b WHERE NOT EXISTS (
                SELECT 1 FROM json_each(contacts.fields) a
                WHERE a.key = b.key AND a.type = b.type AND a.atom IS b.atom)))""",
        "json_array": "json_array",
        "json_object": "json_object",
        "empty_json": "'{}'",
        # SQLite would otherwise walk the primary key for `line <`, quadratic in the file
        "by_email": "INDEXED BY ix_import_rows_import_email",
        "tag_names": "json_each({}) AS t",
        "tag_join": "JOIN json_each({}) AS t",
        "image_tags": "JOIN json_each(b.tag_ids) t",
        "tag_id": "t.value",
        "on_commit_drop": "",
        "probe": "LEFT JOIN {table} {alias} ON {on}",
        "offset_0": "",
        "tag_ids": """(SELECT json_group_array(tag_id) FROM (SELECT ct.tag_id FROM contact_tags ct
                     WHERE ct.contact_id = c.id ORDER BY ct.tag_id))""",
    },
}


def fragments(bind: Connection | Engine | None = None) -> dict[str, str]:
    """The fragment table of the database in use."""
    return FRAGMENTS[dialect_name(bind)]
