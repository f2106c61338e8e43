"""The portal's own CSV files as people download them: for Excel, in the reader's language.

Backups are stored, and exports written, in the machine format (mapping.PORTAL_HEADER:
`email,first_name,…,field:<key>`, comma-separated, UTC times) that restore and undo
read. A person who downloads one gets it translated on the way out, so that German,
Italian, Dutch and Polish Excel opens it as a table:

- the delimiter of the language: ";" where the decimal separator is a comma (de, it, nl,
  pl — what Excel expects there), "," for en;
- the column names of the language (imports.headers.PORTAL_HEADERS), custom fields by
  their label; the import recognises every such header as the portal's own file and maps
  it without a question (mapping.portal_language, profiles.PORTAL);
- times in the reader's zone with the offset ("2026-12-05 07:09:00+01:00"), which the
  import reads back as exactly the same instant; yes/no and the sign-off reasons in the
  language; numbers with a decimal comma where the language writes one;
- UTF-8 with BOM (Excel reads umlauts and Polish letters), every cell formula-guarded
  (safe_csv).

The reader's language and zone are those of the page (i18n), as for the failed-rows
file; see docs/decisions/excel-files.md."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from portal import i18n
from portal.contacts.models import fold
from portal.imports import headers as h
from portal.imports import service as imports
from portal.imports.mapping import normalize_header
from portal.imports.portal_format import CUSTOM_PREFIX, PORTAL_HEADER, unguard
from portal.safe_csv import safe_row

# Excel splits a CSV at the list separator of the system's region: a semicolon wherever
# the decimal separator is a comma
SEMICOLON_LANGUAGES = frozenset({"de", "it", "nl", "pl"})
DECIMAL_COMMA = SEMICOLON_LANGUAGES
ROWS_PER_CHUNK = 2000
CONTENT_TYPE = "text/csv; charset=utf-8"


def delimiter_for(language: str) -> str:
    return ";" if language in SEMICOLON_LANGUAGES else ","


class ExcelCsv:
    """Turns rows of the machine format (header first) into the file for Excel."""

    def __init__(
        self,
        language: str,
        zone: ZoneInfo,
        fields: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """`fields`: custom field key -> (label, type), for the column names and numbers."""
        self.language = language if language in h.PORTAL_HEADERS else "en"
        self.zone = zone
        self.fields = dict(fields or {})
        self.delimiter = delimiter_for(self.language)
        self.tag_separator = ", " if self.delimiter == ";" else ";"
        self._yes, self._no = h.YES_NO_WORDS[self.language]
        self._reasons = h.REASON_WORDS[self.language]
        self._plan: list = []

    # --- the header -------------------------------------------------------------------------

    def header(self, canonical: list[str]) -> list[str]:
        """The header in the language; prepares how each column's cells are written."""
        words = dict(zip(PORTAL_HEADER, h.PORTAL_HEADERS[self.language], strict=True))
        taken = {normalize_header(w) for w in words.values()}
        labels = [self._label(name) for name in canonical]
        counts: dict[str, int] = {}
        for label in labels:
            if label is not None:
                counts[normalize_header(label)] = counts.get(normalize_header(label), 0) + 1
        result, self._plan = [], []
        for name, label in zip(canonical, labels, strict=True):
            if name in words:
                result.append(words[name])
            elif (
                label is not None
                and counts[(n := normalize_header(label))] == 1
                and (n not in taken)
            ):
                # a label the import finds again; an ambiguous one keeps "field:<key>"
                result.append(label)
            else:
                result.append(name)
            self._plan.append(self._cell_writer(name))
        return result

    def _label(self, name: str) -> str | None:
        if not name.startswith(CUSTOM_PREFIX):
            return None
        label = self.fields.get(name.removeprefix(CUSTOM_PREFIX), ("", ""))[0].strip()
        return label if normalize_header(label) else None

    def _cell_writer(self, name: str):
        if name == h.TAGS:
            return self._tags
        if name == h.ACTIVE:
            return self._active
        if name in (h.SIGNUP_AT, h.SIGNOFF_AT):
            return self._time
        if name == h.OPTOUT_REASON:
            return lambda cell: self._reasons.get(cell, cell)
        key = name.removeprefix(CUSTOM_PREFIX)
        if name.startswith(CUSTOM_PREFIX) and self.fields.get(key, ("", ""))[1] == "number":
            return self._number
        return None

    # --- the cells --------------------------------------------------------------------------

    def _tags(self, cell: str) -> str:
        return self.tag_separator.join(t for t in cell.split(";") if t)

    def _active(self, cell: str) -> str:
        return {"yes": self._yes, "no": self._no}.get(cell, cell)

    def _time(self, cell: str) -> str:
        """ISO in UTC -> "2026-12-05 07:09:00+01:00" in the reader's zone (microseconds
        only when the time has some: the import reads back the exact instant)."""
        if not cell:
            return cell
        try:
            value = datetime.fromisoformat(cell)
        except ValueError:
            return cell
        if value.tzinfo is None:
            return cell
        return value.astimezone(self.zone).isoformat(sep=" ")

    def _number(self, cell: str) -> str:
        if self.language in DECIMAL_COMMA and re.fullmatch(r"-?\d+\.\d+", cell):
            return cell.replace(".", ",")
        return cell

    def row(self, cells: list[str]) -> list[str]:
        out = []
        for position, cell in enumerate(cells):
            plain = unguard(cell)
            write = self._plan[position] if position < len(self._plan) else None
            out.append(write(plain) if write is not None else plain)
        return safe_row(out)

    # --- the file ---------------------------------------------------------------------------

    def encode(self, rows: Iterable[list[str]]) -> Iterator[bytes]:
        """The file's bytes (BOM, header, rows) in chunks, from machine-format rows."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator="\r\n")
        buffer.write("\ufeff")
        iterator = iter(rows)
        header = next(iterator, None)
        if header is None:
            yield buffer.getvalue().encode("utf-8")
            return
        writer.writerow(safe_row(self.header(header)))
        for count, cells in enumerate(iterator, start=1):
            writer.writerow(self.row(cells))
            if count % ROWS_PER_CHUNK == 0:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")


def for_reader(account_id: int) -> ExcelCsv:
    """The file for whoever reads the page: its language, its zone, the account's fields."""

    fields = {k: (f.label, f.type) for k, f in imports.custom_fields(account_id).items()}
    return ExcelCsv(i18n.current_language(), i18n.current_timezone(), fields)


