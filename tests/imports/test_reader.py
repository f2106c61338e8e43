"""Reading real-world list files: Excel exports in five languages, odd encodings, bad input."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile

import pytest

from portal.imports import reader
from portal.imports.mapping import auto_map, is_portal_format, split_tags

ROWS = [
    ["E-Mail", "Vorname", "Nachname", "Tags"],
    ["jürgen.größ@example.com", "Jürgen", "Größ", "Kunde; VIP"],
    ["lukasz@example.pl", "Łukasz", "Węgrzyn", "Żółć"],
    ["niccolo@example.it", "Niccolò", "Mazzà", ""],
]


def _write(tmp_path, name: str, text: str, encoding: str) -> reader.Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _rows(path, filename=""):
    info = reader.inspect(path, filename)
    return info, list(reader.iter_rows(path, info))


def _as_text(rows, delimiter):
    """What Excel writes: quoted where needed, CRLF line ends."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize(
    ("encoding", "delimiter", "expected"),
    [
        ("utf-8", ",", "utf-8"),
        ("utf-8-sig", ";", "utf-8-sig"),  # Excel "CSV UTF-8"
        ("utf-16", "\t", "utf-16"),  # Excel "Unicode text"
    ],
)
def test_unicode_files_from_excel_keep_every_letter(tmp_path, encoding, delimiter, expected):
    path = _write(tmp_path, "list.csv", _as_text(ROWS, delimiter), encoding)
    info, rows = _rows(path)
    assert info.encoding == expected
    assert info.delimiter == delimiter
    assert rows[1] == (2, ROWS[1])
    assert rows[2] == (3, ROWS[2])


def test_windows_1252_german_export(tmp_path):
    rows = [
        ["E-Mail", "Vorname", "Nachname"],
        ["a@example.de", "Jürgen", "Größ"],
        ["b@example.de", "Änne", "Weiß"],
    ]
    path = _write(tmp_path, "de.csv", _as_text(rows, ";"), "cp1252")
    info, parsed = _rows(path)
    assert [cells for _, cells in parsed] == rows


def test_windows_1250_polish_export(tmp_path):
    rows = [
        ["Adres e-mail", "Imię", "Nazwisko"],
        ["a@example.pl", "Łukasz", "Węgrzyn"],
        ["b@example.pl", "Zażółć", "Gęślą Jaźń"],
    ]
    path = _write(tmp_path, "pl.csv", _as_text(rows, ";") * 1, "cp1250")
    info, parsed = _rows(path)
    assert [cells for _, cells in parsed] == rows


@pytest.mark.parametrize(
    ("encoding", "rows"),
    [
        # German customers with Polish names: only cp1250 holds both ("£ukasiewicz" in cp1252)
        (
            "cp1250",
            [
                ["Adres e-mail", "Imię", "Nazwisko", "Etykiety"],
                ["anna@example.com", "Anna", "Łukasiewicz-Żółć", "Kraków"],
                ["juergen@example.de", "Jürgen", "Größ", ""],
                ["m@example.pl", "Małgorzata", "Ćwik", "Łódź"],
            ],
        ),
        # Italian and Dutch Excel exports are cp1252 ("Niccolň", "Anaďs" in cp1250)
        ("cp1252", [["email", "nome", "cognome"], ["a@x.it", "Niccolò", "Mattè"]]),
        ("cp1252", [["e-mailadres", "voornaam"], ["a@x.nl", "Anaïs"], ["b@x.nl", "Zoë"]]),
    ],
)
def test_short_windows_exports_are_read_in_the_right_code_page(tmp_path, encoding, rows):
    path = _write(tmp_path, "list.csv", _as_text(rows, ";"), encoding)
    _, parsed = _rows(path)
    assert [cells for _, cells in parsed] == rows


def _ascii_lines(count: int) -> list[str]:
    return [f"person{i}@example.com;Smith" for i in range(count)]


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("cp1252", "Müller"), ("cp1250", "Łukasiewicz"), ("utf-8", "Węgrzyn-Größ")],
)
def test_the_first_letter_beyond_ascii_decides_even_far_below_the_sample(tmp_path, encoding, name):
    """An English list from Excel whose first umlaut comes after the 256 KB sample: the
    encoding is the one of that line, not the UTF-8 a plain-ASCII sample suggests (which
    failed the import halfway through a cp1252 file)."""
    lines = ["email;last_name"] + _ascii_lines(20_000) + [f"late@example.de;{name}"]
    path = tmp_path / "late.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding))
    assert path.read_bytes()[: reader.SAMPLE_BYTES].isascii()
    info, parsed = _rows(path)
    assert (info.encoding == "utf-8") == (encoding == "utf-8")  # "ü" is the same in 1250
    assert parsed[-1] == (20_002, ["late@example.de", name])
    assert len(parsed) == 20_002


