"""Contact exports of other email tools, byte for byte, with what importing each must give.

Customers switching to the portal bring the export of their old tool: Mailchimp (one file
per status), CleverReach, Brevo, listmonk, Mautic, SALESmanago, or an Excel list saved in
their own language. Every builder here returns one such file as the tool writes it (header
names and order, delimiter, quoting, encoding and BOM, line ends, date format) together with
the result an import into an account in Europe/Berlin must produce.

How each format was established, and which parts are assumed, is written down in
docs/decisions/tool-exports.md; `ToolExport.assumed_format` marks the files whose layout no
source could confirm.

All data is fixed (no randomness); the addresses carry a per-file prefix ("mc.", "lm.", ...)
so that one test account can take any number of these files without two of them meeting.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

ACCOUNT_ZONE = "Europe/Berlin"  # the importing account's zone in the tests
BERLIN = ZoneInfo(ACCOUNT_ZONE)

REASONS = ("unsubscribed", "bounced", "complained", "blocked", "unconfirmed", "imported")

# Words that put the rest of a full name into the last name ("Jan van der Berg" ->
# ("Jan", "van der Berg")). Compared case-insensitively.
NAME_PARTICLES = frozenset(
    {
        # Dutch
        "van",
        "de",
        "der",
        "den",
        "het",
        "'t",
        "te",
        "ten",
        "ter",
        "op",
        "in",
        # German
        "von",
        "vom",
        "zu",
        "zum",
        "zur",
        "und",
        # Italian
        "di",
        "da",
        "del",
        "della",
        "dei",
        "degli",
        "dal",
        "dalla",
        "lo",
        "la",
    }
)


class Unreadable(NamedTuple):
    """An optional cell the import cannot read: it becomes empty, with a warning."""

    line: int  # physical line of the file, the header being line 1
    header: str
    value: str


@dataclass
class Expected:
    rows: int  # data lines (the header not counted)
    invalid: int  # lines refused: address missing or not an address
    duplicates: int  # later lines repeating an earlier address; the first line wins
    active: set[str]  # normalized (lower-case) addresses that must end up active
    signed_off: dict[str, str]  # address -> one of REASONS
    names: dict[str, tuple[str, str]]  # address -> (first_name, last_name) as stored
    signup: dict[str, datetime]  # aware UTC
    signoff: dict[str, datetime]  # aware UTC
    tags: dict[str, set[str]]  # only addresses with at least one tag
    warnings: int  # unreadable optional cells
    unreadable: tuple[Unreadable, ...] = ()
    invalid_lines: tuple[int, ...] = ()
    duplicate_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class ToolExport:
    tool: str  # the profile the engine should recognise
    variant: str
    filename: str  # as the tool names its download
    content: bytes  # exactly what the tool writes
    documented_zone: str | None  # "UTC", or None: naive times in the account's zone
    expected: Expected
    encoding: str  # codec that decodes `content`; "utf-8-sig" where a BOM leads
    delimiter: str
    email_header: str
    # header -> strptime pattern, for every date column of the file
    date_formats: dict[str, str] = field(default_factory=dict)
    # where sign-up and sign-off times come from, best first
    signup_headers: tuple[str, ...] = ()
    signoff_headers: tuple[str, ...] = ()
    full_name_header: str | None = None  # one column with "first last"
    assumed_format: bool = False  # no source showed this layout; see the decision doc


def write_to(tmp_path: Path, export: ToolExport) -> Path:
    """The export saved under its own file name in `tmp_path`."""
    path = Path(tmp_path) / export.filename.replace("/", "_").replace(":", "_")
    path.write_bytes(export.content)
    return path


def split_full_name(full: str) -> tuple[str, str]:
    """The rule for one-column names: the last word is the last name, the rest the first
    name; particles before the last word start the last name; one word is a first name."""
    words = full.split()
    if not words:
        return ("", "")
    if len(words) == 1:
        return (words[0], "")
    start = len(words) - 1
    while start > 1 and words[start - 1].casefold() in NAME_PARTICLES:
        start -= 1
    return (" ".join(words[:start]), " ".join(words[start:]))


# --------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------


class _Person(NamedTuple):
    first: str
    last: str
    lang: str


_POOL = [
    _Person("Jürgen", "Größ", "de"),
    _Person("Łukasz", "Węgrzyn", "pl"),
    _Person("Jan", "van der Berg", "nl"),
    _Person("Niccolò", "Mazzà", "it"),
    _Person("Björn", "Müller", "de"),
    _Person("Małgorzata", "Śliwińska", "pl"),
    _Person("IJsbrand", "de Vries", "nl"),
    _Person("Lucia", "De Santis", "it"),
    _Person("Hélène", "Lefèvre", "fr"),
    _Person("Änne", "Schäfer", "de"),
    _Person("Żaneta", "Kołodziej", "pl"),
    _Person("Marijke", "van Dijk", "nl"),
    _Person("Marco", "di Stefano", "it"),
    _Person("Käthe", "Weiß", "de"),
    _Person("Grzegorz", "Brzęczyszczykiewicz", "pl"),
    _Person("Femke", "IJzerman", "nl"),
    _Person("Chiara", "Della Rovere", "it"),
    _Person("Ludwig", "von Beethoven", "de"),
    _Person("Agnieszka", "Dąbrowska", "pl"),
    _Person("Joost", "van 't Hek", "nl"),
    _Person("Émile", "Bérard", "fr"),
    _Person("Sören", "Kühn", "de"),
    _Person("Paweł", "Ząbek", "pl"),
    _Person("Pieter", "de Jong", "nl"),
    _Person("Pietro", "Lombardi", "it"),
    _Person("Günther", "Strauß", "de"),
    _Person("Zofia", "Gęślińska", "pl"),
    _Person("Thijs", "van den Heuvel", "nl"),
    _Person("Giulia", "Esposito", "it"),
    _Person("Renée", "Böhm", "de"),
    _Person("Ignacy", "Łoś", "pl"),
    _Person("Sanne", "Bakker", "nl"),
    _Person("Lorenzo", "da Ponte", "it"),
    _Person("Anna Maria", "Köhler", "de"),
    _Person("Bożena", "Ćwiklińska", "pl"),
    _Person("Lotte", "ter Horst", "nl"),
    _Person("Federica", "Gallo", "it"),
    _Person("Hans-Peter", "Fuß", "de"),
    _Person("Jędrzej", "Śnieżko", "pl"),
    _Person("Anouk", "Meijer", "nl"),
    _Person("Chloé", "Lemaître", "fr"),
    _Person("Fritz", "zu Löwenstein", "de"),
    _Person("Elżbieta", "Mączyńska", "pl"),
    _Person("Eline", "Bruijn", "nl"),
    _Person("Sofia", "Conti", "it"),
    _Person("Dörte", "Jäger", "de"),
    _Person("Wojciech", "Pańczyk", "pl"),
    _Person("Bram", "Rijksen", "nl"),
    _Person("Matteo", "Bernardi", "it"),
    _Person("Otto", "von der Heydt", "de"),
    _Person("Michał", "Nowak", "pl"),
    _Person("Daan", "IJssel", "nl"),
    _Person("Francesca", "Russo", "it"),
    _Person("Maximilian", "Löffler", "de"),
    _Person("Jolanta", "Żółkiewska", "pl"),
    _Person("Ruud", "Gullit", "nl"),
    _Person("Elisa", "Mancini", "it"),
    _Person("Heinz", "Großmann", "de"),
    _Person("Przemysław", "Kaczmarczyk", "pl"),
    _Person("Noëlle", "Gérard", "fr"),
    _Person("Cher", "", "en"),
    _Person("Brigitte", "Nußbaum", "de"),
    _Person("Anna", "Wiśniewska", "pl"),
    _Person("Maarten", "van der Linden", "nl"),
    _Person("Andrea", "Ricci", "it"),
    _Person("Elke", "Süß", "de"),
    _Person("Oliver", "Smith", "en"),
    _Person("Matthias", "Hölzl", "de"),
    _Person("Teodor", "Ślęzak", "pl"),
]

_DOMAINS = {
    "de": "example.de",
    "pl": "example.pl",
    "nl": "example.nl",
    "it": "example.it",
    "fr": "example.fr",
    "en": "example.com",
}
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ł": "l", "ø": "o"})


def _ascii(text: str) -> str:
    text = text.casefold().translate(_ASCII)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return re.sub(r"[^a-z0-9-]", "", text)


def _cast(count: int, start: int, encoding: str = "utf-8") -> list[_Person]:
    """`count` people from the pool, beginning at `start`, that the encoding can hold."""
    people = [p for p in _POOL if _encodable(p.first + p.last, encoding)]
    return [people[(start + i) % len(people)] for i in range(count)]


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _addresses(people: list[_Person], prefix: str) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in people:
        local = ".".join(part for part in (_ascii(p.first), _ascii(p.last)) if part)
        seen[local] = seen.get(local, 0) + 1
        if seen[local] > 1:
            local = f"{local}{seen[local]}"
        out.append(f"{prefix}.{local}@{_DOMAINS[p.lang]}")
    return out


def _full(p: _Person) -> str:
    return f"{p.first} {p.last}".strip()


# --------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------


def _moment(i: int, salt: int = 0) -> datetime:
    """A naive wall-clock time between 2019 and 2024, 08:00-19:59 (never in a DST gap)."""
    n = i * 7 + salt * 13
    return datetime(2019, 1, 7, 8, 0, 0) + timedelta(
        days=(n * 37) % 1900,
        hours=(n * 5) % 12,
        minutes=(n * 17 + salt) % 60,
        seconds=(n * 29 + salt * 3) % 60,
    )


def _utc(naive: datetime) -> datetime:
    """A time the file writes in UTC."""
    return naive.replace(tzinfo=UTC)


def _local(naive: datetime) -> datetime:
    """A time the file writes without a zone: it is the account's (Europe/Berlin)."""
    return naive.replace(tzinfo=BERLIN).astimezone(UTC)


