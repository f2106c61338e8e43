"""A linked provider, its tag mapping, the outbox of events for it, full syncs and
exports.

- ProviderLink: an account links one provider at a time (a partial unique index). Links
  are never deleted: a reset by support staff keeps the old row (status "reset") for the
  record, and the owner links the new provider with a new row.
- OutgoingEvent: the transactional outbox. A row is written in the same transaction as
  the change it reports and holds ids and small facts only; the delivery builds the body
  from the contact's current state. Delivered strictly in id order per link.
- SyncRun: a full sync after linking, resumable from its keyset checkpoint.
- ExportRun: a lossless export as a job, with a download that expires.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.database import BigId, TenantOwned, UTCDateTime
from portal.extensions import db


class LinkStatus(enum.StrEnum):
    LINKED = "linked"
    RESET = "reset"  # reset by support staff; the owner may link a new provider


class ProviderLink(TenantOwned, db.Model):
    __tablename__ = "provider_links"
    __table_args__ = (
        Index(
            "uq_provider_links_one_linked",
            "account_id",
            unique=True,
            postgresql_where=text("status = 'linked'"),
            sqlite_where=text("status = 'linked'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    profile: Mapped[str] = mapped_column(String(32))  # see profiles.PROFILES
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))  # signs every request (HMAC-SHA256)
    status: Mapped[str] = mapped_column(String(16), default=LinkStatus.LINKED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reset_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reset_reason: Mapped[str] = mapped_column(Text, default="")
    mapping_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # one delivering worker at a time: a lease, taken with a conditional UPDATE
    delivering_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by = relationship("User", foreign_keys=[created_by_id])
    reset_by = relationship("User", foreign_keys=[reset_by_id])

    @property
    def is_linked(self) -> bool:
        return self.status == LinkStatus.LINKED.value


class TagMapping(db.Model):
    """How one of the account's tags travels to the linked provider."""

    __tablename__ = "tag_mappings"
    __table_args__ = (UniqueConstraint("link_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("provider_links.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    remote_name: Mapped[str] = mapped_column(String(200))
    remote_id: Mapped[int | None] = mapped_column(Integer)


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after MAX_AGE; can be sent again from the log


class OutgoingEvent(TenantOwned, db.Model):
    __tablename__ = "integration_events"
    __table_args__ = (
        Index("ix_integration_events_link_status_id", "link_id", "status", "id"),
        Index("ix_integration_events_contact", "account_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("provider_links.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(BigInteger)  # no FK: the contact may go
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ids and small facts
    sync_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # HTTP status of the last try
    last_error: Mapped[str] = mapped_column(String(500), default="")


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class SyncRun(TenantOwned, db.Model):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("provider_links.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint: Mapped[int | None] = mapped_column(BigInteger)  # the last contact id queued
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExportRun(TenantOwned, db.Model):
    __tablename__ = "export_runs"
    __table_args__ = (Index("ix_export_runs_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    group_name: Mapped[str] = mapped_column(String(200), default="")  # "" = all contacts
    all_contacts: Mapped[bool] = mapped_column(Boolean, default=True)
    format: Mapped[str] = mapped_column(String(8))  # csv | jsonl
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    # the file's key in the file store (area "exports"), "" once it is gone; the name
    # is older than the store (it held the file's path)
    path: Mapped[str] = mapped_column(String(1024), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    # sha256 of the stored file, verified by every read; "" for files stored before
    sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by = relationship("User")
