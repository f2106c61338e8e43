"""When backup files go, and where they live: the 30-day retention (file first, then
the row; orphaned files swept) and moving every file from one store to another
(`flask portal move-files`), never losing one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from portal import clock
from portal.backups.models import Backup, BackupPendingDeletion
from portal.backups.read import READ_BYTES, measure
from portal.core.storage import BackupStorage, StorageError, get_storage
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
    for entry in list(storage.entries()):
        if entry.key not in known and entry.modified_at < now - ORPHAN_AGE:
            storage.delete(entry.key)
            log.warning("removed backup file %s that no backup row points to", entry.key)
    if removed:
        log.info("removed %s expired backup(s)", removed)
    return removed


@dataclass
class MoveCounts:
    moved: int = 0
    already_there: int = 0  # verified in the target (a run before was interrupted)
    missing: int = 0  # in neither store
    damaged: int = 0  # the source's bytes do not match the row: left where they are
    without_row: int = 0  # files in the source no backup points to (swept by retention)


def _matches(backup: Backup, storage: BackupStorage) -> bool:
    """The store holds exactly the row's bytes (size and sha256); unlike verify() a
    missing file is an answer here, not an error to log."""
    try:
        return measure(storage, backup.storage_key) == (backup.size, backup.checksum)
    except StorageError:
        return False


def move_files(source: BackupStorage, target: BackupStorage) -> MoveCounts:
    """Move every backup's file from `source` to `target` (flask portal move-files).
    The copy is read back and checked against the row's sha256 before the source copy
    is deleted, so a file is never lost; a second run continues where one stopped
    (a verified copy is not written again, only its source copy removed)."""
    counts = MoveCounts()
    known: set[str] = set()
    last_id = 0
    while batch := list(
        db.session.scalars(select(Backup).where(Backup.id > last_id).order_by(Backup.id).limit(500))
    ):
        for backup in batch:
            known.add(backup.storage_key)
            _move_one(backup, source, target, counts)
        last_id = batch[-1].id
        db.session.rollback()  # nothing written here; let go of the rows read
    counts.without_row = sum(1 for e in source.entries() if e.key not in known)
    return counts


def _move_one(backup: Backup, source: BackupStorage, target: BackupStorage, counts) -> None:
    key = backup.storage_key
    if target.exists(key):
        if _matches(backup, target):
            source.delete(key)
            counts.already_there += 1
            return
        target.delete(key)  # a damaged copy of a run before: made again
    if not source.exists(key):
        log.error("backup %s: file %s is in neither store", backup.id, key)
        counts.missing += 1
        return
    with source.open(key) as fh:
        stored = target.write_stream(key, iter(lambda: fh.read(READ_BYTES), b""))
    if (stored.size, stored.checksum) != (backup.size, backup.checksum) or not _matches(
        backup, target
    ):
        log.error("backup %s: file %s does not match its checksum, not moved", backup.id, key)
        target.delete(key)
        counts.damaged += 1
        return
    source.delete(key)
    counts.moved += 1
