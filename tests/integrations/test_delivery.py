"""Signed events to a real receiver on loopback: in order, retried, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.contacts import service as contacts
from portal.extensions import db
from portal.integrations import delivery, service
from portal.integrations.models import EventStatus, OutgoingEvent
from portal.lifecycle import service as lifecycle

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _link(account, receiver, profile="webhook"):
    link = service.link_provider(account, profile=profile, url=receiver.url, actor=None)
    db.session.commit()
    receiver.secret = link.secret
    return link


def test_every_change_reaches_the_receiver_signed_and_in_order(account, receiver):
    link = _link(account, receiver)
    group = contacts.create_group(account, "Newsletter", actor=None, source="ui")
    anna = contacts.create_contact(account, "anna@example.com", first_name="Anna", source="ui")
    contacts.subscribe(anna, group, source="ui")
    contacts.add_tag(anna, "Händler", actor=None, source="ui")
    contacts.update_contact(anna, actor=None, last_name="Größ", source="ui")
    contacts.unsubscribe(anna, group, reason="unsubscribed", source="ui")
    lifecycle.delete_contacts(account, [anna.id], actor=None, source="ui")
    lifecycle.undelete_contacts(account, [anna.id], actor=None, source="ui")
    lifecycle.forget_contact(anna, actor=None, source="ui")
    db.session.commit()

    outcome = delivery.deliver(link.id)
    assert outcome.delivered == 8 and receiver.bad_signatures == 0
    events = receiver.accepted_events()
    assert [e["type"] for e in events] == [
        "contact.created",
        "subscription.changed",
        "tag.added",
        "contact.updated",
        "subscription.changed",
        "contact.deleted",
        "contact.restored",
        "contact.forgotten",
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[2]["data"]["tag"] == "Händler"
    # the body is built when it is sent: after "forget me" nothing of Anna is left to send
    assert all(e["contact"] == {"id": anna.id, "gone": True} for e in events)
    assert "anna@example.com" not in str(receiver.requests)
    assert (
        db.session.scalar(db.select(db.func.count()).where(OutgoingEvent.status == "delivered"))
        == 8
    )


def test_the_body_carries_the_current_contact_with_groups_and_tags(account, receiver):
    link = _link(account, receiver)
    group = contacts.create_group(account, "Kunden", actor=None, source="ui")
    zoe = contacts.create_contact(
        account, "zoe@example.com", first_name="Zoë", last_name="Łukasik", source="ui"
    )
    contacts.subscribe(zoe, group, at=datetime(2025, 5, 1, tzinfo=UTC), source="ui")
    contacts.add_tag(zoe, "VIP", actor=None, source="ui")
    db.session.commit()
    delivery.deliver(link.id)
    last = receiver.accepted_events()[-1]
    assert last["contact"]["email"] == "zoe@example.com"
    assert last["contact"]["first_name"] == "Zoë" and last["contact"]["tags"] == ["VIP"]
    assert last["contact"]["groups"] == [
        {
            "name": "Kunden",
            "active": True,
            "signed_up_at": "2025-05-01T00:00:00+00:00",
            "signed_off_at": None,
            "optout_reason": None,
        }
    ]
    headers = receiver.requests[-1]["headers"]
    assert (
        headers["X-Portal-Signature"].startswith("t=") and ",v1=" in headers["X-Portal-Signature"]
    )
    assert not delivery.verify(
        "wrong-secret", b"{}", headers["X-Portal-Signature"], tolerance=10**9
    )


def test_a_500_is_retried_with_growing_pauses(account, receiver):
    link = _link(account, receiver)
    contacts.create_contact(account, "retry@example.com", source="ui")
    db.session.commit()
    receiver.status = 500
    first = delivery.deliver(link.id, now=T0 + timedelta(minutes=1))
    assert first.failed_attempts == 1 and first.delivered == 0
    event = db.session.scalar(db.select(OutgoingEvent))
    assert event.status == "pending" and event.attempts == 1 and event.last_status == 500
    assert event.next_attempt_at == T0 + timedelta(minutes=1, seconds=30)
    # too early: nothing is sent
    assert delivery.deliver(link.id, now=T0 + timedelta(minutes=1, seconds=10)).waiting
    assert len(receiver.requests) == 1
    # the second failure waits twice as long
    delivery.deliver(link.id, now=T0 + timedelta(minutes=2))
    db.session.refresh(event)
    assert event.next_attempt_at == T0 + timedelta(minutes=3)
    receiver.status = 200
    assert delivery.deliver(link.id, now=T0 + timedelta(minutes=3)).delivered == 1
    db.session.refresh(event)
    assert event.status == "delivered" and event.attempts == 3


def test_an_hour_of_downtime_loses_nothing_and_keeps_the_order(account, receiver):
    link = _link(account, receiver)
    people = [contacts.create_contact(account, f"p{i}@example.com", source="ui") for i in range(5)]
    db.session.commit()
    receiver.status = 503
    minute = T0
    for step in range(60):  # the cron entry tries every minute, changes keep coming
        minute = T0 + timedelta(minutes=step)
        if step % 10 == 0:
            for person in people:
                contacts.update_contact(person, actor=None, first_name=f"v{step}", source="ui")
            db.session.commit()
        delivery.deliver(link.id, now=minute)
    assert receiver.accepted_events() == []
    pending = db.session.scalar(db.select(db.func.count()).where(OutgoingEvent.status == "pending"))
    assert pending == 5 + 6 * 5
    receiver.status = 200
    # the receiver is back; within the capped pause (one hour at most) everything flows
    for step in range(60, 130):
        delivery.deliver(link.id, now=T0 + timedelta(minutes=step))
    delivered = receiver.accepted_events()
    assert len(delivered) == pending and len({e["id"] for e in delivered}) == pending
    assert [e["id"] for e in delivered] == sorted(e["id"] for e in delivered)
    for person in people:
        mine = [e for e in delivered if e["contact"]["id"] == person.id]
        assert [e["type"] for e in mine] == ["contact.created"] + ["contact.updated"] * 6


def test_after_three_days_an_event_is_given_up_and_can_be_sent_again(account, receiver):
    link = _link(account, receiver)
    contacts.create_contact(account, "late@example.com", source="ui")
    db.session.commit()
    event = db.session.scalar(db.select(OutgoingEvent))
    receiver.status = 500
    delivery.deliver(link.id, now=event.created_at + timedelta(days=3, minutes=1))
    db.session.refresh(event)
    assert event.status == EventStatus.FAILED.value
    contacts.create_contact(account, "next@example.com", source="ui")
    db.session.commit()
    receiver.status = 200
    delivery.deliver(link.id, now=event.created_at + timedelta(days=3, minutes=2))
    assert [e["type"] for e in receiver.accepted_events()] == ["contact.created"]
    delivery.resend(event)
    db.session.commit()
    delivery.deliver(link.id, now=event.created_at + timedelta(days=3, minutes=3))
    assert receiver.accepted_events()[-1]["data"]["resent_from"] == event.id


def test_a_second_worker_does_not_deliver_the_same_link_at_the_same_time(account, receiver):
    link = _link(account, receiver)
    contacts.create_contact(account, "one@example.com", source="ui")
    db.session.commit()
    assert delivery._take_lease(link.id, T0)
    assert delivery.deliver(link.id, now=T0 + timedelta(seconds=5)).delivered == 0
    assert receiver.requests == []
    # a lease of a killed worker runs out
    assert delivery.deliver(link.id, now=T0 + delivery.LEASE + timedelta(seconds=1)).delivered == 1


def test_accounts_without_a_link_write_no_events(account, make_account):
    contacts.create_contact(account, "nobody@example.com", source="ui")
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(OutgoingEvent.id))) == 0
