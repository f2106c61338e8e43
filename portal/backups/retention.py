"""When backup files go, and where they live: the 30-day retention (file first, then
the row; orphaned files swept) and moving every file from one store to another
(`flask portal move-files`), never losing one."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from portal import clock
from portal.backups.models import Backup, BackupPendingDeletion
from portal.core import move
from portal.core.storage import BACKUPS, BackupStorage, get_storage, remove_unreferenced
from portal.extensions import db
from portal.imports.models import ImportBeforeImage, ImportJob

log = logging.getLogger(__name__)

RETENTION_DAYS = 30
ORPHAN_AGE = timedelta(days=1)  # files without a row older than this are swept


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
    for key in remove_unreferenced(storage, known, now - ORPHAN_AGE):
        log.warning("removed backup file %s that no backup row points to", key)
    if removed:
        log.info("removed %s expired backup(s)", removed)
    return removed


# --- moving files between stores (portal.core.move) ---------------------------------------


def _known_files(source: BackupStorage):
    """The backup files, with the size and sha256 their rows keep."""
    columns = (Backup.id, Backup.storage_key, Backup.size, Backup.checksum)
    return move.rows_of(select(*columns), Backup.id)


move.register(BACKUPS, _known_files)
