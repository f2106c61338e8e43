"""The audit log: who did what to which object, never the personal data of
forgotten contacts (callers pass counts and ids, not emails of contacts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.database import TenantOwned, UTCDateTime
from portal.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    actor_type: Mapped[str] = mapped_column(String(16))  # user | staff | api_key | system
    actor_id: Mapped[int | None] = mapped_column()
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column()
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class StaffAccess(TenantOwned, db.Model):
    """A support staff user's time-limited, stated-reason access to one account.

    Staff are never members of customer accounts; the console opens an account only
    through one of these rows, and each is written to the account's audit log. The
    staff user's address is kept in `staff_label`, so the record outlives the user."""

    __tablename__ = "staff_accesses"
    __table_args__ = (
        Index("ix_staff_accesses_user_account", "user_id", "account_id", "expires_at"),
        Index("ix_staff_accesses_account_started", "account_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    staff_label: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(45))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # closed before expiry

    def is_open(self, now: datetime) -> bool:
        return self.ended_at is None and self.expires_at > now