def _day(naive: datetime) -> datetime:
    """A date-only cell: midnight of that day in the account's zone."""
    return datetime.combine(naive.date(), datetime.min.time(), tzinfo=BERLIN).astimezone(UTC)


# --------------------------------------------------------------------------------------
# Writers: each reproduces the CSV writer the tool uses
# --------------------------------------------------------------------------------------


def _php_fputcsv(rows: Iterable[list[str]], delimiter: str = ",") -> str:
    """PHP's fputcsv() (Mailchimp, Mautic): a field is enclosed when it holds the
    delimiter, a quote, a backslash, a space, a tab, CR or LF; lines end with LF."""
    special = set(delimiter + '"\\ \t\r\n')
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            if any(ch in special for ch in cell):
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        lines.append(delimiter.join(cells) + "\n")
    return "".join(lines)


def _go_csv(rows: Iterable[list[str]]) -> str:
    """Go's encoding/csv Writer (listmonk): enclosed when the field holds a comma, a
    quote, CR or LF, or begins with white space; lines end with LF."""
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            if cell and (any(ch in cell for ch in ',"\r\n') or cell[0].isspace() or cell == "\\."):
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        lines.append(",".join(cells) + "\n")
    return "".join(lines)


def _minimal_csv(rows: Iterable[list[str]], delimiter: str, line_end: str) -> str:
    """Quote only where needed (Excel "CSV", and the assumed layouts)."""
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=delimiter, lineterminator=line_end, quoting=csv.QUOTE_MINIMAL
    )
    writer.writerows(rows)
    return out.getvalue()


# --------------------------------------------------------------------------------------
# Collecting rows and their expected outcome
# --------------------------------------------------------------------------------------


