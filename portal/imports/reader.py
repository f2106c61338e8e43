"""Reading uploaded lists: CSV/TSV/TXT in any common encoding, and XLSX.

Everything streams: a file is never loaded whole, so memory stays flat however
large the upload. Problems with the file as a whole raise FileProblem with a
translated message; problems with one row are yielded as RowProblem with the
row's line number, so nothing is silently lost."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from charset_normalizer import from_bytes
from flask_babel import format_decimal, lazy_ngettext
from flask_babel import lazy_gettext as _l

from portal.imports.portal_format import unguard

SAMPLE_BYTES = 256 * 1024
DELIMITERS = ",;\t|"
MAX_FIELD_CHARS = 1_000_000  # a longer cell is an error for its row, not a crash
XLSX_MAX_UNCOMPRESSED = 512 * 1024 * 1024
XLSX_MAX_RATIO = 200  # zip bombs compress far better than real spreadsheets
ENCODING_CANDIDATES = ("utf_8", "cp1252", "cp1250", "iso8859_2", "latin_1")


class FileProblem(Exception):
    """The file cannot be read at all; the message is shown to the user."""


class EncodingBroken(FileProblem):
    """The file leaves its encoding after `line` (a list pasted together from two
    exports): continuing the import would meet the same bytes, the file has to be saved
    again."""

    def __init__(self, encoding: str, line: int) -> None:
        super().__init__(encoding_broken_message(encoding, line))
        self.encoding, self.line = encoding, line


def encoding_broken_message(encoding: str, line: int):
    return _l(
        "The file is not in the %(encoding)s encoding after line %(line)d.",
        encoding=encoding,
        line=line,
    )


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str


@dataclass(frozen=True)
class FileInfo:
    kind: str  # "csv" | "xlsx"
    encoding: str | None = None
    delimiter: str | None = None


def inspect(path: Path, filename: str = "") -> FileInfo:
    """Find out what kind of file this is, its encoding and its delimiter."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise FileProblem(_l("The file is empty."))
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if head.startswith(b"PK\x03\x04"):
        _check_xlsx(path)
        return FileInfo(kind="xlsx")
    if filename.lower().endswith((".xls", ".xlsx", ".xlsm", ".ods")):
        raise FileProblem(_l("This spreadsheet cannot be read. Save it as .xlsx or .csv."))
    encoding = detect_encoding(head, complete=size <= SAMPLE_BYTES)
    if size > SAMPLE_BYTES and head.isascii() and not encoding.startswith("utf-16"):
        encoding = _encoding_further_down(path) or encoding
    text = _decode_sample(head, encoding)
    return FileInfo(kind="csv", encoding=encoding, delimiter=detect_delimiter(text))


_NON_ASCII_BYTE = re.compile(rb"[\x80-\xff]")
SCAN_BLOCK = 1 << 20


def _encoding_further_down(path: Path) -> str | None:
    """A sample of plain ASCII says nothing about the encoding: an English list with its
    first "Müller" at line 20,000 would be read as UTF-8 and, if Excel wrote it in
    cp1252, fail there in the middle of the import. So the file is scanned (in C, about
    a second per GB) for its first non-ASCII byte, and the encoding is decided on the
    lines from there. None when the whole file is ASCII."""
    with path.open("rb") as fh:
        offset = 0
        while block := fh.read(SCAN_BLOCK):
            found = _NON_ASCII_BYTE.search(block)
            if found:
                fh.seek(offset + block.rfind(b"\n", 0, found.start()) + 1)
                return detect_encoding(fh.read(SAMPLE_BYTES))
            offset += len(block)
    return None


