"""What the import pages, the API and the home page read about imports: the problems
by line, the history, the progress bar. Read-only: every write is in service.py."""

from __future__ import annotations

from typing import Any

from portal import clock
from portal.extensions import db
from portal.imports.models import ImportJob, ImportRowProblem, ImportStatus


def problems(
    job: ImportJob, limit: int | None = None, kind: str | None = None
) -> list[ImportRowProblem]:
    """Refused and skipped rows and warnings, by line; `kind` picks one of them."""
    query = (
        db.select(ImportRowProblem)
        .where(ImportRowProblem.import_id == job.id)
        .order_by(ImportRowProblem.line, ImportRowProblem.id)
    )
    if kind is not None:
        query = query.where(ImportRowProblem.kind == kind)
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def history(account, limit: int = 50) -> list[ImportJob]:
    return list(
        db.session.scalars(
            db.select(ImportJob)
            .where(ImportJob.account_id == account.id)
            .order_by(ImportJob.id.desc())
            .limit(limit)
        )
    )


UNFINISHED = (
    ImportStatus.UPLOADED,
    ImportStatus.CHECKING,
    ImportStatus.READY,
    ImportStatus.QUEUED,
    ImportStatus.WAITING,
    ImportStatus.RUNNING,
)
ENDED = (ImportStatus.FINISHED, ImportStatus.FAILED, ImportStatus.CANCELLED)


def _newest_in(account, statuses, limit: int) -> list[ImportJob]:
    return list(
        db.session.scalars(
            db.select(ImportJob)
            .where(
                ImportJob.account_id == account.id,
                ImportJob.status.in_([s.value for s in statuses]),
            )
            .order_by(ImportJob.id.desc())
            .limit(limit)
        )
    )


def unfinished(account, limit: int = 10) -> list[ImportJob]:
    """The account's imports that are not over: running, queued, being checked, or
    waiting for the customer (the mapping, the confirmation), newest first."""
    return _newest_in(account, UNFINISHED, limit)


def latest_ended(account, limit: int = 5) -> list[ImportJob]:
    """The account's last imports that ended (finished, failed or cancelled), newest
    first, with their counters - the "last imports and their results" of the home page."""
    return _newest_in(account, ENDED, limit)


def progress(job: ImportJob) -> dict[str, Any]:
    """What the progress page and its JSON endpoint show."""
    return {
        "id": job.id,
        "status": job.status,
        "percent": percent(job),
        "phase": phase(job),
        "rows_done": job.merged_line if phase(job) == "import" else job.staged_line,
        "rows_total": job.staged_line if job.staging_done else None,
        "eta_seconds": eta_seconds(job),
        "counters": job.counters(),
        "skipped_reasons": job.skipped_reasons or {},
        "dry_run": job.dry_run or {},
        "finished": job.status
        in (ImportStatus.FINISHED, ImportStatus.FAILED, ImportStatus.READY, ImportStatus.CANCELLED),
    }


def phase(job: ImportJob) -> str:
    """Which part of the work the bar shows: the check, waiting, the backup the portal
    makes first, the import itself."""
    if job.status == ImportStatus.CHECKING:
        return "check"
    if job.status in (ImportStatus.QUEUED, ImportStatus.WAITING):
        return "queued"
    if (
        job.status == ImportStatus.RUNNING
        and job.merged_line == 0
        and job.source == "ui"
        and not job.backup_id
        and not job.group_was_empty
        and job.staging_done
    ):
        return "backup"
    return "import"


def percent(job: ImportJob) -> int:
    """One bar per page that only moves forward. After a check (portal imports) the
    file is read already, so the import's bar is the share of lines merged, from 0; an
    import without a check (the API) reads and merges in one go."""
    if job.status in (ImportStatus.FINISHED, ImportStatus.READY):
        return 100
    staged = min(job.staged_bytes / job.file_size, 1.0) if job.file_size else 0.0
    if job.staging_done:
        staged = 1.0
    if job.status == ImportStatus.CHECKING:
        return int(staged * 100)
    merged = min(job.merged_line / job.staged_line, 1.0) if job.staged_line else 0.0
    if job.dry_run:
        return int(merged * 100)
    return int(staged * 60 + merged * 40)


def eta_seconds(job: ImportJob) -> int | None:
    """The time left at the pace of the import so far; None before there is a pace."""
    if job.status != ImportStatus.RUNNING or not job.started_at or not job.merged_line:
        return None
    if not job.staging_done or job.merged_line >= job.staged_line:
        return None
    spent = (clock.now() - job.started_at).total_seconds()
    if spent <= 0:
        return None
    rate = job.merged_line / spent
    return int((job.staged_line - job.merged_line) / rate)