class _Sheet:
    def __init__(self, header: list[str], email_header: str) -> None:
        self.header = header
        self.email_header = email_header
        self.rows: list[list[str]] = []
        self.active: set[str] = set()
        self.signed_off: dict[str, str] = {}
        self.names: dict[str, tuple[str, str]] = {}
        self.signup: dict[str, datetime] = {}
        self.signoff: dict[str, datetime] = {}
        self.tags: dict[str, list[str]] = {}
        self.unreadable: list[Unreadable] = []
        self.invalid_lines: list[int] = []
        self.duplicate_lines: list[int] = []

    def _append(self, cells: dict[str, str]) -> int:
        unknown = set(cells) - set(self.header)
        if unknown:
            raise KeyError(f"not in the header: {sorted(unknown)}")
        self.rows.append([cells.get(h, "") for h in self.header])
        return len(self.rows) + 1  # the header is line 1

    def person(
        self,
        cells: dict[str, str],
        *,
        names: tuple[str, str],
        status: str | None = None,
        signup: datetime | None = None,
        signoff: datetime | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        email = cells[self.email_header].strip().lower()
        if email in self.names:
            raise ValueError(f"{email} twice; use duplicate()")
        self._append(cells)
        if status is None:
            self.active.add(email)
        else:
            assert status in REASONS, status
            self.signed_off[email] = status
        self.names[email] = names
        if signup is not None:
            self.signup[email] = signup
        if signoff is not None:
            self.signoff[email] = signoff
        tags = list(tags)
        if tags:
            self.tags[email] = tags

    def invalid(self, cells: dict[str, str]) -> None:
        self.invalid_lines.append(self._append(cells))

    def duplicate(self, cells: dict[str, str]) -> None:
        email = cells[self.email_header].strip().lower()
        if email not in self.names:
            raise ValueError(f"{email} is not earlier in the file")
        self.duplicate_lines.append(self._append(cells))

    def unreadable_cell(self, header: str) -> None:
        """Mark a cell of the last row as one the import cannot read."""
        value = self.rows[-1][self.header.index(header)]
        self.unreadable.append(Unreadable(len(self.rows) + 1, header, value))

    def expected(self) -> Expected:
        return Expected(
            rows=len(self.rows),
            invalid=len(self.invalid_lines),
            duplicates=len(self.duplicate_lines),
            active=set(self.active),
            signed_off=dict(self.signed_off),
            names=dict(self.names),
            signup=dict(self.signup),
            signoff=dict(self.signoff),
            tags=self._tags_spelt_as_first_written(),
            warnings=len(self.unreadable),
            unreadable=tuple(self.unreadable),
            invalid_lines=tuple(self.invalid_lines),
            duplicate_lines=tuple(self.duplicate_lines),
        )

    def _tags_spelt_as_first_written(self) -> dict[str, set[str]]:
        """Tags match whatever their case; each keeps the spelling the file first uses."""
        spelling: dict[str, str] = {}
        return {
            email: {spelling.setdefault(tag.casefold(), tag) for tag in tags}
            for email, tags in self.tags.items()
        }

    def table(self) -> list[list[str]]:
        return [self.header, *self.rows]


def _mixed_case(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local.title()}@{domain.upper()}"


# --------------------------------------------------------------------------------------
# Mailchimp: one file per status, written with PHP fputcsv, times in UTC
# --------------------------------------------------------------------------------------

_MC_EXPORT_ID = "5f3a9c2e1b"
_MC_HEAD = [
    "Email Address",
    "First Name",
    "Last Name",
    "Birthday",
    "Phone Number",
    "MEMBER_RATING",
    "OPTIN_TIME",
    "OPTIN_IP",
    "CONFIRM_TIME",
    "CONFIRM_IP",
    "LATITUDE",
    "LONGITUDE",
    "GMTOFF",
    "DSTOFF",
    "TIMEZONE",
    "CC",
    "REGION",
]
_MC_TAIL = ["LEID", "EUID", "NOTES", "TAGS"]
_MC_FORMAT = "%Y-%m-%d %H:%M:%S"
_MC_GEO = {
    "de": ("52.5200000", "13.4050000", "1", "2", "Europe/Berlin", "DE", "BE"),
    "pl": ("52.2297000", "21.0122000", "1", "2", "Europe/Warsaw", "PL", "MZ"),
    "nl": ("52.3676000", "4.9041000", "1", "2", "Europe/Amsterdam", "NL", "NH"),
    "it": ("45.4642000", "9.1900000", "1", "2", "Europe/Rome", "IT", "25"),
    "fr": ("48.8566000", "2.3522000", "1", "2", "Europe/Paris", "FR", "IDF"),
    "en": ("51.5072000", "-0.1276000", "0", "1", "Europe/London", "GB", "ENG"),
}
_MC_TAGS = [
    ("Kunde", "VIP"),
    ("Newsletter",),
    (),
    ("Messe 2023", "Kunde"),
    ("VIP", "vip"),  # Mailchimp keeps one spelling; a hand-edited file may not
    (),
    ("Webinar",),
]


def _mc_tags(tags: tuple[str, ...]) -> str:
    """Mailchimp's TAGS cell: every tag in double quotes, separated by commas."""
    return ",".join(f'"{t}"' for t in tags)


def _collapse(tags: Iterable[str]) -> list[str]:
    """A cell's tags in order, case-insensitive repeats dropped (the file-wide first
    spelling is chosen in _Sheet.expected)."""
    seen: dict[str, str] = {}
    for tag in tags:
        seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


def _mc_common(i: int, p: _Person, email: str, *, birthday: str) -> dict[str, str]:
    lat, lon, gmt, dst, zone, cc, region = _MC_GEO[p.lang]
    optin = _moment(i, 1)
    confirm = optin + timedelta(minutes=3 + i % 40, seconds=i % 50)
    cells = {
        "Email Address": email,
        "First Name": p.first,
        "Last Name": p.last,
        "Birthday": birthday,
        "Phone Number": f"+49 30 {5550100 + i}" if i % 3 == 0 else "",
        "MEMBER_RATING": str(1 + i % 5),
        "OPTIN_TIME": optin.strftime(_MC_FORMAT),
        "OPTIN_IP": f"203.0.113.{10 + i}",
        "CONFIRM_TIME": confirm.strftime(_MC_FORMAT),
        "CONFIRM_IP": f"203.0.113.{10 + i}",
        "LATITUDE": lat,
        "LONGITUDE": lon,
        "GMTOFF": gmt,
        "DSTOFF": dst,
        "TIMEZONE": zone,
        "CC": cc,
        "REGION": region,
        "LEID": str(400123456 + i * 7919),
        "EUID": uuid.uuid5(uuid.NAMESPACE_DNS, email).hex[:10],
    }
    if i % 6 == 0:
        # added by import or by hand: Mailchimp leaves the opt-in columns empty
        cells["OPTIN_TIME"] = cells["OPTIN_IP"] = cells["CONFIRM_IP"] = ""
    return cells


def _mc_signup(cells: dict[str, str]) -> datetime | None:
    for header in ("CONFIRM_TIME", "OPTIN_TIME"):
        if cells[header] and not cells[header].startswith("0000"):
            return _utc(datetime.strptime(cells[header], _MC_FORMAT))
    return None


def _mc_birthday(i: int) -> str:
    if i % 4:
        return ""
    month, day = 1 + (i * 5) % 12, 1 + (i * 11) % 28
    return f"{month:02d}/{day:02d}"


def _mailchimp(variant: str) -> ToolExport:
    extra = {
        "subscribed": ["LAST_CHANGED"],
        "unsubscribed": [
            "UNSUB_TIME",
            "UNSUB_CAMPAIGN_TITLE",
            "UNSUB_CAMPAIGN_ID",
            "UNSUB_REASON",
            "UNSUB_REASON_OTHER",
        ],
        "cleaned": ["CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID"],
    }[variant]
    sheet = _Sheet(_MC_HEAD + extra + _MC_TAIL, "Email Address")
    start = {"subscribed": 0, "unsubscribed": 17, "cleaned": 41}[variant]
    count = {"subscribed": 58, "unsubscribed": 52, "cleaned": 51}[variant]
    people = _cast(count, start)
    prefix = {"subscribed": "mcs", "unsubscribed": "mcu", "cleaned": "mcc"}[variant]
    addresses = _addresses(people, prefix)
    campaigns = [
        ("Newsletter März 2023", "8a1f0c2d3e"),
        ("Herbstaktion – 20 % Rabatt", "b2c3d4e5f6"),
        ("Welcome, new subscribers", "0f9e8d7c6b"),
    ]
    reasons = [
        ("I no longer want to receive these emails", ""),
        ("The emails are too frequent", ""),
        ("N/A (Unsubscribed by an admin)", ""),
        ("I never signed up for this mailing list", ""),
        ("Other (fill in reason below)", 'Zu viele Mails; bitte "nie wieder"'),
    ]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        cells = _mc_common(i, p, email, birthday=_mc_birthday(i))
        tags = _MC_TAGS[i % len(_MC_TAGS)]
        cells["TAGS"] = _mc_tags(tags)
        if i % 9 == 4:
            cells["NOTES"] = "Kontakt von der Messe, bitte persönlich ansprechen"
        status = None
        signoff = None
        base = datetime.strptime(cells["CONFIRM_TIME"], _MC_FORMAT)
        if variant == "subscribed":
            cells["LAST_CHANGED"] = (base + timedelta(days=30 + i)).strftime(_MC_FORMAT)
            if i == 20:
                # signed up but never confirmed in Mailchimp's records: opt-in time only
                cells["CONFIRM_TIME"] = ""
        elif variant == "unsubscribed":
            gone = base + timedelta(days=90 + i * 3, hours=i % 7)
            cells["UNSUB_TIME"] = gone.strftime(_MC_FORMAT)
            title, cid = campaigns[i % len(campaigns)]
            reason, other = reasons[i % len(reasons)]
            if i in (5, 23, 38):
                reason, other = "The emails are spam and should be reported", ""
                status = "complained"
            else:
                status = "unsubscribed"
            if reason.startswith("N/A"):
                title = cid = ""
            cells.update(
                UNSUB_CAMPAIGN_TITLE=title,
                UNSUB_CAMPAIGN_ID=cid,
                UNSUB_REASON=reason,
                UNSUB_REASON_OTHER=other,
            )
            signoff = _utc(gone)
        else:
            gone = base + timedelta(days=200 + i * 5, hours=i % 5)
            cells["CLEAN_TIME"] = gone.strftime(_MC_FORMAT)
            title, cid = campaigns[i % len(campaigns)] if i % 4 else ("", "")
            cells.update(CLEAN_CAMPAIGN_TITLE=title, CLEAN_CAMPAIGN_ID=cid)
            status = "bounced"
            signoff = _utc(gone)
        if i == 9:
            # MySQL's "zero date" for a confirmation that never happened: no date at all,
            # so the opt-in time is the sign-up
            cells["CONFIRM_TIME"] = "0000-00-00 00:00:00"
        sheet.person(
            cells,
            names=(p.first, p.last),
            status=status,
            signup=_mc_signup(cells),
            signoff=signoff,
            tags=_collapse(tags),
        )
        if i == 9:
            sheet.unreadable_cell("CONFIRM_TIME")
        if i == 14:
            junk = {
                "subscribed": "mcs.anna.mueller@@example.de",
                "unsubscribed": "mcu.anna.mueller@@example.de",
                "cleaned": "mcc.anna mueller@example.de",
            }[variant]
            bad_cells = _mc_common(i + 100, p, junk, birthday="")
            bad_cells.update({h: "" for h in extra})
            sheet.invalid(bad_cells)
        if i == 31:
            again = _mc_common(3, people[3], _mixed_case(addresses[3]), birthday="")
            again.update(_extra_cells(extra, sheet, 3))
            sheet.duplicate(again)
    return ToolExport(
        tool="mailchimp",
        variant=variant,
        filename=f"{variant}_members_export_{_MC_EXPORT_ID}.csv",
        content=_php_fputcsv(sheet.table()).encode("utf-8"),
        documented_zone="UTC",
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=",",
        email_header="Email Address",
        date_formats={
            "Birthday": "%m/%d",
            "OPTIN_TIME": _MC_FORMAT,
            "CONFIRM_TIME": _MC_FORMAT,
            **{h: _MC_FORMAT for h in extra if h.endswith("_TIME") or h == "LAST_CHANGED"},
        },
        signup_headers=("CONFIRM_TIME", "OPTIN_TIME"),
        signoff_headers=tuple(h for h in extra if h in ("UNSUB_TIME", "CLEAN_TIME")),
    )


def _extra_cells(extra: list[str], sheet: _Sheet, index: int) -> dict[str, str]:
    """The status columns of data row `index`, to repeat them on a duplicate line."""
    row = sheet.rows[index]
    return {h: row[sheet.header.index(h)] for h in extra}


def mailchimp_subscribed() -> ToolExport:
    return _mailchimp("subscribed")


def mailchimp_unsubscribed() -> ToolExport:
    return _mailchimp("unsubscribed")


def mailchimp_cleaned() -> ToolExport:
    return _mailchimp("cleaned")


# --------------------------------------------------------------------------------------
# listmonk: subscribers.csv from Go's csv.Writer; Go time.Time.String() times with offset
# --------------------------------------------------------------------------------------

_LM_FORMAT = "%Y-%m-%d %H:%M:%S.%f %z %Z"


def _go_time(moment: datetime, micro: int) -> str:
    """time.Time.String() of a timestamptz read by lib/pq in a UTC session."""
    fraction = f"{micro:06d}".rstrip("0")
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{fraction} +0000 UTC" if fraction else f"{stamp} +0000 UTC"


def _jsonb(value: dict) -> str:
    """PostgreSQL's text form of a jsonb object: keys by length, then bytes."""
    ordered = dict(sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode())))
    return json.dumps(ordered, ensure_ascii=False, separators=(", ", ": "))


