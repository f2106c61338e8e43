"""CSV cells that spreadsheet programs will not run as formulas.

Excel, LibreOffice and Google Sheets treat a cell that starts with = + - @ (or a tab
or carriage return before them) as a formula; a contact named "=HYPERLINK(...)" must
come out as text. The OWASP advice: prefix such cells with a single quote. The
importer removes that quote again, so the portal's own files round-trip exactly."""

from __future__ import annotations

from collections.abc import Iterable

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(TRIGGERS):
        return "'" + text
    return text


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe_cell(v) for v in values]