def detect_encoding(head: bytes, complete: bool = False) -> str:
    """BOMs first (Excel writes UTF-16 with one), then UTF-16 without one, then strict
    UTF-8, then a guess."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        if utf16 := _utf16_without_bom(head):
            return utf16
        raise FileProblem(
            _l("This looks like a binary file, not a list. Upload a CSV or XLSX file.")
        )
    try:
        head.decode("utf-8") if complete else _decode_utf8_prefix(head)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    results = list(from_bytes(head, cp_isolation=list(ENCODING_CANDIDATES)))
    if not results:
        raise FileProblem(_l("The character encoding of the file could not be recognised."))
    # charset_normalizer alone misreads short lists: cp1252 for Polish mixed with German
    # names ("£ukasiewicz", "Ma³gorzata"), cp1250 for Italian or Dutch ("Niccolň",
    # "Anaďs"). The candidate that reads most like the portal's languages wins; ties keep
    # charset_normalizer's ranking.
    return min(results, key=lambda match: _implausibility(str(match))).encoding


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 that some tools write without a byte order mark (issue 16, point 10): a
    list is mostly ASCII, so every other byte is a zero — the odd ones in little-endian,
    the even ones in big-endian. The guess must then decode the sample cleanly."""
    sample = head[: 64 * 1024]
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.3 and zeros_even < 0.05:
        candidate = "utf-16-le"
    elif zeros_even > 0.3 and zeros_odd < 0.05:
        candidate = "utf-16-be"
    else:
        return None
    try:
        text = codecs.getincrementaldecoder(candidate)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    return candidate if "\x00" not in text else None


# Letters outside ASCII of the portal's languages and their neighbours (de, it, nl, pl, fr).
_KNOWN_LETTERS = frozenset("äöüßÄÖÜàèéìíîòóùúÀÈÉÌÍÒÓÙÚâêëïôûçœÂÊËÏÔÛÇŒąćęłńśźżĄĆĘŁŃŚŹŻ")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _implausibility(text: str) -> tuple[int, int]:
    """(symbols glued to letters, minus known letters): "£" in "£ódź" or "³" in
    "Ma³gorzata" betray a wrong code page, "ł" or "ò" speak for the right one."""
    strays = known = 0
    for found in _NON_ASCII.finditer(text):
        char, i = found.group(), found.start()
        if char in _KNOWN_LETTERS:
            known += 1
        elif not char.isalpha() and (
            (i > 0 and text[i - 1].isalpha()) or (i + 1 < len(text) and text[i + 1].isalpha())
        ):
            strays += 1
    return strays, -known