def listmonk() -> ToolExport:
    header = ["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"]
    sheet = _Sheet(header, "email")
    people = _cast(56, 5)
    addresses = _addresses(people, "lm")
    cities = ["München", "Kraków", "Utrecht", "Bologna", "Köln", "Łódź", "Den Haag"]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        created = _moment(i, 2)
        micro = 1 + (i * 104729) % 999999
        attribs: dict = {}
        if i % 3 == 0:
            attribs["city"] = cities[i % len(cities)]
        if i % 4 == 1:
            attribs["plan"] = "pro" if i % 8 == 1 else "free"
        if i % 10 == 7:
            attribs["projects"] = [i, i + 1]
        status_word, status = "enabled", None
        if i % 7 == 3:
            status_word, status = "disabled", "unsubscribed"
        elif i % 11 == 5:
            status_word, status = "blocklisted", "blocked"
        full = _full(p)
        cells = {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, email)),
            "email": email,
            "name": full,
            "attributes": _jsonb(attribs),
            "status": status_word,
            "created_at": _go_time(created, micro),
            "updated_at": _go_time(created + timedelta(days=i + 1, minutes=i), 999999 - micro),
        }
        signup = _utc(created).replace(microsecond=micro)
        if i == 12:
            cells["created_at"] = _go_time(datetime(2023, 2, 28, 10, 15, 0), micro).replace(
                "2023-02-28", "2023-02-31"
            )
            signup = None
        sheet.person(cells, names=split_full_name(full), status=status, signup=signup)
        if i == 12:
            sheet.unreadable_cell("created_at")
        if i == 20:
            sheet.invalid(
                {
                    "uuid": "0f0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3",
                    "email": "lm.no-address",
                    "name": "Keine Adresse",
                    "attributes": "{}",
                    "status": "enabled",
                    "created_at": _go_time(_moment(99, 2), 424242),
                    "updated_at": _go_time(_moment(99, 2), 424243),
                }
            )
        if i == 40:
            row = dict(zip(header, sheet.rows[2], strict=True))
            row.update(
                uuid="5d6e7f80-9a1b-4c2d-8e3f-405162738495",
                email=_mixed_case(addresses[2]),
                name="L. De Santis",
            )
            sheet.duplicate(row)
    return ToolExport(
        tool="listmonk",
        variant="subscribers",
        filename="subscribers.csv",
        content=_go_csv(sheet.table()).encode("utf-8"),
        documented_zone="UTC",
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=",",
        email_header="email",
        date_formats={"created_at": _LM_FORMAT, "updated_at": _LM_FORMAT},
        signup_headers=("created_at",),
        full_name_header="name",
    )


