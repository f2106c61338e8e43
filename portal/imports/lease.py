"""Fencing for import workers: at most one worker writes an import at any time.

A worker that starts (or continues) an import takes the lease: it bumps
`ImportJob.lease` and keeps the new value. Every transaction it commits ends with
`UPDATE import_jobs SET touched_at = now WHERE id = :id AND lease = :mine`, in the same
transaction as the batch's rows and checkpoint. When a second worker has taken the
import over (the "continue" button after ten quiet minutes), that update finds no row,
the batch is rolled back and the first worker stops: whatever it was doing when it
got stuck never reaches the database, and the second one resumes from the last
checkpoint that was committed under a valid lease.

A worker stuck *inside* a transaction would still hold its row locks and keep the
second one waiting, so on PostgreSQL every batch's transaction carries a
`statement_timeout` and an `idle_in_transaction_session_timeout` of
`IMPORT_STUCK_SECONDS` (default five minutes, well below the ten quiet minutes after
which the page offers to continue): the server cancels the stuck statement (a COPY
waiting for data, too) and ends the session, which releases the locks."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import text

from portal import clock
from portal.core import sql
from portal.extensions import db
from portal.imports.models import ImportJob


class LeaseLost(Exception):
    """Another worker has taken this import over; this one stops without writing."""


@dataclass(frozen=True)
class Lease:
    job_id: int
    token: int

    @classmethod
    def take(cls, job: ImportJob) -> Lease:
        """Make this worker the import's only writer, committing the job's pending
        changes (its status) with the new token. A worker that holds an older token
        learns of it at its next commit."""
        token = db.session.execute(
            db.update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(lease=ImportJob.lease + 1, touched_at=clock.now())
            .returning(ImportJob.lease)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        db.session.commit()  # also expires `job`: it reloads the latest checkpoints
        return cls(job.id, token)

    def begin(self, *, writes: bool = True) -> None:
        """The first statement of every batch: stop early if taken over.

        PostgreSQL: a plain read (no lock), which also sets this transaction's time
        limits and switches JIT compilation off for it: the merge's statements are
        costed in the millions when statistics are partial, and compiling them took
        0.3–0.7 s per chunk for statements that run in 0.2 s (measured, see
        docs/BENCHMARKS.md). SQLite: the fencing update itself, so that a batch that `writes` holds
        SQLite's only write lock from its first statement on — no other import can
        create an address between a chunk's classification and its writes. (A dry run
        only reads: it keeps nobody else from writing.)"""
        if sql.is_postgres():
            limit = f"{int(current_app.config['IMPORT_STUCK_SECONDS'])}s"
            held = self.token == db.session.scalar(
                text("""SELECT lease FROM import_jobs,
                          set_config('statement_timeout', :limit, true) AS st,
                          set_config('idle_in_transaction_session_timeout', :limit, true) AS it,
                          set_config('jit', 'off', true) AS jit
                        WHERE id = :id"""),
                {"id": self.job_id, "limit": limit},
            )
        elif writes:
            held = self._fence()
        else:
            held = self.token == db.session.scalar(
                db.select(ImportJob.lease).where(ImportJob.id == self.job_id)
            )
        if not held:
            self._lost()

    def commit(self) -> None:
        """Commit this worker's batch, but only while it still holds the import."""
        if not self._fence():
            self._lost()
        db.session.commit()

    def _fence(self) -> bool:
        held = db.session.execute(
            db.update(ImportJob)
            .where(ImportJob.id == self.job_id, ImportJob.lease == self.token)
            .values(touched_at=clock.now())
            .execution_options(synchronize_session=False)
        ).rowcount
        return held == 1

    def _lost(self) -> None:
        db.session.rollback()
        raise LeaseLost(f"import {self.job_id} was taken over by another worker")
