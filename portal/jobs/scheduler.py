"""Exactly one scheduler (issue 18, point 3): `flask rq cron` may run on several
machines (each web or worker host started with the same Procfile), but only one of them
enqueues the cron table at a time, or the hourly purge, the backup retention and the
upload sweep would run once per machine.

The one that enqueues holds a lease in Redis (a key with its name and an expiry),
renewed on every turn of its loop (three turns per lease at least). The others keep running and
try to take the lease on every turn: when its holder dies (killed, machine gone), its
lease runs out and one of them enqueues from then on. Jobs that fell due while nobody
held the lease run at once on the takeover; every job of the cron table may run twice
(each is idempotent: the purge checks the account's window, the retention and the sweep
look at what is there). A scheduler that stops on purpose gives its lease back.

Only RQ is imported here: portal.jobs.worker makes the extension's scheduler from it."""

from __future__ import annotations

import logging
import os
import socket
import uuid

from redis import Redis
from rq import cron

log = logging.getLogger(__name__)

LEASE_KEY = "portal:cron:leader"
DEFAULT_LEASE_SECONDS = 150  # more than the loop's longest sleep (60 s), twice over

# renew the lease only if this scheduler still holds it (atomically: another one may
# have taken it after it ran out)
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class SingleCronScheduler(cron.CronScheduler):
    """RQ's cron scheduler that enqueues only while it holds the lease."""

    def __init__(
        self, connection: Redis, name: str = "", lease_seconds: int = DEFAULT_LEASE_SECONDS
    ):
        unique = f"{name or 'portal'}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        super().__init__(connection=connection, name=unique)
        self.lease_seconds = lease_seconds
        self.leading = False

    def holds_lease(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; False if another holds it."""
        taken = self.connection.set(LEASE_KEY, self.name, nx=True, ex=self.lease_seconds)
        holds = bool(taken) or bool(
            self.connection.eval(_RENEW, 1, LEASE_KEY, self.name, self.lease_seconds)
        )
        if holds != self.leading:
            self.leading = holds
            if holds:
                log.info("scheduler %s enqueues the cron table from now on", self.name)
            else:
                log.warning("scheduler %s lost its lease; another one enqueues", self.name)
        return holds

    def enqueue_jobs(self) -> list[cron.CronJob]:
        if not self.holds_lease():
            return []
        return super().enqueue_jobs()

    def calculate_sleep_interval(self) -> float:
        """Every scheduler turns at least three times per lease: the holder renews it
        before it runs out, the others take it over soon after a dead holder's ran out."""
        return min(super().calculate_sleep_interval(), max(1.0, self.lease_seconds / 3))

    def register_death(self, pipeline=None) -> None:
        try:
            self.connection.eval(_RELEASE, 1, LEASE_KEY, self.name)
        finally:
            super().register_death(pipeline)