# --------------------------------------------------------------------------------------
# Mautic: the contact export (no do-not-contact in it) and a "Do Not Contact" report
# --------------------------------------------------------------------------------------

_MT_FIELDS = [
    "id",
    "title",
    "firstname",
    "lastname",
    "company",
    "position",
    "email",
    "mobile",
    "phone",
    "points",
    "fax",
    "address1",
    "address2",
    "city",
    "state",
    "zipcode",
    "country",
    "preferred_locale",
    "timezone",
    "last_active",
    "attribution_date",
    "attribution",
    "website",
    "birthday",  # a custom date field of this instance
    "facebook",
    "foursquare",
    "instagram",
    "linkedin",
    "skype",
    "twitter",
]
_MT_FORMAT = "%Y-%m-%d %H:%M:%S"
_MT_PLACES = {
    "de": ("Berlin", "Berlin", "10115", "Germany", "de_DE", "Europe/Berlin"),
    "pl": ("Kraków", "Lesser Poland", "31-001", "Poland", "pl_PL", "Europe/Warsaw"),
    "nl": ("Utrecht", "Utrecht", "3511 AA", "Netherlands", "nl_NL", "Europe/Amsterdam"),
    "it": ("Bologna", "Emilia-Romagna", "40121", "Italy", "it_IT", "Europe/Rome"),
    "fr": ("Lyon", "Auvergne-Rhône-Alpes", "69001", "France", "fr_FR", "Europe/Paris"),
    "en": ("London", "England", "EC1A 1BB", "United Kingdom", "en_GB", "Europe/London"),
}


def _mautic_row(i: int, p: _Person, email: str) -> dict[str, str]:
    city, state, zipcode, country, locale, zone = _MT_PLACES[p.lang]
    active = _moment(i, 3) + timedelta(days=400)
    return {
        "id": str(1000 + i * 3),
        "title": ("Mr", "Mrs", "Miss", "")[i % 4],
        "firstname": p.first,
        "lastname": p.last,
        "company": ("Müller & Söhne GmbH", "Kowalski sp. z o.o.", "", "Studio Rossi")[i % 4],
        "position": ("Einkauf", "", "Marketing Manager", "")[i % 4],
        "email": email,
        "mobile": f"+4915112{340000 + i}" if i % 2 else "",
        "phone": "",
        "points": str((i * 13) % 90),
        "address1": f"Hauptstraße {i + 1}" if p.lang == "de" else "",
        "city": city,
        "state": state,
        "zipcode": zipcode,
        "country": country,
        "preferred_locale": locale,
        "timezone": zone,
        "last_active": active.strftime(_MT_FORMAT) if i % 5 else "",
        "attribution": "0",
        "website": "https://www.example.org" if i % 9 == 0 else "",
        "birthday": f"{1960 + i % 40}-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d}" if i % 3 else "",
    }


def mautic() -> ToolExport:
    """Contacts → Export (CSV), as the background export writes it (the default since
    Mautic 5): fputcsv into contacts_export.csv inside the downloaded zip."""
    sheet = _Sheet(list(_MT_FIELDS), "email")
    people = _cast(54, 11)
    addresses = _addresses(people, "mt")
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        sheet.person(_mautic_row(i, p, email), names=(p.first, p.last))
        if i == 16:
            sheet.rows[-1][sheet.header.index("birthday")] = "1985-02-31"
            sheet.unreadable_cell("birthday")
        if i == 25:
            # an identified contact that only has a phone number
            no_mail = _mautic_row(90, _Person("Ola", "Nordmann", "en"), "")
            no_mail["mobile"] = "+4917620000000"
            sheet.invalid(no_mail)
        if i == 44:
            again = _mautic_row(6, people[6], _mixed_case(addresses[6]))
            again["id"] = "2999"
            sheet.duplicate(again)
    return ToolExport(
        tool="mautic",
        variant="contacts",
        filename="contacts_export.csv",
        content=_php_fputcsv(sheet.table()).encode("utf-8"),
        documented_zone="UTC",
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=",",
        email_header="email",
        date_formats={
            "last_active": _MT_FORMAT,
            "attribution_date": _MT_FORMAT,
            "birthday": "%Y-%m-%d",
        },
    )


_MT_REPORT_FORMAT = "%B %d, %Y %I:%M %p"  # Mautic's 'F j, Y g:i a'


def _mautic_date(moment: datetime) -> str:
    """Mautic's default full date ('F j, Y g:i a'): "October 5, 2024 2:03 pm"."""
    hour = moment.hour % 12 or 12
    ampm = "am" if moment.hour < 12 else "pm"
    return f"{moment:%B} {moment.day}, {moment.year} {hour}:{moment:%M} {ampm}"


