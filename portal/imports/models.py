"""An import is a row that the page, the API and the worker all read: its file,
mapping, options, checkpoints and counters. The worker writes progress here, so the
progress page never depends on Redis."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.database import BigId, TenantOwned, UTCDateTime
from portal.extensions import db


class ImportMode(enum.StrEnum):
    ADD = "add"  # add only
    UPDATE_ADD = "update_add"  # update and add
    UPDATE = "update"  # update only


class ImportStatus(enum.StrEnum):
    UPLOADED = "uploaded"  # file stored, waiting for the mapping
    CHECKING = "checking"  # dry run on the worker: reading and validating every row
    READY = "ready"  # dry run done, waiting for the confirmation
    QUEUED = "queued"
    WAITING = "waiting"  # another import into the same group runs first
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (
    ImportStatus.CHECKING,
    ImportStatus.QUEUED,
    ImportStatus.WAITING,
    ImportStatus.RUNNING,
)

COUNTERS = (
    "created", "updated", "unchanged", "reactivated", "restored", "skipped", "invalid",
    "warnings",
)  # fmt: skip


class ImportJob(TenantOwned, db.Model):
    __tablename__ = "import_jobs"
    __table_args__ = (
        Index("ix_import_jobs_account_created", "account_id", "created_at"),
        Index("ix_import_jobs_group_status", "group_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    group_name: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="ui")  # ui | api | restore | job

    mode: Mapped[str] = mapped_column(String(16), default=ImportMode.UPDATE_ADD.value)
    import_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    restore_deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    filename: Mapped[str] = mapped_column(String(255), default="")
    # the list's key in the file store (area "uploads", imports/files.py), "" once it
    # is gone; the name is older than the store (it held the file's path)
    stored_path: Mapped[str] = mapped_column(String(1024), default="")
    # sha256 of the stored list, verified by every read; "" for lists stored before
    file_sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    file_kind: Mapped[str] = mapped_column(String(8), default="csv")
    encoding: Mapped[str | None] = mapped_column(String(32))
    delimiter: Mapped[str | None] = mapped_column(String(1))
    file_size: Mapped[int] = mapped_column(BigId, default=0)
    header: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the tool whose export this looks like (profiles.py), "" when none
    detected_format: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # how dates are read: column position -> values.DATE_FORMATS ("" = day first or ISO)
    date_formats: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # the zone of dates written without one: "" = the account's, or "UTC"
    date_zone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # what the words of a consent column mean: position -> {values.word_key: meaning},
    # set by a tool profile or chosen in the check step
    value_meanings: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    # per consent column: rows that said what, unknown words (rows.ColumnStats)
    column_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.UPLOADED.value)
    # checkpoints: every committed batch moves them, so a killed worker resumes here
    staged_line: Mapped[int] = mapped_column(Integer, default=0)
    staged_bytes: Mapped[int] = mapped_column(BigId, default=0)
    staging_done: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_line: Mapped[int] = mapped_column(Integer, default=0)
    rows_valid: Mapped[int] = mapped_column(Integer, default=0)

    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    reactivated: Mapped[int] = mapped_column(Integer, default=0)
    restored: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    # optional cells that could not be read and were left empty (the row was imported)
    warnings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped_reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # consent effects written (consent.CONSENT_CASE): "new_off", "signed_off:bounced", ...
    consent_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    dry_run: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")

    backup_id: Mapped[int | None] = mapped_column(Integer)
    # a portal import into a group that was empty: no backup (nothing to save), its
    # undo takes the group back to empty from the import's own records (see backups)
    group_was_empty: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last sign of life
    # fencing token: a worker that starts the import bumps it; every batch it commits
    # checks it (portal/imports/lease.py), so a worker that was taken over writes nothing
    lease: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # see backups

    created_by = relationship("User")

    @property
    def is_active(self) -> bool:
        return self.status in {s.value for s in ACTIVE_STATUSES}

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


class ImportRowProblem(db.Model):
    """A row that was not imported: its line, its original cells and why (as a code
    with parameters, translated when shown or downloaded)."""

    __tablename__ = "import_row_problems"
    __table_args__ = (Index("ix_import_row_problems_import_line", "import_id", "line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # invalid | skipped | warning
    code: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cells: Mapped[list[str]] = mapped_column(JSON, default=list)


class ImportRow(db.Model):
    """Staging: one validated row of the file, until the import has merged it.

    NULL in a master-data column means "the file says nothing here": an empty cell
    never erases what the contact already has."""

    __tablename__ = "import_rows"
    __table_args__ = (Index("ix_import_rows_import_email", "import_id", "email"),)

    import_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_hash: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    search_name: Mapped[str] = mapped_column(String(400), default="")
    search_name_rev: Mapped[str] = mapped_column(String(400), default="")
    fields: Mapped[str | None] = mapped_column(Text)  # JSON text of the mapped custom fields
    tags: Mapped[str | None] = mapped_column(Text)  # JSON array of tag names
    signup_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool | None] = mapped_column(Boolean)
    optout_reason: Mapped[str | None] = mapped_column(String(16))
    # filled while merging
    contact_id: Mapped[int | None] = mapped_column(BigId)
    outcome: Mapped[str | None] = mapped_column(String(16))
    in_group: Mapped[bool | None] = mapped_column(Boolean)  # had a subscription already


class ImportBeforeImage(db.Model):
    """A contact as it was before an undoable import changed it: the import's group
    backup holds the group's contacts, not those of other groups that the file also
    named, and no contact's updated_at. Written in each chunk's transaction for the
    contacts that chunk updates, read by the undo, removed with the backup (and with
    the contact: a forgotten person leaves no image)."""

    __tablename__ = "import_before_images"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    # indexed on its own (the key leads with import_id): deleting a contact looks its
    # images up by contact_id, and without the index every one of an undo's or a purge's
    # deleted contacts read the whole table (undo of a 100k import: 119 s instead of 4 s)
    contact_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    search_name: Mapped[str] = mapped_column(String(400))
    search_name_rev: Mapped[str] = mapped_column(String(400))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tag_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON array of tag ids
