"""Retention: backups are removed 30 days after they were made (file and row), by the
daily cron job and on demand by the operator CLI; files without a row are swept."""

from __future__ import annotations

from datetime import timedelta

from portal import clock
from portal.backups import tasks
from portal.backups.models import Backup, BackupPendingDeletion
from portal.backups.retention import remove_expired
from portal.backups.snapshot import snapshot
from portal.contacts.models import Contact
from portal.core.storage import get_storage
from portal.extensions import db, rq
from portal.template_helpers import days_left, expiry_text
from tests.backups.conftest import build_contacts, mark_deleted
from tests.backups.stores import age


def _count():
    return db.session.scalar(db.select(db.func.count(Backup.id)))


def test_backups_are_removed_after_30_days_with_a_frozen_clock(account, group, time_machine):
    time_machine.move_to("2025-03-01T10:00:00+00:00", tick=False)
    build_contacts(account, group, 5)
    mark_deleted(db.session.scalar(db.select(db.func.min(Contact.id))))
    old = snapshot(group, reason="manual")
    db.session.commit()
    time_machine.move_to("2025-03-11T10:00:00+00:00", tick=False)
    young = snapshot(group, reason="manual")
    db.session.commit()
    storage = get_storage()
    old_key, young_key = old.storage_key, young.storage_key
    assert days_left(old) == 20 and days_left(young) == 30

    time_machine.move_to("2025-03-31T09:59:59+00:00", tick=False)
    assert remove_expired() == 0
    assert _count() == 2 and storage.exists(old_key)
    assert expiry_text(old) == "today"

    time_machine.move_to("2025-03-31T10:00:00+00:00", tick=False)
    assert remove_expired() == 1
    assert not storage.exists(old_key) and storage.exists(young_key)
    assert [b.id for b in db.session.scalars(db.select(Backup))] == [young.id]
    assert (
        db.session.scalar(
            db.select(db.func.count())
            .select_from(BackupPendingDeletion)
            .where(BackupPendingDeletion.backup_id == old.id)
        )
        == 0
    )
    assert remove_expired() == 0  # twice is harmless

    time_machine.move_to("2025-04-10T10:00:01+00:00", tick=False)
    assert tasks.remove_expired_backups() == 1
    assert _count() == 0 and not storage.exists(young_key)


def test_operator_cli_removes_expired_backups(app, account, group, time_machine):
    build_contacts(account, group, 2)
    snapshot(group, reason="manual")
    db.session.commit()
    time_machine.move_to(clock.now() + timedelta(days=31), tick=False)
    result = app.test_cli_runner().invoke(args=["portal", "backups-cleanup"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 expired backup(s)." in result.output
    assert _count() == 0


def test_cron_table_runs_the_cleanup_daily(app):
    with app.app_context():
        jobs = rq.make_cron_scheduler().get_jobs()
    (job,) = [j for j in jobs if j.func_name == "portal.backups.tasks.remove_expired_backups"]
    assert job.cron == "43 3 * * *"


def test_files_without_a_row_are_swept_after_a_day(account, group):
    storage = get_storage()
    stray = storage.write_stream(f"{account.id}/stray.csv.gz", [b"left over"])
    build_contacts(account, group, 1)
    kept = snapshot(group, reason="manual")
    db.session.commit()
    remove_expired()
    assert storage.exists(stray.key)  # could still be a snapshot being written
    day_ago = clock.now() - timedelta(days=2)
    age(storage, stray.key, day_ago)
    age(storage, kept.storage_key, day_ago)
    remove_expired()
    assert not storage.exists(stray.key) and storage.exists(kept.storage_key)
