"""Switching providers: the tag-compatibility report, the accepted mapping, the full
sync (every contact exactly once per switch, resumable), and the support-only reset."""

from __future__ import annotations

import pytest

from portal.accounts import service as accounts
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import ContactStatus
from portal.extensions import db
from portal.integrations import delivery, profiles, service, sync
from portal.integrations.models import OutgoingEvent, SyncRun
from tests.integrations.conftest import Receiver

TAGS = ["Händler", "Straße", "Łódź", "VIP_Kunde", "VIP Kunde", "vip-kunde", "Café", "Newsletter"]


def _tagged(account):
    for i, tag in enumerate(TAGS):
        contact = contacts.create_contact(account, f"t{i}@example.com", source="ui")
        contacts.add_tag(contact, tag, actor=None, source="ui")
    db.session.commit()


def _rows(account, profile):
    return {r.name: r for r in service.compatibility_report(account, profile)}


def test_the_report_finds_umlauts_sharp_s_polish_letters_underscores_and_collisions(account):
    _tagged(account)
    rows = _rows(account, "ascii_ids")
    assert (
        rows["Händler"].problems == ["umlaut", "case"] and rows["Händler"].suggested == "HAENDLER"
    )
    assert rows["Straße"].suggested == "STRASSE" and "umlaut" in rows["Straße"].problems
    assert rows["Łódź"].suggested == "LODZ" and "letters" in rows["Łódź"].problems
    assert "underscore" in rows["VIP_Kunde"].problems and "spaces" in rows["VIP Kunde"].problems
    assert rows["Café"].suggested == "CAFE"
    # three tags become VIP-KUNDE: each names the other two
    assert (
        rows["VIP_Kunde"].suggested
        == rows["VIP Kunde"].suggested
        == rows["vip-kunde"].suggested
        == "VIP-KUNDE"
    )
    assert sorted(rows["vip-kunde"].collides_with) == ["VIP Kunde", "VIP_Kunde"]
    # numeric ids skip the provider's reserved 1-3
    assert sorted(r.remote_id for r in rows.values()) == list(range(4, 4 + len(TAGS)))
    # a provider that takes names with special characters: only case makes a collision
    named = _rows(account, "names")
    assert named["Händler"].fits and named["Łódź"].fits and named["VIP_Kunde"].fits
    assert named["VIP Kunde"].collides_with == [] and named["Café"].fits
    # and the generic webhook carries everything as it is
    assert all(r.fits for r in _rows(account, "webhook").values())


def test_suggest_keeps_names_inside_the_providers_rules():
    profile = profiles.PROFILES["ascii_ids"]
    long = "Sommerfest Größenwahn 2024 — Teilnehmer & Gäste (bestätigt)"
    suggestion = profiles.suggest(profile, long)
    assert len(suggestion) <= 30 and profile.fits(suggestion)
    assert suggestion.startswith("SOMMERFEST-GROESSENWAHN-2024")
    assert profiles.suggest(profile, "___") == "TAG"


def test_a_mapping_that_merges_two_tags_is_refused_and_an_edited_one_accepted(account, receiver):
    _tagged(account)
    link = service.link_provider(account, profile="ascii_ids", url=receiver.url, actor=None)
    tags = {r.name: r.tag_id for r in service.compatibility_report(account, "ascii_ids")}
    with pytest.raises(service.MappingInvalid) as refused:
        service.accept_mapping(link, {}, actor=None)
    assert set(refused.value.errors) == {tags["VIP_Kunde"], tags["VIP Kunde"], tags["vip-kunde"]}
    chosen = {
        tags["VIP_Kunde"]: "VIP-KUNDE-1",
        tags["VIP Kunde"]: "VIP-KUNDE-2",
        tags["Café"]: "café",
    }
    with pytest.raises(service.MappingInvalid) as still:
        service.accept_mapping(link, chosen, actor=None)
    assert set(still.value.errors) == {tags["Café"]}  # lower case and an accent
    chosen[tags["Café"]] = "KAFFEE"
    saved = service.accept_mapping(link, chosen, actor=None)
    db.session.commit()
    by_tag = {m.tag_id: m for m in saved}
    assert by_tag[tags["Café"]].remote_name == "KAFFEE"
    assert (
        by_tag[tags["Händler"]].remote_name == "HAENDLER" and by_tag[tags["Händler"]].remote_id >= 4
    )
    # the mapped names and ids are what the provider receives
    receiver.secret = link.secret
    run = sync.start(link, actor=None)
    sync.run(run)
    delivery.deliver(link.id)
    sent = {e["contact"]["email"]: e["contact"]["tags"] for e in receiver.accepted_events()}
    assert sent["t0@example.com"] == [{"id": by_tag[tags["Händler"]].remote_id, "name": "HAENDLER"}]