def test_a_file_of_plain_ascii_is_utf_8(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_bytes("\n".join(["email;last_name"] + _ascii_lines(20_000)).encode())
    assert path.stat().st_size > reader.SAMPLE_BYTES
    info, parsed = _rows(path)
    assert info.encoding == "utf-8" and info.delimiter == ";"
    assert len(parsed) == 20_001


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_an_excel_separator_hint_names_the_delimiter_and_is_no_row(tmp_path, delimiter):
    """Exports meant for Excel often begin with "sep=;": it is neither the header nor a
    contact, and line numbers still count it (line 3 is the first contact)."""
    rows = [["E-Mail", "Vorname", "Nachname"], ["a@example.de", "Jürgen", "Größ"]]
    text = f"sep={delimiter}\r\n" + _as_text(rows, delimiter)
    path = _write(tmp_path, "list.csv", text, "utf-8-sig")
    info, parsed = _rows(path)
    assert info.delimiter == delimiter
    assert parsed == [(2, rows[0]), (3, rows[1])]


def test_a_first_contact_that_looks_like_a_hint_is_kept(tmp_path):
    path = _write(tmp_path, "list.csv", "email;note\r\nsep=;\r\na@example.de;x\r\n", "utf-8")
    info, parsed = _rows(path)
    assert parsed[1] == (2, ["sep=", ""])  # only line 1 can be the hint


def test_line_numbers_count_physical_lines_with_quoted_newlines(tmp_path):
    text = 'email,notes\r\na@example.com,"two\r\nlines"\r\nb@example.com,x\r\n'
    path = _write(tmp_path, "q.csv", text, "utf-8")
    _, parsed = _rows(path)
    assert [line for line, _ in parsed] == [1, 2, 4]


def test_blank_lines_are_skipped_and_ragged_rows_kept(tmp_path):
    text = "email,first\n\na@example.com\nb@example.com,B,extra\n"
    path = _write(tmp_path, "r.csv", text, "utf-8")
    _, parsed = _rows(path)
    assert parsed == [
        (1, ["email", "first"]),
        (3, ["a@example.com"]),
        (4, ["b@example.com", "B", "extra"]),
    ]


def test_a_10_mb_line_is_a_row_problem_not_a_crash(tmp_path):
    text = (
        "email,first\na@example.com,A\nb@example.com,"
        + "x" * (10 * 1024 * 1024)
        + "\nc@example.com,C\n"
    )
    path = _write(tmp_path, "big.csv", text, "utf-8")
    _, parsed = _rows(path)
    problems = [p for p in parsed if isinstance(p, reader.RowProblem)]
    assert [p.line for p in problems] == [3]
    assert (4, ["c@example.com", "C"]) in parsed


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(reader.FileProblem, match="empty"):
        reader.inspect(path)


def test_whitespace_only_file_is_refused(tmp_path):
    path = _write(tmp_path, "blank.csv", "\n\n  \n", "utf-8")
    with pytest.raises(reader.FileProblem, match="empty"):
        reader.inspect(path)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    with pytest.raises(reader.FileProblem, match="binary"):
        reader.inspect(path)


def test_old_excel_format_gets_advice(tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(codecs.BOM_UTF16_LE + b"x" * 10)
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(reader.FileProblem):
        reader.inspect(path, "old.xls")


def test_xlsx_is_streamed_with_dates_and_numbers_as_text(tmp_path):
    from datetime import datetime

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Indirizzo email", "Nome", "Cognome", "Data iscrizione", "Punti"])
    sheet.append(["niccolo@example.it", "Niccolò", "Mazzà", datetime(2024, 3, 1, 9, 30), 12.0])
    sheet.append([None, None, None, None, None])
    sheet.append(["eline@example.nl", "Eline", "van 't Hoff", datetime(2024, 3, 2), 3.5])
    path = tmp_path / "list.xlsx"
    workbook.save(path)
    info, parsed = _rows(path, "list.xlsx")
    assert info.kind == "xlsx"
    assert parsed[1] == (2, ["niccolo@example.it", "Niccolò", "Mazzà", "2024-03-01 09:30:00", "12"])
    assert parsed[2] == (4, ["eline@example.nl", "Eline", "van 't Hoff", "2024-03-02", "3.5"])


def test_zip_bomb_disguised_as_xlsx_is_refused(tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (300 * 1024 * 1024))
    with pytest.raises(reader.FileProblem, match="unreasonable size"):
        reader.inspect(path, "bomb.xlsx")


def test_zip_that_is_not_a_workbook_is_refused(tmp_path):
    path = tmp_path / "x.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(reader.FileProblem, match="not an Excel workbook"):
        reader.inspect(path, "x.xlsx")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["E-Mail", "Vorname", "Nachname", "Tags"], ["email", "first_name", "last_name", "tags"]),
        (
            ["Indirizzo email", "Nome", "Cognome", "Etichette"],
            ["email", "first_name", "last_name", "tags"],
        ),
        (
            ["E-mailadres", "Voornaam", "Achternaam", "Aanmelddatum"],
            ["email", "first_name", "last_name", "signup_at"],
        ),
        (
            ["Adres e-mail", "Imię", "Nazwisko", "Data wypisu"],
            ["email", "first_name", "last_name", "signoff_at"],
        ),
        (
            ["Email Address", "First Name", "Last Name", "Notes"],
            ["email", "first_name", "last_name", ""],
        ),
        (["email", "email", "first_name"], ["email", "", "first_name"]),
    ],
)
def test_headers_map_automatically_in_five_languages(header, expected):
    assert auto_map(header) == expected


def test_custom_fields_map_by_key_label_or_export_name():
    fields = {"city": "Stadt", "points": "Punkte"}
    assert auto_map(["email", "Stadt", "field:points"], fields) == [
        "email",
        "field:city",
        "field:points",
    ]


def test_portal_format_is_recognised():
    header = [
        "email",
        "first_name",
        "last_name",
        "tags",
        "active",
        "signup_at",
        "signoff_at",
        "optout_reason",
        "field:city",
    ]
    assert is_portal_format(header)
    assert auto_map(header, {"city": "City"}) == [
        "email",
        "first_name",
        "last_name",
        "tags",
        "active",
        "signup_at",
        "signoff_at",
        "optout_reason",
        "field:city",
    ]
    assert not is_portal_format(["E-Mail", "Vorname"])


def test_tags_split_on_comma_semicolon_and_bar():
    assert split_tags("Kunde, VIP;Größe|vip| ") == ["Kunde", "VIP", "Größe"]
