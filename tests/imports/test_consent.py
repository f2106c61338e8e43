"""The consent rule (DESIGN.md): nobody ends up more subscribed than both the file and
the portal allow. What restricts always applies; what re-activates needs the explicit
option, and the check step lists those people before anything is written. Runs on
SQLite and, in CI's second leg, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from portal.contacts.models import Contact, Subscription
from portal.extensions import db
from portal.imports import mapping as m

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = ["E-Mail", "Vorname", "Angemeldet am", "Abgemeldet am", "Status"]


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _sub(email):
    return db.session.scalar(db.select(Subscription).join(Contact).where(Contact.email == email))


def _state(email):
    sub = _sub(email)
    return (sub.active, sub.activated_at, sub.deactivated_at, sub.optout_reason)


def test_the_german_headers_are_mapped_to_consent(account, run_import):
    job = run_import([HEADER, ["a@example.com", "A", "01.02.2024", "", ""]], dry_run=True)
    assert job.mapping == [m.EMAIL, m.FIRST_NAME, m.SIGNUP_AT, m.SIGNOFF_AT, m.STATUS]


def test_new_contacts_arrive_signed_off_as_the_file_says_without_any_option(account, run_import):
    job = run_import(
        [
            HEADER,
            ["dated@example.com", "D", "01.02.2024", "15.03.2024 10:00", ""],
            ["word@example.com", "W", "", "", "abgemeldet"],
            ["bounce@example.com", "B", "", "", "unzustellbar"],
            ["inactive@example.com", "I", "", "", "inaktiv"],
            ["pending@example.com", "P", "01.02.2024", "", "pending"],
            ["active@example.com", "A", "01.02.2024", "", "aktiv"],
            ["plain@example.com", "L", "", "", ""],
        ],
    )
    assert job.import_consent is False
    berlin_feb_1 = datetime(2024, 1, 31, 23, 0, tzinfo=UTC)
    assert _state("dated@example.com") == (
        False,
        berlin_feb_1,
        datetime(2024, 3, 15, 9, 0, tzinfo=UTC),
        "unsubscribed",
    )
    assert _state("word@example.com") == (False, None, NOW, "unsubscribed")
    assert _state("bounce@example.com") == (False, None, NOW, "bounced")
    assert _state("inactive@example.com") == (False, None, NOW, "imported")
    # pending people never confirmed: never active, their sign-up date is kept
    assert _state("pending@example.com") == (False, berlin_feb_1, NOW, "unconfirmed")
    # a mapped sign-up date is always kept for new contacts
    assert _state("active@example.com") == (True, berlin_feb_1, None, None)
    assert _state("plain@example.com") == (True, NOW, None, None)
    assert job.consent_counts == {
        "new_on": 2,
        "new_off": 5,
        "new_off:unsubscribed": 2,
        "new_off:bounced": 1,
        "new_off:imported": 1,
        "new_off:unconfirmed": 1,
    }


@pytest.mark.parametrize("mode", ["update_add", "add", "update"])
def test_an_active_contact_is_signed_off_when_the_file_says_so_in_every_mode(
    account, run_import, mode
):
    run_import([HEADER, ["a@example.com", "A", "01.01.2024", "", ""]])
    job = run_import([HEADER, ["a@example.com", "A", "01.01.2024", "15.03.2024", ""]], mode=mode)
    assert _state("a@example.com") == (
        False,
        datetime(2023, 12, 31, 23, 0, tzinfo=UTC),
        datetime(2024, 3, 14, 23, 0, tzinfo=UTC),
        "unsubscribed",
    )
    assert (job.updated, job.consent_counts) == (
        1,
        {"signed_off": 1, "signed_off:unsubscribed": 1},
    )


def test_a_newer_sign_up_here_stands_against_an_older_sign_off_and_is_listed(account, run_import):
    run_import([HEADER, ["again@example.com", "A", "01.06.2024", "", ""]])  # signed up again
    run_import([HEADER, ["old@example.com", "O", "01.01.2024", "", ""]])
    rows = [
        HEADER,
        ["again@example.com", "A", "01.01.2024", "15.03.2024", ""],
        ["old@example.com", "O", "01.01.2024", "15.03.2024", ""],
    ]
    check = run_import(rows, dry_run=True)
    assert check.dry_run["consent"] == {
        "kept_newer": 1,
        "signed_off": 1,
        "signed_off:unsubscribed": 1,
    }
    assert check.dry_run["consent_examples"] == {"kept_newer": ["again@example.com"]}
    assert _sub("old@example.com").active is True  # the check wrote nothing
    run_import(rows)
    assert _sub("again@example.com").active is True
    assert _sub("old@example.com").active is False


def test_re_activation_needs_the_option_and_is_listed_before(account, run_import):
    run_import([HEADER, ["u@example.com", "U", "01.01.2024", "01.02.2024", ""]])
    assert _sub("u@example.com").active is False
    newer = [HEADER, ["u@example.com", "U", "01.05.2024", "", "aktiv"]]

    without = run_import(newer, dry_run=True)
    assert without.dry_run["consent"] == {"stays_off": 1}
    assert without.dry_run["consent_examples"] == {"stays_off": ["u@example.com"]}
    run_import(newer)
    assert _sub("u@example.com").active is False

    chosen = run_import(newer, consent=True, dry_run=True)
    assert chosen.dry_run["consent"] == {"reactivated": 1}
    assert chosen.dry_run["consent_examples"] == {"reactivated": ["u@example.com"]}
    job = run_import(newer, consent=True)
    assert (job.reactivated, _sub("u@example.com").active) == (1, True)


def test_a_file_without_a_newer_sign_up_never_re_activates_even_with_the_option(
    account, run_import
):
    run_import([HEADER, ["u@example.com", "U", "01.01.2024", "01.02.2024", ""]])
    job = run_import([HEADER, ["u@example.com", "U", "", "", "aktiv"]], consent=True)
    assert (job.reactivated, _sub("u@example.com").active) == (0, False)


def test_a_hand_mapped_column_restricts_too(account, run_import):
    """A column the automatic mapping did not know, mapped by hand to "blocked"."""
    rows = [["mail", "Sperre"], ["x@example.com", "X"], ["y@example.com", ""]]
    job = run_import(rows, mapping=[m.EMAIL, m.BLOCKED])
    assert _state("x@example.com")[0::3] == (False, "blocked")
    assert _state("y@example.com")[0] is True
    assert job.consent_counts["new_off:blocked"] == 1


def test_unknown_words_count_as_signed_off_until_the_user_says_otherwise(account, run_import):
    from portal.imports import service

    rows = [["email", "Status"], ["a@example.com", "NORMAL"], ["b@example.com", "aktiv"]]
    job = run_import(rows, dry_run=True)
    assert job.column_stats["1"]["unknown"] == {"NORMAL": 1}
    assert job.dry_run["consent"]["new_off"] == 1
    service.configure(
        job,
        mapping=job.mapping,
        mode=job.mode,
        import_consent=False,
        restore_deleted=False,
        value_meanings={"1": {"NORMAL": "active"}},
    )
    db.session.commit()
    service.check(job)
    assert job.dry_run["consent"] == {"new_on": 2}
    service.run(job)
    assert _sub("a@example.com").active is True


def test_an_api_import_applies_the_file_s_sign_off_too(account, run_import):
    job = run_import(
        [["email", "active", "signoff_at"], ["api@example.com", "no", "2024-02-01"]],
        source="api",
    )
    assert (job.created, _sub("api@example.com").active) == (1, False)