def _decode_utf8_prefix(head: bytes) -> str:
    """Decode a sample that may end in the middle of a multi-byte character."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    return decoder.decode(head, final=False)


def _decode_sample(head: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)


# "sep=;" as the first line: the hint that tools write for Excel ("open this with ;"),
# found in exports from other mailing tools; it names the delimiter and is no row
_SEPARATOR_HINT = re.compile(r"sep=(.)\s*", re.IGNORECASE)


def _separator_hint(line: str) -> str | None:
    found = _SEPARATOR_HINT.fullmatch(line.strip(" \r\n"))
    return found.group(1) if found and found.group(1) in DELIMITERS else None


def detect_delimiter(text: str) -> str:
    first_lines = text.splitlines()[:50]
    lines = [line for line in first_lines if line.strip()]
    if not lines:
        raise FileProblem(_l("The file is empty."))
    if hint := _separator_hint(first_lines[0]):
        return hint
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = lines[0]
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _check_xlsx(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "xl/workbook.xml" not in names:
                raise FileProblem(_l("This ZIP file is not an Excel workbook."))
            total = sum(info.file_size for info in archive.infolist())
            packed = sum(info.compress_size for info in archive.infolist()) or 1
    except zipfile.BadZipFile as exc:
        raise FileProblem(_l("The Excel file is damaged and cannot be read.")) from exc
    if total > XLSX_MAX_UNCOMPRESSED or total / packed > XLSX_MAX_RATIO:
        raise FileProblem(
            _l("The Excel file unpacks to an unreasonable size and was refused for safety.")
        )


class Progress:
    """How far through the file a reader is, as a fraction from 0 to 1."""

    def __init__(self) -> None:
        self.fraction = 0.0


class _CountingReader(io.RawIOBase):
    """Counts the bytes the text layer has pulled from the file."""

    def __init__(self, raw, size: int, progress: Progress) -> None:
        self._raw, self._size, self._progress, self._read = raw, max(size, 1), progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self._read += n or 0
        self._progress.fraction = min(self._read / self._size, 1.0)
        return n


def iter_rows(
    path: Path, info: FileInfo, progress: Progress | None = None
) -> Iterator[tuple[int, list[str]] | RowProblem]:
    """Yield (line number, cells) per row, or a RowProblem for a row that is broken."""
    progress = progress or Progress()
    if info.kind == "xlsx":
        yield from _iter_xlsx(path, progress)
    else:
        yield from _iter_csv(path, info, progress)
    progress.fraction = 1.0


def _iter_csv(
    path: Path, info: FileInfo, progress: Progress
) -> Iterator[tuple[int, list[str]] | RowProblem]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open("rb", buffering=0) as raw:
        counted = io.BufferedReader(_CountingReader(raw, path.stat().st_size, progress), 1 << 16)
        fh = io.TextIOWrapper(counted, encoding=info.encoding, errors="strict", newline="")
        reader = csv.reader(fh, delimiter=info.delimiter or ",")
        last_line = 0
        while True:
            start = last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                last_line = reader.line_num
                yield RowProblem(start, str(_l("The line is too long or badly quoted.")))
                continue
            except UnicodeDecodeError as exc:
                raise EncodingBroken(info.encoding or "", last_line) from exc
            last_line = reader.line_num
            if start == 1 and _separator_hint(reader.dialect.delimiter.join(row)):
                continue
            if any(cell.strip() for cell in row):
                yield start, [unguard(cell) for cell in row]


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds").removesuffix(" 00:00:00")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _iter_xlsx(path: Path, progress: Progress) -> Iterator[tuple[int, list[str]]]:
    # openpyxl (~80 ms to import) only when a workbook comes: not at every start of
    # a web or worker process
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for broken files
        raise FileProblem(_l("The Excel file is damaged and cannot be read.")) from exc
    try:
        sheet = workbook.worksheets[0]
        total = max(sheet.max_row or 1, 1)
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            progress.fraction = min(number / total, 1.0)
            cells = [unguard(_cell_text(v)) for v in row]
            if any(c.strip() for c in cells):
                yield number, cells
    finally:
        workbook.close()


def preview(path: Path, info: FileInfo, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    """Header and the first rows, for the mapping page. A header line that cannot be
    read (a single line of 10 MB) is refused: the next line would silently become the
    column names, and a file of one such line looked "empty"."""
    header: list[str] | None = None
    body: list[list[str]] = []
    for item in iter_rows(path, info):
        if isinstance(item, RowProblem):
            if header is None:
                raise FileProblem(
                    _l(
                        "Line %(line)d of the file is too long or badly quoted, so the column "
                        "names cannot be read. A list has one person per line, with the column "
                        "names in the first line.",
                        line=item.line,
                    )
                )
            continue
        _, cells = item
        if header is None:
            header = [c.strip() for c in cells]
            continue
        body.append(cells)
        if len(body) >= rows:
            break
    if header is None:
        raise FileProblem(_l("The file is empty."))
    return header, body


MAX_COLUMNS = 500


def fit_columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """At most MAX_COLUMNS columns: a file of 10,000 columns made a mapping page of
    12.8 MB, and no list needs that many. Columns that are empty in the header and in
    every sample row at the right end are no columns (spreadsheets that were formatted
    far to the right): they are dropped first, and only a file that still has too many
    is refused, with a message that says how many."""
    if len(header) <= MAX_COLUMNS:
        return header
    width = 0
    for cells in (header, *rows):
        for position in range(len(cells) - 1, width - 1, -1):
            if cells[position].strip():
                width = position + 1
                break
    if width > MAX_COLUMNS:
        raise FileProblem(
            lazy_ngettext(
                "The file has %(columns)s column; an import reads at most %(max)s. Remove "
                "the columns you do not need and upload it again.",
                "The file has %(columns)s columns; an import reads at most %(max)s. Remove "
                "the columns you do not need and upload it again.",
                width,
                columns=format_decimal(width),
                max=MAX_COLUMNS,
            )
        )
    return header[:width]
