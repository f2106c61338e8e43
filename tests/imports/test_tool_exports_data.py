"""Self-checks of the tool-export fixtures (tool_exports.py) against their own bytes.

No portal code runs here: these tests make sure each file says what its `Expected`
claims, so that a failing import test points at the engine, not at the fixture."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from email_validator import EmailNotValidError, validate_email

from tests.imports.tool_exports import (
    ACCOUNT_ZONE,
    ALL_EXPORTS,
    REASONS,
    ToolExport,
    parse_date_cell,
    split_full_name,
    write_to,
)

EXPORTS = {build.__name__: build() for build in ALL_EXPORTS}


@pytest.fixture(params=list(EXPORTS), ids=list(EXPORTS))
def export(request) -> ToolExport:
    return EXPORTS[request.param]


def _table(export: ToolExport) -> tuple[list[str], list[dict[str, str]]]:
    text = export.content.decode(export.encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=export.delimiter))
    header, data = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in data), "ragged rows"
    return header, [dict(zip(header, row, strict=True)) for row in data]


def _address(cell: str) -> str | None:
    """What a reader makes of an address cell: lower-cased, or None if it is not one."""
    text = cell.strip()
    if not text:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _zone(export: ToolExport):
    return UTC if export.documented_zone == "UTC" else ZoneInfo(ACCOUNT_ZONE)


def _first_lines(export: ToolExport) -> dict[str, dict[str, str]]:
    """Each valid address with the cells of the line that wins (the first)."""
    _, data = _table(export)
    first: dict[str, dict[str, str]] = {}
    for row in data:
        email = _address(row[export.email_header])
        if email is not None:
            first.setdefault(email, row)
    return first


def test_every_builder_is_listed_once_and_filenames_differ():
    assert len(EXPORTS) == len(ALL_EXPORTS) == 14
    assert len({e.filename for e in EXPORTS.values()}) == len(EXPORTS)
    assert {(e.tool, e.variant) for e in EXPORTS.values()} == {
        ("mailchimp", "subscribed"),
        ("mailchimp", "unsubscribed"),
        ("mailchimp", "cleaned"),
        ("cleverreach", "receivers"),
        ("brevo", "contacts"),
        ("listmonk", "subscribers"),
        ("mautic", "contacts"),
        ("mautic", "dnc_report"),
        ("salesmanago", "contacts"),
        ("excel", "de"),
        ("excel", "it"),
        ("excel", "nl"),
        ("excel", "pl"),
        ("excel", "en"),
    }


def test_builders_are_deterministic():
    for build in ALL_EXPORTS:
        assert build().content == EXPORTS[build.__name__].content


def test_decodes_with_its_declared_encoding_and_has_enough_rows(export):
    text = export.content.decode(export.encoding)  # raises if the claim is wrong
    assert export.content.startswith(b"\xef\xbb\xbf") == (export.encoding == "utf-8-sig")
    assert "\ufffd" not in text
    header, data = _table(export)
    assert export.email_header in header
    assert len(data) == export.expected.rows >= 50
    assert export.documented_zone in ("UTC", None)


def test_counts_add_up(export):
    exp = export.expected
    assert not exp.active & set(exp.signed_off)
    assert exp.rows == len(exp.active) + len(exp.signed_off) + exp.invalid + exp.duplicates
    assert exp.invalid == len(exp.invalid_lines) == 1
    assert exp.duplicates == len(exp.duplicate_lines) == 1
    assert exp.warnings == len(exp.unreadable) == 1
    assert set(exp.signed_off.values()) <= set(REASONS)


def test_every_expected_address_is_in_the_file_and_every_valid_one_is_expected(export):
    exp = export.expected
    first = _first_lines(export)
    expected = exp.active | set(exp.signed_off)
    assert expected == set(first)
    assert all(e == e.lower() for e in expected)
    assert set(exp.names) == expected
    assert set(exp.signup) <= expected
    assert set(exp.signoff) <= set(exp.signed_off)
    assert set(exp.tags) <= expected


def test_exactly_one_invalid_and_one_duplicate_line(export):
    _, data = _table(export)
    seen: set[str] = set()
    invalid, duplicate = [], []
    for line, row in enumerate(data, start=2):
        email = _address(row[export.email_header])
        if email is None:
            invalid.append(line)
        elif email in seen:
            duplicate.append(line)
        else:
            seen.add(email)
    assert invalid == list(export.expected.invalid_lines)
    assert duplicate == list(export.expected.duplicate_lines)


def test_exactly_one_unreadable_date_cell(export):
    """Every non-empty cell of every date column reads with the column's pattern, except
    the one cell the fixture declares unreadable."""
    _, data = _table(export)
    failures = []
    for line, row in enumerate(data, start=2):
        for header, pattern in export.date_formats.items():
            value = row[header]
            if not value.strip():
                continue
            try:
                parse_date_cell(value, pattern)
            except ValueError:
                failures.append((line, header, value))
    assert failures == [tuple(u) for u in export.expected.unreadable]


def test_signup_and_signoff_are_the_files_times(export):
    exp = export.expected
    zone = _zone(export)
    for email, row in _first_lines(export).items():
        for headers, expected in (
            (export.signup_headers, exp.signup),
            (export.signoff_headers, exp.signoff),
        ):
            found = None
            for header in headers:
                value = row[header].strip()
                if not value:
                    continue
                try:
                    parsed = parse_date_cell(value, export.date_formats[header])
                except ValueError:
                    continue
                found = parsed.replace(tzinfo=zone).astimezone(UTC)
                break
            if found is None:
                assert email not in expected, email
            elif headers is export.signoff_headers and email not in exp.signed_off:
                pytest.fail(f"{email} is active but has a sign-off time")
            else:
                assert expected[email] == found, email
    for value in (*exp.signup.values(), *exp.signoff.values()):
        assert value.tzinfo is UTC


def test_dates_around_daylight_saving_are_both_in_the_file(export):
    """Naive files must exercise both CET and CEST, or a zone bug could hide."""
    if export.documented_zone is not None or not export.expected.signup:
        return
    offsets = {
        v.astimezone(ZoneInfo(ACCOUNT_ZONE)).utcoffset() for v in export.expected.signup.values()
    }
    assert len(offsets) == 2


def test_names(export):
    exp = export.expected
    for email, row in _first_lines(export).items():
        first, last = exp.names[email]
        if export.full_name_header:
            assert split_full_name(row[export.full_name_header]) == (first, last)
        assert first == first.strip() and last == last.strip()


def test_full_name_files_need_the_particle_rule():
    for name in ("listmonk", "salesmanago"):
        names = EXPORTS[name].expected.names.values()
        assert any(" " in last for _, last in names), name  # "van der Berg"
        assert any(" " in first for first, _ in names) or name == "salesmanago", name
        assert ("Cher", "") in names or name == "salesmanago", name


def test_full_name_rule():
    assert split_full_name("Jan van der Berg") == ("Jan", "van der Berg")
    assert split_full_name("Ludwig von Beethoven") == ("Ludwig", "von Beethoven")
    assert split_full_name("Joost van 't Hek") == ("Joost", "van 't Hek")
    assert split_full_name("Lucia De Santis") == ("Lucia", "De Santis")
    assert split_full_name("Anna Maria Köhler") == ("Anna Maria", "Köhler")
    assert split_full_name("Cher") == ("Cher", "")
    assert split_full_name("  ") == ("", "")


def test_the_files_carry_the_letters_they_promise():
    utf8 = "".join(
        e.content.decode(e.encoding) for e in EXPORTS.values() if e.encoding.startswith("utf")
    )
    for letter in "äöüßéèłśżąęń":
        assert letter in utf8, letter
    assert "IJ" in utf8
    assert "ł" in EXPORTS["excel_pl"].content.decode("cp1250")
    for name in ("excel_de", "excel_it", "excel_nl"):
        text = EXPORTS[name].content.decode("cp1252")
        assert any(ch in text for ch in "äöüßéè"), name


def test_signed_off_and_blocked_people_where_the_tool_knows_them():
    for name, export in EXPORTS.items():
        reasons = list(export.expected.signed_off.values())
        if name in ("mailchimp_subscribed", "mautic"):
            assert not reasons, name  # those files have no notion of it
            continue
        assert len(reasons) >= 3, name
    for name in (
        "brevo",
        "listmonk",
        "mautic_dnc",
        *(f"excel_{x}" for x in ["de", "it", "nl", "pl", "en"]),
    ):
        assert list(EXPORTS[name].expected.signed_off.values()).count("blocked") >= 2, name


def test_tags_are_clean(export):
    for email, tags in export.expected.tags.items():
        assert tags, email
        assert len({t.casefold() for t in tags}) == len(tags), email
        assert all(t == t.strip().strip('"') and t for t in tags), email


def test_addresses_differ_between_files():
    seen: dict[str, str] = {}
    for name, export in EXPORTS.items():
        for email in export.expected.active | set(export.expected.signed_off):
            assert email not in seen, (email, name, seen.get(email))
            seen[email] = name


def test_line_ends_and_quoting_as_the_tool_writes_them():
    for name, export in EXPORTS.items():
        crlf = b"\r\n" in export.content
        assert crlf == name.startswith("excel_"), name
    mailchimp = EXPORTS["mailchimp_subscribed"].content.decode()
    assert mailchimp.startswith('"Email Address","First Name","Last Name",Birthday,')
    assert '"""Kunde"",""VIP"""' in mailchimp
    listmonk = EXPORTS["listmonk"].content.decode()
    assert listmonk.startswith("uuid,email,name,attributes,status,created_at,updated_at\n")
    assert " +0000 UTC," in listmonk


def test_write_to(tmp_path, export):
    path = write_to(tmp_path, export)
    assert path.parent == tmp_path
    assert path.read_bytes() == export.content


def test_now_is_not_used():
    """Fixed data: nothing depends on the day the tests run."""
    before = {name: e.content for name, e in EXPORTS.items()}
    assert before == {b.__name__: b().content for b in ALL_EXPORTS}
    assert all(
        v < datetime(2026, 1, 1, tzinfo=UTC)
        for e in EXPORTS.values()
        for v in (*e.expected.signup.values(), *e.expected.signoff.values())
    )