def mautic_dnc() -> ToolExport:
    """Reports → a report on the "Do Not Contact" source, exported as CSV."""
    header = [
        "Email",
        "First Name",
        "Last Name",
        "DNC Reason",
        "DNC Date",
        "DNC Channel",
        "DNC Comment",
    ]
    sheet = _Sheet(header, "Email")
    people = _cast(53, 29)
    addresses = _addresses(people, "mtd")
    bounces = [
        "550 5.1.1 <{}>: Recipient address rejected: User unknown",
        "552 5.2.2 Mailbox full",
        "554 5.7.1 Message rejected",
    ]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        when = _moment(i, 4)
        if i % 5 == 1:
            label, status, comment = "DNC Bounced", "bounced", bounces[i % 3].format(email)
        elif i % 5 == 3:
            label, status = "DNC Manually Unsubscribed", "blocked"
            comment = "Laut Telefonat keine Werbung mehr" if i % 2 else ""
        else:
            label, status, comment = "DNC Unsubscribed", "unsubscribed", "User unsubscribed."
        cells = {
            "Email": email,
            "First Name": p.first,
            "Last Name": p.last,
            "DNC Reason": label,
            "DNC Date": _mautic_date(when),
            "DNC Channel": "Email",
            "DNC Comment": comment,
        }
        signoff = _local(when.replace(second=0))
        if i == 21:
            cells["DNC Date"] = "February 30, 2024 9:15 am"
            signoff = None
        sheet.person(cells, names=(p.first, p.last), status=status, signoff=signoff)
        if i == 21:
            sheet.unreadable_cell("DNC Date")
        if i == 8:
            sheet.invalid(
                {
                    "Email": "",
                    "First Name": "Ola",
                    "Last Name": "Nordmann",
                    "DNC Reason": "DNC Manually Unsubscribed",
                    "DNC Date": _mautic_date(_moment(77, 4)),
                    "DNC Channel": "Text Message",
                    "DNC Comment": "",
                }
            )
        if i == 37:
            # the same contact put on the list twice (the API allows it)
            again = dict(zip(header, sheet.rows[4], strict=True))
            again["DNC Date"] = _mautic_date(_moment(4, 4) + timedelta(days=3))
            sheet.duplicate(again)
    return ToolExport(
        tool="mautic",
        variant="dnc_report",
        filename="2024-10-24_14:03:11_DNCexport.csv",
        content=_php_fputcsv(sheet.table()).encode("utf-8"),
        documented_zone=None,
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=",",
        email_header="Email",
        date_formats={"DNC Date": _MT_REPORT_FORMAT},
        signoff_headers=("DNC Date",),
    )


# --------------------------------------------------------------------------------------
# CleverReach (assumed layout): receiver export with the API's field names
# --------------------------------------------------------------------------------------

_CR_FORMAT = "%Y-%m-%d %H:%M:%S"


def cleverreach() -> ToolExport:
    header = [
        "email",
        "activated",
        "registered",
        "deactivated",
        "bounced",
        "source",
        "salutation",
        "firstname",
        "lastname",
        "tags",
    ]
    sheet = _Sheet(header, "email")
    people = _cast(55, 23)
    addresses = _addresses(people, "cr")
    sources = ["Anmeldeformular Website", "Import Messe 2022", "Shop-Checkout", "API"]
    tag_sets = [("Kunde",), ("Newsletter", "Kunde"), (), ("B2B",), ("Kunde", "kunde")]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        registered = _moment(i, 5)
        activated = registered + timedelta(minutes=4 + i % 50)
        cells = {
            "email": email,
            "activated": activated.strftime(_CR_FORMAT),
            "registered": registered.strftime(_CR_FORMAT),
            "deactivated": "",
            "bounced": "0",
            "source": sources[i % len(sources)],
            "salutation": "Frau" if i % 2 else "Herr",
            "firstname": p.first,
            "lastname": p.last,
            "tags": ",".join(tag_sets[i % len(tag_sets)]),
        }
        status, signoff = None, None
        signup = _local(activated)
        if i % 8 == 2:  # double opt-in mail sent, never confirmed
            cells["activated"] = ""
            status, signup = "unconfirmed", _local(registered)
        elif i % 8 == 5:  # unsubscribed
            gone = activated + timedelta(days=50 + i)
            cells["deactivated"] = gone.strftime(_CR_FORMAT)
            status, signoff = "unsubscribed", _local(gone)
        elif i % 12 == 7:  # hard bounce: deactivated by CleverReach
            gone = activated + timedelta(days=120 + i)
            cells["deactivated"] = gone.strftime(_CR_FORMAT)
            cells["bounced"] = "3"
            status, signoff = "bounced", _local(gone)
        elif i % 10 == 9:
            cells["bounced"] = "1"  # one soft bounce: still active
        if i == 18:
            assert status == "unconfirmed"
            cells["registered"] = "2023-02-31 09:00:00"
            signup = None
        sheet.person(
            cells,
            names=(p.first, p.last),
            status=status,
            signup=signup,
            signoff=signoff,
            tags=_collapse(tag_sets[i % len(tag_sets)]),
        )
        if i == 18:
            sheet.unreadable_cell("registered")
        if i == 30:
            bad = dict(cells, email="cr.anna.mueller@example", firstname="Anna")
            sheet.invalid(bad)
        if i == 47:
            again = dict(zip(header, sheet.rows[0], strict=True))
            again["email"] = _mixed_case(addresses[0])
            sheet.duplicate(again)
    return ToolExport(
        tool="cleverreach",
        variant="receivers",
        filename="Newsletter_Empfaenger_export.csv",
        content=_minimal_csv(sheet.table(), ";", "\n").encode("utf-8"),
        documented_zone=None,
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=";",
        email_header="email",
        date_formats={h: _CR_FORMAT for h in ("activated", "registered", "deactivated")},
        signup_headers=("activated", "registered"),
        signoff_headers=("deactivated",),
        assumed_format=True,
    )


# --------------------------------------------------------------------------------------
# Brevo: attribute names are documented, the file layout is assumed
# --------------------------------------------------------------------------------------

_BV_FORMAT = "%Y-%m-%d %H:%M:%S"


