"""The nightly purge: hourly, for every account whose local time is 02:00–04:00, the
contacts deleted before that night's window began are removed for good — with their
subscriptions, tag links and activities — in batches, twice without harm, on the days
the clocks change too."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.accounts.models import Account
from portal.contacts import service as contacts
from portal.contacts.models import Activity, Contact, ContactStatus, Subscription, contact_tags
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.lifecycle import service

ZONES = ["Europe/Berlin", "Europe/Warsaw", "Europe/Rome", "Europe/Amsterdam", "America/New_York"]
# the nights the clocks change in 2026: Europe 29 March / 25 October, US 8 March / 1 November
CHANGE_DAYS = {
    "Europe": [date(2026, 3, 29), date(2026, 10, 25)],
    "America": [date(2026, 3, 8), date(2026, 11, 1)],
}


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("zone", ZONES)
def test_the_hourly_run_hits_each_night_once_or_more_and_only_inside_02_to_04(zone):
    """Over a whole year of hourly runs (at minute 5, as the cron table has it), every
    local night gets at least one run inside its window, none outside it, and the
    window never starts before 02:00 local nor ends after 04:00 local."""
    tz = ZoneInfo(zone)
    runs_per_night: dict[date, int] = {}
    moment = _utc(2026, 1, 1, 0, 5)
    while moment < _utc(2027, 1, 1, 0, 5):
        start = service.current_window_start(moment, tz)
        local = moment.astimezone(tz)
        if start is not None:
            assert 2 <= local.hour < 4, (zone, local)
            runs_per_night[local.date()] = runs_per_night.get(local.date(), 0) + 1
        else:
            assert not (2 <= local.hour < 4), (zone, local)
        moment += timedelta(hours=1)
    nights = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert all(runs_per_night.get(night, 0) >= 1 for night in nights), zone
    for night in CHANGE_DAYS[zone.split("/")[0]]:
        start, end = service.purge_window(night, tz)
        assert start.astimezone(tz).hour in (2, 3) and end.astimezone(tz).hour == 4
        assert runs_per_night[night] >= 1


def test_spring_forward_night_starts_at_the_jump_and_fall_back_at_the_first_two():
    berlin = ZoneInfo("Europe/Berlin")
    # 29 March 2026: 02:00 CET does not exist, clocks jump to 03:00 CEST (01:00 UTC)
    assert service.purge_window(date(2026, 3, 29), berlin) == (
        _utc(2026, 3, 29, 1),
        _utc(2026, 3, 29, 2),
    )
    # 25 October 2026: 02:00 CEST (00:00 UTC) comes first, 04:00 CET is 03:00 UTC
    assert service.purge_window(date(2026, 10, 25), berlin) == (
        _utc(2026, 10, 25, 0),
        _utc(2026, 10, 25, 3),
    )
    new_york = ZoneInfo("America/New_York")
    assert service.purge_window(date(2026, 3, 8), new_york) == (
        _utc(2026, 3, 8, 7),
        _utc(2026, 3, 8, 8),
    )
    assert service.purge_window(date(2026, 11, 1), new_york) == (
        _utc(2026, 11, 1, 7),
        _utc(2026, 11, 1, 9),
    )


def _deleted_contact(account, email: str, deleted_at: datetime, *, group=None, tag=None):
    contact = contacts.create_contact(
        account, email, first_name="Jürgen", last_name="Größ", source="ui"
    )
    if group is not None:
        contacts.subscribe(contact, group, source="ui")
    if tag is not None:
        contacts.add_tag(contact, tag, actor=None, source="ui")
    contacts.record_activity(contact, "open", group=group)
    contact.status = ContactStatus.DELETED.value
    contact.deleted_at = deleted_at
    db.session.commit()
    return contact.id


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("night_index", [0, 1])
def test_purge_removes_what_was_deleted_before_the_window_on_change_nights(
    ctx, make_account, zone, night_index
):
    tz = ZoneInfo(zone)
    account = db.session.get(Account, make_account("acme", timezone=zone))
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    night = CHANGE_DAYS[zone.split("/")[0]][night_index]
    start, end = service.purge_window(night, tz)
    old = _deleted_contact(
        account, "old@example.com", start - timedelta(hours=5), group=group, tag="VIP"
    )
    late = _deleted_contact(account, "late@example.com", start + timedelta(minutes=1))
    active = contacts.create_contact(account, "keep@example.com", source="ui")
    db.session.commit()

    # an hour before the window: nothing happens
    assert service.purge_due(start - timedelta(minutes=55)) == 0
    # the first hourly run inside the window
    first_run = start.replace(minute=5) if start.minute < 5 else start + timedelta(minutes=5)
    assert service.purge_due(first_run) == 1
    assert db.session.get(Contact, old) is None
    for table in (Subscription.__table__, contact_tags, Activity.__table__):
        assert db.session.execute(table.select().where(table.c.contact_id == old)).first() is None
    assert db.session.get(Contact, late).status == "deleted"  # deleted inside tonight's window
    assert db.session.get(Contact, active.id).status == "active"
    # a second run in the same window changes nothing
    assert (
        service.purge_due(
            first_run + timedelta(hours=1) if first_run + timedelta(hours=1) < end else first_run
        )
        == 0
    )
    # the next night takes the late one
    next_start, _ = service.purge_window(night + timedelta(days=1), tz)
    assert service.purge_due(next_start + timedelta(minutes=5)) == 1
    assert db.session.get(Contact, late) is None
    events = list(
        db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "contacts.purged"))
    )
    assert [e.details["count"] for e in events] == [1, 1]
    assert events[0].actor_type == "system"


def test_accounts_in_other_timezones_wait_for_their_own_night(ctx, make_account):
    berlin = db.session.get(Account, make_account("berlin", timezone="Europe/Berlin"))
    york = db.session.get(Account, make_account("york", timezone="America/New_York"))
    deleted = _utc(2026, 6, 1, 12)
    b = _deleted_contact(berlin, "b@example.com", deleted)
    y = _deleted_contact(york, "y@example.com", deleted)
    # 02:05 in Berlin on 2 June is 20:05 of 1 June in New York
    assert service.purge_due(_utc(2026, 6, 2, 0, 5)) == 1
    assert db.session.get(Contact, b) is None and db.session.get(Contact, y) is not None
    # 02:05 in New York on 2 June
    assert service.purge_due(_utc(2026, 6, 2, 6, 5)) == 1
    assert db.session.get(Contact, y) is None


def test_purge_works_in_batches_and_spares_a_contact_restored_in_time(ctx, make_account):
    account = db.session.get(Account, make_account("acme", timezone="Europe/Rome"))
    deleted = _utc(2026, 6, 1, 12)
    ids = [_deleted_contact(account, f"p{i}@example.com", deleted) for i in range(12)]
    service.undelete_contacts(account, [ids[3]], actor=None, source="ui")
    db.session.commit()
    night = _utc(2026, 6, 2, 0, 5)  # 02:05 in Rome
    assert service.purge_account(account, night, batch=5) == 11
    remaining = list(
        db.session.scalars(db.select(Contact.id).where(Contact.account_id == account.id))
    )
    assert remaining == [ids[3]]
    assert service.purge_account(account, night, batch=5) == 0


def test_purge_time_on_the_card_is_the_first_window_after_deletion(ctx, make_account):
    account = db.session.get(Account, make_account("acme", timezone="Europe/Warsaw"))
    before = _deleted_contact(account, "a@example.com", _utc(2026, 6, 1, 23, 30))  # 01:30 Warsaw
    inside = _deleted_contact(account, "b@example.com", _utc(2026, 6, 2, 0, 30))  # 02:30 Warsaw
    a, b = db.session.get(Contact, before), db.session.get(Contact, inside)
    now = _utc(2026, 6, 2, 0, 45)
    assert service.purge_time(a, account, now) == (_utc(2026, 6, 2, 0), _utc(2026, 6, 2, 2))
    assert service.purge_time(b, account, now) == (_utc(2026, 6, 3, 0), _utc(2026, 6, 3, 2))


def test_a_window_already_past_is_not_shown_as_the_next(ctx, make_account):
    """The purge did not run in the first night (a worker was down): the card names the
    next night, not one that is over."""
    account = db.session.get(Account, make_account("acme", timezone="Europe/Warsaw"))
    cid = _deleted_contact(account, "a@example.com", _utc(2026, 6, 1, 23, 30))  # 01:30 Warsaw
    contact = db.session.get(Contact, cid)
    first = (_utc(2026, 6, 2, 0), _utc(2026, 6, 2, 2))
    assert service.purge_time(contact, account, now=_utc(2026, 6, 1, 23, 45)) == first
    assert service.purge_time(contact, account, now=_utc(2026, 6, 2, 1)) == first  # inside
    assert service.purge_time(contact, account, now=_utc(2026, 6, 2, 9)) == (
        _utc(2026, 6, 3, 0),
        _utc(2026, 6, 3, 2),
    )
