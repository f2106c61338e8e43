"""What keeps a running import fast, and alone in its account while it merges, on
PostgreSQL: the planner's statistics of the rows it fills, and the account's turn.
On SQLite both are nothing (core.sql.strategy: no ANALYZE, no row locks)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from portal.core import sql
from portal.database_setup import planned_rows
from portal.extensions import db
from portal.imports.models import ImportJob

STALE_FACTOR = 10
# an estimate this large already rules out the plans that trust in "a row or so"
ESTIMATE_LARGE_ENOUGH = 10_000


class PlannerStatistics:
    """PostgreSQL: keeps the planner's picture of this import's staged lines, its
    account's contacts and its group's subscriptions true enough while the import runs.

    With statistics from before the import the planner estimates a row or so for
    `account_id = :acc`, and then any index that begins with account_id looks as good
    as the unique address index: each line's contact look-up walked every contact of
    the account, and the second chunk of an import into a new account took 120 s
    instead of 1 s (measured: the Redis drill in CI, then auto_explain). The same
    happens to `group_id = :gid` on subscriptions (9.7 s for one UPDATE after a group
    was filled) and to the duplicate-line check on staging (quadratic: 7.8 s for lines
    1–10,000, a minute for 20,001–30,000). Autovacuum refreshes these statistics too,
    but a minute or more later, and that race made the slow chunks come and go.

    `refresh` (before the dry run and before each chunk) asks the planner for its
    estimate (an EXPLAIN, under a millisecond); below ESTIMATE_LARGE_ENOUGH it counts
    the rows that are there, up to ten times the estimate (an index-only count, at
    most 100,000 entries), and ANALYZEs the table when they reach that: 0.2–0.3 s at
    100,000 rows. An ANALYZE samples the table, so a small account may stay unseen;
    the next one for a table then needs ten times the rows counted at the last, which
    bounds them to a handful per import. Its own autocommit connection: the lock
    ANALYZE takes ends with it, not with a chunk's transaction. A chunk refreshes
    during its account's turn (take_turn_in_account), so no other import's commit
    comes between the refresh and the classification."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.counted_at_analyze: dict[str, int] = {}

    def _watched(self) -> list[tuple[str, str, str, int]]:
        """(table, columns to ANALYZE, the import's share of it, its :key). The columns
        are the ones the look-ups filter on: with `account_id` alone analyzed the planner
        knew no `email` and expected 250 contacts per address (its default of 0.5 %)."""
        job = self.job
        watched = [
            ("import_rows", "import_id, email", "import_id = :key", job.id),
            ("contacts", "account_id, email", "account_id = :key", job.account_id),
        ]
        if job.group_id is not None:
            watched.append(
                ("subscriptions", "group_id, contact_id", "group_id = :key", job.group_id)
            )
        return watched

    def refresh(self) -> list[str]:
        """ANALYZE the watched tables whose estimate is ten times short; their names."""
        if not sql.strategy().analyze:
            return []
        analyzed = []
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table, columns, where, key in self._watched():
                believed = max(
                    planned_rows(conn, table, where, {"key": key}),
                    self.counted_at_analyze.get(table, 0),
                )
                if believed >= ESTIMATE_LARGE_ENOUGH:
                    continue
                enough = int(believed * STALE_FACTOR) + 1
                if _count_up_to(conn, table, where, key, enough) >= enough:
                    conn.execute(text(f"ANALYZE {table} ({columns})"))
                    self.counted_at_analyze[table] = enough
                    analyzed.append(table)
        return analyzed


# the first key of the two-key advisory locks that give imports their turns, per account
ACCOUNT_TURN_LOCK = 40_001


def take_turn_in_account(account_id: int, on: Connection | None = None) -> None:
    """PostgreSQL: wait until no other import of this account is merging a chunk; the
    turn lasts until this chunk's transaction ends.

    Imports into one account take turns chunk by chunk (their staging still runs side
    by side). Two reasons. The statistics refresh must see what the account holds when
    the chunk is classified: in the concurrent-imports drill one import's first chunk
    took 93 s, because the other import committed thousands of contacts between that
    chunk's refresh and its classification, and the look-up of each line walked them.
    And no other import can create one of the chunk's new addresses between its
    classification and its insert, as on SQLite, whose chunks hold its only write lock.
    Merging two chunks into the same account's indexes at once bought little on two
    cores; other writers (the API, the sign-up form) never wait for it. `on`: another
    connection than the session's."""
    if not sql.strategy().row_locks:
        return
    (on or db.session).execute(
        text("SELECT pg_advisory_xact_lock(:kind, :account)"),
        {"kind": ACCOUNT_TURN_LOCK, "account": account_id},
    )


def _count_up_to(conn: Connection, table: str, where: str, key: int, limit: int) -> int:
    return conn.execute(
        text(f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} LIMIT :n) x"),  # nosec B608  # constants only
        {"key": key, "n": limit},
    ).scalar_one()