def brevo() -> ToolExport:
    header = [
        "EMAIL",
        "FIRSTNAME",
        "LASTNAME",
        "SMS",
        "EMAIL_BLACKLISTED",
        "SMS_BLACKLISTED",
        "ADDED_TIME",
        "MODIFIED_TIME",
    ]
    sheet = _Sheet(header, "EMAIL")
    people = _cast(57, 37)
    addresses = _addresses(people, "bv")
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        added = _moment(i, 6)
        blocked = i % 6 == 2
        cells = {
            "EMAIL": email,
            "FIRSTNAME": p.first,
            "LASTNAME": p.last,
            "SMS": f"4917{61234500 + i}" if i % 3 == 0 else "",
            "EMAIL_BLACKLISTED": "Yes" if blocked else "No",
            "SMS_BLACKLISTED": "Yes" if i % 13 == 4 else "No",
            "ADDED_TIME": added.strftime(_BV_FORMAT),
            "MODIFIED_TIME": (added + timedelta(days=20 + i)).strftime(_BV_FORMAT),
        }
        signup = _local(added)
        if i == 33:
            cells["ADDED_TIME"] = "2022-02-31 11:20:00"
            signup = None
        sheet.person(
            cells,
            names=(p.first, p.last),
            status="blocked" if blocked else None,
            signup=signup,
        )
        if i == 33:
            sheet.unreadable_cell("ADDED_TIME")
        if i == 3:
            sheet.invalid(dict(cells, EMAIL="bv.anna.mueller@@example.de", FIRSTNAME="Anna"))
        if i == 50:
            again = dict(zip(header, sheet.rows[10], strict=True))
            again["EMAIL"] = _mixed_case(again["EMAIL"])
            sheet.duplicate(again)
    return ToolExport(
        tool="brevo",
        variant="contacts",
        filename="contacts_export_brevo.csv",
        content=_minimal_csv(sheet.table(), ";", "\n").encode("utf-8"),
        documented_zone=None,
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=";",
        email_header="EMAIL",
        date_formats={"ADDED_TIME": _BV_FORMAT, "MODIFIED_TIME": _BV_FORMAT},
        signup_headers=("ADDED_TIME",),
        assumed_format=True,
    )


# --------------------------------------------------------------------------------------
# SALESmanago (assumed layout): Polish UI, one name column, Opt-out TAK/NIE
# --------------------------------------------------------------------------------------

_SM_FORMAT = "%Y-%m-%d %H:%M"


def salesmanago() -> ToolExport:
    header = [
        "Adres e-mail",
        "Imię i nazwisko",
        "Telefon",
        "Miasto",
        "Data utworzenia",
        "Opt-out",
        "Tagi",
    ]
    sheet = _Sheet(header, "Adres e-mail")
    people = _cast(56, 47)
    addresses = _addresses(people, "sm")
    cities = ["Warszawa", "Kraków", "Gdańsk", "Łódź", "Poznań", "Wrocław", "Zielona Góra"]
    tag_sets = [("KLIENT",), ("NEWSLETTER", "KLIENT"), (), ("WEBINAR_2023",), ("VIP",)]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        created = _moment(i, 7).replace(second=0)
        out = i % 5 == 2
        full = _full(p)
        cells = {
            "Adres e-mail": email,
            "Imię i nazwisko": full,
            "Telefon": f"+48 600 {100200 + i}" if i % 2 else "",
            "Miasto": cities[i % len(cities)],
            "Data utworzenia": created.strftime(_SM_FORMAT),
            "Opt-out": "TAK" if out else "NIE",
            "Tagi": ",".join(tag_sets[i % len(tag_sets)]),
        }
        signup = _local(created)
        if i == 27:
            cells["Data utworzenia"] = "2023-02-29 12:30"
            signup = None
        sheet.person(
            cells,
            names=split_full_name(full),
            status="unsubscribed" if out else None,
            signup=signup,
            tags=tag_sets[i % len(tag_sets)],
        )
        if i == 27:
            sheet.unreadable_cell("Data utworzenia")
        if i == 12:
            sheet.invalid(dict(cells, **{"Adres e-mail": "", "Imię i nazwisko": "Jan Kowalski"}))
        if i == 44:
            again = dict(zip(header, sheet.rows[1], strict=True))
            again["Adres e-mail"] = _mixed_case(again["Adres e-mail"])
            sheet.duplicate(again)
    return ToolExport(
        tool="salesmanago",
        variant="contacts",
        filename="eksport_kontaktow.csv",
        content=_minimal_csv(sheet.table(), ";", "\n").encode("utf-8"),
        documented_zone=None,
        expected=sheet.expected(),
        encoding="utf-8",
        delimiter=";",
        email_header="Adres e-mail",
        date_formats={"Data utworzenia": _SM_FORMAT},
        signup_headers=("Data utworzenia",),
        full_name_header="Imię i nazwisko",
        assumed_format=True,
    )


# --------------------------------------------------------------------------------------
# Excel lists of portal users, saved as CSV in their own language
# --------------------------------------------------------------------------------------


class _ExcelLocale(NamedTuple):
    lang: str
    prefix: str
    filename: str
    encoding: str  # what `content` is written in
    decode_as: str  # codec a reader decodes it with
    delimiter: str
    date_format: str  # strptime pattern
    headers: dict[str, str]  # role -> header
    reasons: dict[str, str]  # reason code -> word users write
    tags: list[tuple[str, ...]]
    tag_sep: str
    start: int


_EXCEL = {
    "de": _ExcelLocale(
        "de",
        "xde",
        "Newsletter-Empfänger.csv",
        "cp1252",
        "cp1252",
        ";",
        "%d.%m.%Y",
        {
            "email": "E-Mail",
            "first": "Vorname",
            "last": "Nachname",
            "signup": "Angemeldet am",
            "signoff": "Abmeldedatum",
            "reason": "Abmeldegrund",
            "tags": "Tags",
        },
        {
            "unsubscribed": "abgemeldet",
            "bounced": "unzustellbar",
            "complained": "Beschwerde",
            "blocked": "gesperrt",
        },
        [("Kunde",), ("Kunde", "VIP"), (), ("Messe",), ("Kunde", "kunde")],
        ", ",
        0,
    ),
    "it": _ExcelLocale(
        "it",
        "xit",
        "Iscritti newsletter.csv",
        "cp1252",
        "cp1252",
        ";",
        "%d/%m/%Y",
        {
            "email": "Email",
            "first": "Nome",
            "last": "Cognome",
            "signup": "Data iscrizione",
            "signoff": "Data disiscrizione",
            "reason": "Motivo",
            "tags": "Etichette",
        },
        {
            "unsubscribed": "disiscritto",
            "bounced": "rimbalzato",
            "complained": "reclamo",
            "blocked": "bloccato",
        },
        [("Cliente",), (), ("Cliente", "Fiera 2023"), ("VIP", "vip")],
        ", ",
        3,
    ),
    "nl": _ExcelLocale(
        "nl",
        "xnl",
        "Nieuwsbrief abonnees.csv",
        "cp1252",
        "cp1252",
        ";",
        "%d-%m-%Y",
        {
            "email": "E-mailadres",
            "first": "Voornaam",
            "particle": "Tussenvoegsel",
            "last": "Achternaam",
            "signup": "Aangemeld op",
            "signoff": "Afgemeld op",
            "reason": "Reden",
            "tags": "Tags",
        },
        {
            "unsubscribed": "afgemeld",
            "bounced": "onbestelbaar",
            "complained": "klacht",
            "blocked": "geblokkeerd",
        },
        [("Klant",), ("Klant", "Beurs"), (), ("klant", "Klant")],
        ", ",
        2,
    ),
    "pl": _ExcelLocale(
        "pl",
        "xpl",
        "Subskrybenci.csv",
        "cp1250",
        "cp1250",
        ";",
        "%d.%m.%Y",
        {
            "email": "E-mail",
            "first": "Imię",
            "last": "Nazwisko",
            "signup": "Data zapisu",
            "signoff": "Data wypisu",
            "reason": "Powód",
            "tags": "Tagi",
        },
        {
            "unsubscribed": "wypisany",
            "bounced": "odbicie",
            "complained": "skarga",
            "blocked": "zablokowany",
        },
        [("Klient",), (), ("Klient", "Targi"), ("VIP", "Vip")],
        ", ",
        1,
    ),
    "en": _ExcelLocale(
        "en",
        "xen",
        "Newsletter subscribers.csv",
        "utf-8-sig",
        "utf-8-sig",
        ",",
        "%d/%m/%Y",
        {
            "email": "Email",
            "first": "First name",
            "last": "Last name",
            "signup": "Signed up",
            "signoff": "Unsubscribed on",
            "reason": "Reason",
            "tags": "Tags",
        },
        {
            "unsubscribed": "unsubscribed",
            "bounced": "bounced",
            "complained": "spam complaint",
            "blocked": "blocked",
        },
        [("Customer",), ("Customer", "VIP"), (), ("vip", "VIP")],
        ", ",
        4,
    ),
}

