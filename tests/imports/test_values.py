"""Cell values as people write them in five languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from portal.imports.values import (
    ValueProblem,
    normalize_email,
    parse_bool,
    parse_datetime,
    parse_reason,
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
        ("ja", True),
        ("Sì", True),
        ("TAK", True),
        ("1", True),
        ("actief", True),
        ("nein", False),
        ("no", False),
        ("nie", False),
        ("0", False),
        ("nee", False),
        ("", None),
    ],
)
def test_yes_and_no_in_five_languages(ctx, raw, expected):
    assert parse_bool(raw) is expected if expected is not None else parse_bool(raw) is None


def test_unknown_yes_no_word_is_a_problem(ctx):
    with pytest.raises(ValueProblem):
        parse_bool("vielleicht")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bounced", "bounced"),
        ("Abgemeldet", "unsubscribed"),
        ("spam", "complained"),
        ("ręcznie", "manual"),
        ("", None),
    ],
)
def test_optout_reasons(ctx, raw, expected):
    assert parse_reason(raw) == expected


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


@pytest.mark.parametrize("raw", ["31.02.2024", "yesterday", "2024-13-01"])
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
