"""Small jobs that keep the queue side honest: a heartbeat and a cleanup."""

from __future__ import annotations

from portal.extensions import rq
from portal.jobs import service


@rq.job
def heartbeat(name: str = "cron") -> int:
    """Proves that cron, queue and worker all run: the beat lands in the database."""
    return service.beat(name)


@rq.job(queue="low")
def cleanup_expired() -> int:
    """Removes invitations that can no longer be accepted."""
    return service.cleanup_expired()