_NL_PARTICLES = ("van der ", "van den ", "van 't ", "van ", "de ", "ter ", "den ")


def _excel_date(moment: datetime, fmt: str) -> str:
    if fmt == "%d-%m-%Y":  # Dutch Excel: d-M-yyyy, no leading zeros
        return f"{moment.day}-{moment.month}-{moment.year}"
    return moment.strftime(fmt)


def _excel(lang: str) -> ToolExport:
    loc = _EXCEL[lang]
    h = loc.headers
    sheet = _Sheet(list(h.values()), h["email"])
    people = _cast(55, loc.start * 9, loc.encoding)
    if lang == "pl":  # a Polish user's list holds mostly Polish names
        polish = [p for p in _POOL if p.lang == "pl"]
        people = [polish[i % len(polish)] if i % 3 else p for i, p in enumerate(people)]
    addresses = _addresses(people, loc.prefix)
    cycle = [None, None, "unsubscribed", None, "bounced", None, "complained", "blocked", None]
    for i, (p, email) in enumerate(zip(people, addresses, strict=True)):
        joined = _moment(i, 8 + loc.start)
        reason = cycle[i % len(cycle)]
        cells = {
            h["email"]: email if i % 10 != 6 else f"  {email} ",
            h["first"]: p.first,
            h["last"]: p.last,
            h["signup"]: _excel_date(joined, loc.date_format),
        }
        names = (p.first, p.last)
        if "particle" in h:
            for particle in _NL_PARTICLES:
                if p.last.startswith(particle):
                    cells[h["particle"]] = particle.strip()
                    cells[h["last"]] = p.last[len(particle) :]
                    break
        signoff = None
        if reason is not None:
            gone = joined + timedelta(days=60 + i * 2)
            if i % 4 != 3:  # some users only note why, not when
                cells[h["signoff"]] = _excel_date(gone, loc.date_format)
                signoff = _day(gone)
            if reason != "unsubscribed" or i % 2:
                cells[h["reason"]] = loc.reasons[reason]
        tags = loc.tags[i % len(loc.tags)]
        cells[h["tags"]] = loc.tag_sep.join(tags)
        signup = _day(joined)
        if i == 13:
            cells[h["signup"]] = {
                "%d.%m.%Y": "31.02.2023",
                "%d/%m/%Y": "31/02/2023",
                "%d-%m-%Y": "31-2-2023",
            }[loc.date_format]
            signup = None
        sheet.person(
            cells,
            names=names,
            status=reason,
            signup=signup,
            signoff=signoff,
            tags=_collapse(tags),
        )
        if i == 13:
            sheet.unreadable_cell(h["signup"])
        if i == 22:
            sheet.invalid(
                {
                    h["email"]: f"{loc.prefix}.anna.mueller@@example.de",
                    h["first"]: "Anna",
                    h["last"]: "Müller" if loc.encoding != "cp1250" else "Mueller",
                    h["signup"]: _excel_date(_moment(5, 8), loc.date_format),
                }
            )
        if i == 39:
            again = dict(zip(sheet.header, sheet.rows[7], strict=True))
            again[h["email"]] = _mixed_case(addresses[7])
            again[h["first"]] = again[h["first"]].upper()
            sheet.duplicate(again)
    text = _minimal_csv(sheet.table(), loc.delimiter, "\r\n")
    return ToolExport(
        tool="excel",
        variant=lang,
        filename=loc.filename,
        content=text.encode(loc.encoding),
        documented_zone=None,
        expected=sheet.expected(),
        encoding=loc.decode_as,
        delimiter=loc.delimiter,
        email_header=h["email"],
        date_formats={h["signup"]: loc.date_format, h["signoff"]: loc.date_format},
        signup_headers=(h["signup"],),
        signoff_headers=(h["signoff"],),
    )


def excel_de() -> ToolExport:
    return _excel("de")


def excel_it() -> ToolExport:
    return _excel("it")


def excel_nl() -> ToolExport:
    return _excel("nl")


def excel_pl() -> ToolExport:
    return _excel("pl")


def excel_en() -> ToolExport:
    return _excel("en")


ALL_EXPORTS: list[Callable[[], ToolExport]] = [
    mailchimp_subscribed,
    mailchimp_unsubscribed,
    mailchimp_cleaned,
    cleverreach,
    brevo,
    listmonk,
    mautic,
    mautic_dnc,
    salesmanago,
    excel_de,
    excel_it,
    excel_nl,
    excel_pl,
    excel_en,
]


def parse_date_cell(value: str, pattern: str) -> datetime:
    """A date cell of these files read with its strptime pattern (ValueError if it cannot
    be). Mautic's lower-case am/pm and Dutch d-M-yyyy read like the rest."""
    return datetime.strptime(value.strip(), pattern)


__all__ = [
    "ACCOUNT_ZONE",
    "ALL_EXPORTS",
    "NAME_PARTICLES",
    "REASONS",
    "Expected",
    "ToolExport",
    "Unreadable",
    "brevo",
    "cleverreach",
    "excel_de",
    "excel_en",
    "excel_it",
    "excel_nl",
    "excel_pl",
    "listmonk",
    "mailchimp_cleaned",
    "mailchimp_subscribed",
    "mailchimp_unsubscribed",
    "mautic",
    "mautic_dnc",
    "parse_date_cell",
    "salesmanago",
    "split_full_name",
    "write_to",
]
