"""The one rule for RQ job ids of the portal's work.

A job id is `<kind>-<row id>[-<step>]`: the row the work is about (an import, a mass
action, an undo, a restore, a sync, an export) and, for work that resumes, the step it
starts from (a checkpoint, or the check's time). It tells whoever reads the queues
(`rq info`, the support console) what a job is for.

It does NOT keep a second job out: RQ enqueues a job whose id exists once more. What
keeps the same work from running twice is the row itself — its status, checked when the
job starts, and for long work its lease (imports/lease.py) or checkpoint — so a double
click, a retry or a second worker is safe whatever the ids are. portal.jobs.failures
finds a job's row from the job's first argument, not from its id."""

from __future__ import annotations


def job_id(kind: str, row_id: int, step: object | None = None) -> str:
    """`<kind>-<row id>` or `<kind>-<row id>-<step>`."""
    parts = [kind, str(int(row_id))]
    if step is not None:
        parts.append(str(step))
    return "-".join(parts)
