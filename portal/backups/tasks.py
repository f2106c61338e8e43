"""RQ glue for backups: the undo of an import, and the daily retention run."""

from __future__ import annotations

import logging

from portal.backups.models import BackupRestore, ImportUndo, UndoStatus
from portal.backups.restore import run_restore
from portal.backups.retention import remove_expired
from portal.backups.undo import run_undo
from portal.extensions import db, rq
from portal.jobs import failures
from portal.jobs.ids import job_id

log = logging.getLogger(__name__)


@rq.job(queue="default")
def undo_import(undo_id: int) -> None:
    undo = db.session.get(ImportUndo, undo_id)
    if undo is None:
        log.warning("undo %s is gone", undo_id)
        return
    run_undo(undo)


def enqueue_undo(undo: ImportUndo) -> None:
    """The row is committed first, so the worker finds it. A second job for the same
    undo finds it finished or, under the group's lock, the import already undone
    (portal/jobs/ids.py: ids do not keep it out)."""
    db.session.commit()
    undo_import.enqueue(
        undo.id, job_id=job_id("undo", undo.id), on_failure=failures.FAILURE_CALLBACK
    )


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
    """Committed first, so the worker finds it; a second job for a finished restore
    returns at once (restore.run_restore)."""
    db.session.commit()
    restore_backup.enqueue(
        restore.id, job_id=job_id("restore", restore.id), on_failure=failures.FAILURE_CALLBACK
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
