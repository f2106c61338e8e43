"""The cron table for `flask --app app rq cron` (RQ's own scheduler): the whole table in
one place. The areas' own entries (the hourly purge that keeps each account's 02:00-04:00,
the provider sync retries) come from their register_cron()."""

from __future__ import annotations

from portal.backups import tasks as backup_tasks
from portal.imports import tasks as import_tasks
from portal.integrations import tasks as integration_tasks
from portal.jobs import tasks
from portal.lifecycle import tasks as lifecycle_tasks

_registered = False


def register_all() -> None:
    global _registered
    if _registered:  # the cron table is per process, not per app instance
        return

    tasks.heartbeat.cron_register(60, "cron")
    tasks.reap_abandoned.cron_register(60)
    tasks.cleanup_expired.cron_register("17 3 * * *")
    backup_tasks.remove_expired_backups.cron_register("43 3 * * *")
    import_tasks.sweep_uploads.cron_register("29 4 * * *")
    lifecycle_tasks.register_cron()
    integration_tasks.register_cron()
    _registered = True
