"""RQ glue for backups: the undo of an import, and the daily retention run."""

from __future__ import annotations

import logging

from portal.backups.models import BackupRestore, ImportUndo, UndoStatus
from portal.backups.restore import run_restore
from portal.backups.retention import remove_expired
from portal.backups.undo import run_undo
from portal.extensions import db, rq
from portal.jobs import failures

log = logging.getLogger(__name__)


@rq.job(queue="default")
def undo_import(undo_id: int) -> None:
    undo = db.session.get(ImportUndo, undo_id)
    if undo is None:
        log.warning("undo %s is gone", undo_id)
        return
    run_undo(undo)


def enqueue_undo(undo: ImportUndo) -> None:
    """The row is committed first; the job id comes from it, so a double click cannot
    start the same undo twice."""
    db.session.commit()
    undo_import.enqueue(undo.id, job_id=undo.rq_job_id, on_failure=failures.FAILURE_CALLBACK)


def _fail(undo_id: int, reason: str) -> bool:
    """The worker of the undo is gone (portal.jobs.failures): failed at once, so the
    import page offers the undo again."""
    undo = db.session.get(ImportUndo, undo_id)
    if undo is None or undo.status not in (UndoStatus.QUEUED.value, UndoStatus.RUNNING.value):
        return False
    undo.status = UndoStatus.FAILED.value
    undo.error = reason
    return True


failures.register(undo_import, "undo", _fail)


@rq.job(queue="default")
def restore_backup(restore_id: int) -> None:
    restore = db.session.get(BackupRestore, restore_id)
    if restore is None:
        log.warning("restore %s is gone", restore_id)
        return
    run_restore(restore)


def enqueue_restore(restore: BackupRestore) -> None:
    """Committed first; the job id comes from the row (a double click starts one)."""
    db.session.commit()
    restore_backup.enqueue(
        restore.id, job_id=restore.rq_job_id, on_failure=failures.FAILURE_CALLBACK
    )


def _fail_restore(restore_id: int, reason: str) -> bool:
    restore = db.session.get(BackupRestore, restore_id)
    if restore is None or restore.status not in (
        UndoStatus.QUEUED.value,
        UndoStatus.RUNNING.value,
    ):
        return False
    restore.status = UndoStatus.FAILED.value
    restore.error = reason
    return True


failures.register(restore_backup, "restore", _fail_restore)


@rq.job(queue="low")
def remove_expired_backups() -> int:
    """Daily (see portal/jobs/cron.py): backups older than 30 days, file and row."""
    return remove_expired()
