"""Cell values as people write them in five languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from portal.imports.values import (
    ValueProblem,
    detect_date_format,
    normalize_email,
    parse_datetime,
    word_meaning,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Anna.Schmidt@Example.DE ", "anna.schmidt@example.de"),
        ("<jan@example.nl>", "jan@example.nl"),
        ("jürgen@müller.de", "jürgen@müller.de"),
        ("test@xn--mller-kva.de", "test@müller.de"),
    ],
)
def test_emails_are_normalized(ctx, raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@b", "two@@example.com", "a b@example.com"])
def test_bad_emails_are_refused_with_a_reason(ctx, raw):
    with pytest.raises(ValueProblem):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ja", "active"),
        ("Sì", "active"),
        ("TAK", "active"),
        ("1", "active"),
        ("actief", "active"),
        ("nein", "off"),
        ("no", "off"),
        ("nie", "off"),
        ("0", "off"),
        ("nee", "off"),
        ("", "none"),
        ("-", "none"),
    ],
)
def test_yes_and_no_in_five_languages(ctx, raw, expected):
    assert word_meaning("active", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Mailchimp
        ("subscribed", "active"),
        ("unsubscribed", "unsubscribed"),
        ("cleaned", "bounced"),
        ("pending", "unconfirmed"),
        ("transactional", "unconfirmed"),
        ("archived", "off"),
        # listmonk
        ("enabled", "active"),
        ("disabled", "unsubscribed"),
        ("blocklisted", "blocked"),
        ("unconfirmed", "unconfirmed"),
        ("confirmed", "active"),
        # the five languages
        ("Abgemeldet", "unsubscribed"),
        ("disiscritto", "unsubscribed"),
        ("afgemeld", "unsubscribed"),
        ("Wypisany", "unsubscribed"),
        ("Unzustellbar", "bounced"),
        ("gesperrt", "blocked"),
    ],
)
def test_status_words_of_other_tools_and_five_languages(ctx, raw, expected):
    assert word_meaning("status", raw) == expected


@pytest.mark.parametrize(
    ("target", "raw", "expected"),
    [
        ("blocked", "yes", "blocked"),
        ("blocked", "true", "blocked"),
        ("blocked", "no", "none"),
        ("blocked", "false", "none"),
        ("opted_out", "TAK", "unsubscribed"),
        ("opted_out", "NIE", "none"),
        ("opted_out", "ja", "unsubscribed"),
    ],
)
def test_blocked_and_opt_out_columns_say_yes_for_signed_off(ctx, target, raw, expected):
    assert word_meaning(target, raw) == expected


def test_unknown_words_are_not_guessed(ctx):
    assert word_meaning("status", "vielleicht") is None
    assert word_meaning("optout_reason", "NORMALISH") is None
    assert word_meaning("status", "???") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bounced", "bounced"),
        ("Abgemeldet", "unsubscribed"),
        ("spam", "complained"),
        ("ręcznie", "manual"),
        ("", "none"),
        ("active", "none"),
    ],
)
def test_optout_reasons(ctx, raw, expected):
    assert word_meaning("optout_reason", raw) == expected


def test_dates_in_iso_and_european_formats(ctx):
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_datetime("2024-03-12", berlin) == datetime(2024, 3, 11, 23, 0, tzinfo=UTC)
    assert parse_datetime("12.03.2024 14:30", berlin) == datetime(2024, 3, 12, 13, 30, tzinfo=UTC)
    assert parse_datetime("12/03/2024", UTC) == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("12-03-2024", UTC) == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("2024-03-12T10:00:00+00:00", berlin) == datetime(
        2024, 3, 12, 10, tzinfo=UTC
    )
    assert parse_datetime("2024-03-12T10:00:00Z") == datetime(2024, 3, 12, 10, tzinfo=UTC)
    assert parse_datetime("") is None


def test_dates_month_first_when_asked_and_unix_time(ctx):
    assert parse_datetime("03/12/2024", UTC, "mdy") == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("3/12/24 5:06 PM", UTC, "mdy") == datetime(2024, 3, 12, 17, 6, tzinfo=UTC)
    assert parse_datetime("2024-03-12", UTC, "mdy") == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("1710201600", UTC) == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("1710201600000", UTC, "unix") == datetime(2024, 3, 12, tzinfo=UTC)
    assert parse_datetime("0", UTC) is None  # CleverReach: "never"
    with pytest.raises(ValueProblem):
        parse_datetime("13/12/2024", UTC, "mdy")


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["2024-03-12 10:00:00", "2023-01-31 08:00:00"], ""),
        (["12.03.2024", "31.01.2023"], ""),
        (["03/12/2024", "01/31/2023"], "mdy"),
        (["03/12/2024", "04/11/2023"], ""),  # both readings work: day first, as Europe writes
        (["1710201600", "", "0"], ""),
        ([], ""),
    ],
)
def test_date_format_is_read_off_the_file(ctx, cells, expected):
    assert detect_date_format(cells) == expected


@pytest.mark.parametrize("raw", ["31.02.2024", "yesterday", "2024-13-01", "03/14"])
def test_impossible_dates_are_problems(ctx, raw):
    with pytest.raises(ValueProblem):
        parse_datetime(raw)


SAMPLES = [
    "plain@example.com",
    "UPPER.Case@Example.COM",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "x@xn--mller-kva.de",
    "jürgen@müller.de",
    "ünïcode@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@example",
    "a@exa_mple.com",
    "a@localhost",
    "a@[127.0.0.1]",
    '"quoted"@example.com',
    "a" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com",
    "a@example.com.",
    "a@@example.com",
    "user@example.invalid",
    "user@123.123.123.123",
    "user@EXAMPLE.travel",
]


@pytest.mark.parametrize("raw", SAMPLES)
def test_fast_path_agrees_with_the_library(ctx, raw):
    """The cached fast path must accept, refuse and normalize exactly like email-validator."""
    from email_validator import EmailNotValidError, validate_email

    try:
        expected = validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got = normalize_email(raw)
    except ValueProblem:
        got = None
    assert got == expected
