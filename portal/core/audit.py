"""Who did what: the audit log and the support staff's accesses to accounts.

Every service that changes something calls record() in its own transaction. The log
never holds the personal data of forgotten contacts (callers pass counts and ids, not
emails of contacts). Each area describes its own actions in a plain dict, AUDIT_TEXTS,
which create_app merges (portal.support.describe reads the merged table).

A StaffAccess is a support staff user's time-limited, stated-reason access to one
account; it lives here because the account's own pages show the open ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.database import TenantOwned, UTCDateTime
from portal.extensions import db

# what an area's AUDIT_TEXTS maps an action to: the event -> its sentence, translated
AuditText = Callable[["AuditEvent"], str]


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


def _actor_type(actor) -> str:
    """user | staff | api_key | system; an API key (or any other non-user actor) says
    what it is through its `audit_actor_type` attribute."""
    if actor is None:
        return "system"
    explicit = getattr(actor, "audit_actor_type", None)
    if explicit:
        return explicit
    return "staff" if getattr(actor, "is_staff", False) else "user"


def record(
    action: str,
    *,
    account=None,
    actor=None,
    actor_type: str | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add an audit event to the session; the caller's transaction commits it."""
    if actor_type is None:
        actor_type = _actor_type(actor)
    event = AuditEvent(
        account_id=account.id if account is not None else None,
        actor_type=actor_type,
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "audit_label", None) or getattr(actor, "email", "") or "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details or {},
        ip=ip,
    )
    db.session.add(event)
    return event


def recent_for_account(account, limit: int = 20) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            db.select(AuditEvent)
            .where(AuditEvent.account_id == account.id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def open_staff_accesses(account, now: datetime | None = None) -> list[StaffAccess]:
    """The support staff's accesses to the account that are open right now (not closed,
    not expired), soonest to end first - what the account's home page shows."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(StaffAccess)
            .where(
                StaffAccess.account_id == account.id,
                StaffAccess.ended_at.is_(None),
                StaffAccess.expires_at > now,
            )
            .order_by(StaffAccess.expires_at, StaffAccess.id)
        )
    )