def _population(account, n=250):
    ids = [
        contacts.create_contact(account, f"c{i:03d}@example.com", source="ui").id for i in range(n)
    ]
    for contact_id in ids[::50]:
        queries.contacts_by_ids(account, [contact_id])[0].status = ContactStatus.DELETED.value
    db.session.commit()
    return {i for i in ids if i not in ids[::50]}


def _synced(receiver) -> list[int]:
    return [e["contact"]["id"] for e in receiver.accepted_events() if e["type"] == "contact.synced"]


def test_every_contact_once_per_switch_and_only_support_resets_the_link(
    account, make_user, private_targets
):
    live = _population(account)
    first, second = Receiver(), Receiver()
    try:
        link = service.link_provider(account, profile="webhook", url=first.url, actor=None)
        first.secret = link.secret
        with pytest.raises(Exception, match="already linked"):
            service.link_provider(account, profile="names", url=second.url, actor=None)
        service.accept_mapping(link, {}, actor=None)
        sync.run(sync.start(link, actor=None), batch=40)
        delivery.deliver(link.id)
        assert sorted(_synced(first)) == sorted(live)  # exactly once each, none "to be deleted"

        staff = accounts.create_user("support@example.com", "a-long-password", is_staff=True)
        service.reset_link(account, actor=staff, reason="Ticket 4711: switch to a new CRM")
        db.session.commit()
        contacts.create_contact(account, "after-reset@example.com", source="ui")
        db.session.commit()
        requests_before = len(first.requests)
        delivery.deliver(link.id)
        assert len(first.requests) == requests_before  # the old provider hears nothing more

        new = service.link_provider(account, profile="names", url=second.url, actor=None)
        second.secret = new.secret
        service.accept_mapping(new, {}, actor=None)
        sync.run(sync.start(new, actor=None), batch=40)
        delivery.deliver(new.id)
        again = _synced(second)
        assert len(again) == len(set(again)) == len(live) + 1
        assert second.bad_signatures == 0 and first.bad_signatures == 0
    finally:
        first.close()
        second.close()


def test_a_sync_killed_half_way_resumes_without_queuing_anyone_twice(
    account, receiver, monkeypatch
):
    live = _population(account, n=120)
    link = service.link_provider(account, profile="webhook", url=receiver.url, actor=None)
    receiver.secret = link.secret
    run = sync.start(link, actor=None)
    db.session.commit()
    real_commit = db.session.commit
    commits = {"n": 0}

    def dies_after_two_batches():
        commits["n"] += 1
        if commits["n"] == 4:  # status, batch 1, batch 2, then the worker is gone
            raise KeyboardInterrupt("kill -9")
        real_commit()

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(db.session, "commit", dies_after_two_batches)
        sync.run(run, batch=30)
    db.session.rollback()
    run = db.session.get(SyncRun, run.id)
    assert run.processed == 60 and run.status == "running"
    sync.run(run, batch=30)
    queued = list(
        db.session.scalars(
            db.select(OutgoingEvent.contact_id).where(OutgoingEvent.sync_id == run.id)
        )
    )
    assert sorted(queued) == sorted(live)
    delivery.deliver(link.id)
    assert sorted(_synced(receiver)) == sorted(live)
    assert sync.progress(db.session.get(SyncRun, run.id))["percent"] == 100
