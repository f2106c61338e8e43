"""Backups of a group's master data, and undos of imports.

A Backup row describes one gzip-compressed CSV in the backup storage (in exactly the
import format, see service.py). The group may be gone: its name is kept on the row.
Activities are never part of a backup."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.database import BigId, TenantOwned, UTCDateTime
from portal.extensions import db


class BackupReason(enum.StrEnum):
    IMPORT = "import"  # taken before an import into the group from the portal
    GROUP_DELETED = "group_deleted"  # taken before the group was deleted
    MANUAL = "manual"


class Backup(TenantOwned, db.Model):
    __tablename__ = "backups"
    __table_args__ = (
        # the backups page: an account's backups by group name, newest first
        Index("ix_backups_account_group_created", "account_id", "group_name", "created_at"),
        # the daily retention run
        Index("ix_backups_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    group_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(16))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    contact_count: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes, compressed
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the stored file
    storage_key: Mapped[str] = mapped_column(String(500))

    created_by = relationship("User")

    @property
    def reason_enum(self) -> BackupReason:
        return BackupReason(self.reason)

    def __repr__(self) -> str:
        return f"<Backup {self.id} {self.group_name!r} {self.reason}>"


class BackupPendingDeletion(db.Model):
    """A contact of the group that was "to be deleted" when the backup was taken.

    The import format has no column for it, but an import with "Restore deleted
    contacts" brings such contacts back; the undo marks them to be deleted again.
    Only ids and dates: no personal data."""

    __tablename__ = "backup_pending_deletions"

    backup_id: Mapped[int] = mapped_column(
        ForeignKey("backups.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UndoStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class ImportUndo(TenantOwned, db.Model):
    """The undo of one import: committed before it is enqueued, its state and counters
    written by the worker, so the import page shows it without asking Redis."""

    __tablename__ = "import_undos"
    __table_args__ = (Index("ix_import_undos_import", "import_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("backups.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=UndoStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    restored: Mapped[int] = mapped_column(Integer, default=0)  # contacts set back
    removed: Mapped[int] = mapped_column(Integer, default=0)  # taken out of the group
    deleted: Mapped[int] = mapped_column(Integer, default=0)  # removed altogether
    error: Mapped[str] = mapped_column(Text, default="")

    created_by = relationship("User")


class RestoreMode(enum.StrEnum):
    EXACT = "exact"  # the group becomes the backup: later members leave it
    ADD_MISSING = "add_missing"  # set back and add back; later members stay


class BackupRestore(TenantOwned, db.Model):
    """One restore of a backup, as confirmed on its confirmation page: committed before
    it is enqueued; `expected` holds the counts the page showed, `counts` what was done
    (they differ only when the group changed between the page and the confirmation,
    then `changed_meanwhile` is set and the backups page says so)."""

    __tablename__ = "backup_restores"
    __table_args__ = (Index("ix_backup_restores_backup", "backup_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("backups.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    group_name: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(16), default=RestoreMode.EXACT.value)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=UndoStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_meanwhile: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str] = mapped_column(Text, default="")

    created_by = relationship("User")
