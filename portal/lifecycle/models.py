"""What the lifecycle of a contact leaves in the database (the suppression list, all that
stays of a forgotten contact, is portal.core.privacy: every area checks it).

- LifecycleJob: a deletion, restore or erasure of many contacts at once, run by a worker
  in batches; its row carries the selection, the checkpoint and the counters, so the
  progress page never asks Redis and a killed worker resumes without doing anything twice.
- SignupRequest: a sign-up through a group's public form that waits for its double
  opt-in confirmation. It holds the person's address until it is confirmed or expires.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.database import TenantOwned, UTCDateTime
from portal.extensions import db


class LifecycleAction(enum.StrEnum):
    DELETE = "delete"  # soft: "to be deleted", restorable until the nightly purge
    RESTORE = "restore"
    FORGET = "forget"  # immediate, irreversible erasure + suppression


class LifecycleStatus(enum.StrEnum):
    DRAFT = "draft"  # checked and counted, waiting for the user's confirmation
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class LifecycleJob(TenantOwned, db.Model):
    """One mass action. `selection` is {"scope": "filter", "filter": "<query string>"}
    or {"scope": "ids", "ids": [...]} or {"scope": "emails", "emails": [...]}; a list of
    addresses is wiped from the row when the job ends (it may name forgotten people)."""

    __tablename__ = "lifecycle_jobs"
    __table_args__ = (Index("ix_lifecycle_jobs_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="ui")
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
    status: Mapped[str] = mapped_column(String(16), default=LifecycleStatus.QUEUED.value)
    total: Mapped[int] = mapped_column(Integer, default=0)  # expected, from the confirmation
    processed: Mapped[int] = mapped_column(Integer, default=0)  # selected contacts handled
    changed: Mapped[int] = mapped_column(Integer, default=0)  # newly deleted/restored/erased
    not_found: Mapped[int] = mapped_column(Integer, default=0)  # listed addresses not here
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # erasure receipt
    # keyset checkpoint: the smallest contact id handled (filters and id lists walk
    # newest first), or the number of list entries handled
    checkpoint: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by = relationship("User")

    @property
    def is_active(self) -> bool:
        return self.status in (LifecycleStatus.QUEUED.value, LifecycleStatus.RUNNING.value)


class SignupRequest(TenantOwned, db.Model):
    """A sign-up waiting for the click on its confirmation link (double opt-in).
    Only the hash of the link's token is stored."""

    __tablename__ = "signup_requests"
    __table_args__ = (
        Index("ix_signup_requests_account_email", "account_id", "email"),
        Index("ix_signup_requests_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    locale: Mapped[str] = mapped_column(String(5), default="en")
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # set by the click: the row stays until it expires, so a second click is answered
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
