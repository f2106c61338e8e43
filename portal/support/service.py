"""Writing audit events. Every service that changes something calls record()."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.support.models import AuditEvent, StaffAccess


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
