"""Operations the queue jobs perform; plain functions that tests call directly."""

from __future__ import annotations

from portal import clock
from portal.accounts.models import Invitation
from portal.accounts.service import sweep_expired_logins
from portal.extensions import db
from portal.jobs.models import Heartbeat


def beat(name: str) -> int:
    row = db.session.get(Heartbeat, name)
    if row is None:
        row = Heartbeat(name=name, last_seen=clock.now(), beats=0)
        db.session.add(row)
    row.last_seen = clock.now()
    row.beats += 1
    db.session.commit()
    return row.beats


def cleanup_expired() -> int:
    """Invitations that can no longer be accepted; also the rows of sign-ins past their
    expiry (they open nothing any more, the sweep only keeps the table small)."""

    result = db.session.execute(
        db.delete(Invitation).where(
            Invitation.expires_at < clock.now(), Invitation.accepted_at.is_(None)
        )
    )
    sweep_expired_logins()
    db.session.commit()
    return result.rowcount or 0


def last_beat(name: str = "cron") -> Heartbeat | None:
    return db.session.get(Heartbeat, name)