# --- file names ---------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\s\\/:*?\"<>|\x00-\x1f'`;,%]+")


def _ascii(text: str) -> str:

    folded = unicodedata.normalize("NFKD", fold(text)).encode("ascii", "ignore").decode()
    stem = "".join(ch if ch.isalnum() else "-" for ch in folded)
    return "-".join(part for part in stem.split("-") if part)[:60]


def _readable(text: str) -> str:
    stem = _UNSAFE.sub("-", text.strip())
    return "-".join(part for part in stem.split("-") if part)[:80]


def file_names(prefix: str, name: str, when: datetime, zone: ZoneInfo, ext: str) -> tuple[str, str]:
    """(ASCII name, readable name) in local time, neither with spaces:
    backup-kunden-koln-2026-12-05-0809.csv and backup-Kunden-Köln-2026-12-05-0809.csv."""
    stamp = when.astimezone(zone).strftime("%Y-%m-%d-%H%M")
    return (
        f"{prefix}-{_ascii(name) or 'group'}-{stamp}.{ext}",
        f"{prefix}-{_readable(name) or 'group'}-{stamp}.{ext}",
    )


def content_disposition(ascii_name: str, readable: str) -> str:
    """An attachment with the safe ASCII name for old clients and the readable one
    (RFC 6266 filename*) for every browser of the last decade."""
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(readable, safe='')}"
