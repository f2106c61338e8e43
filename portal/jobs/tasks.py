"""Small jobs that keep the queue side honest: a heartbeat and a cleanup."""

from __future__ import annotations

from portal.extensions import rq
from portal.jobs import failures, service


@rq.job
def heartbeat(name: str = "cron") -> int:
    """Proves that cron, queue and worker all run: the beat lands in the database."""
    return service.beat(name)


@rq.job(queue="low")
def cleanup_expired() -> int:
    """Removes invitations that can no longer be accepted."""
    return service.cleanup_expired()


@rq.job(queue="high")
def reap_abandoned() -> int:
    """Every minute: jobs of workers that are gone fail their rows (portal.jobs.failures);
    a worker that starts does the same, this covers the time until one does."""
    return failures.reap_abandoned(rq.get_queue("high").connection)
