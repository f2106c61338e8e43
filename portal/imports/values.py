"""Turning cell text into values: email addresses, dates, yes/no, opt-out reasons.

Lists come from Excel in five languages, so "12.03.2024", "12/03/2024", "ja",
"sì", "tak" and "nee" all have to mean what their writers meant."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from portal.contacts.models import OptoutReason
from portal.imports.reasons import message

OPTOUT_REASONS = tuple(reason.value for reason in OptoutReason)


def word_key(word: str) -> str:
    """Case, accents, spaces and punctuation do not matter: "Opt-Out", "opt out" and
    "OPT_OUT" are one word, as are "sì" and "si"."""
    text = unicodedata.normalize("NFKD", word.strip().casefold().replace("ł", "l"))
    return "".join(c for c in text if c.isalnum() and not unicodedata.combining(c))


def _keys(*words: str) -> frozenset[str]:
    return frozenset(word_key(w) for w in words)


YES = _keys("1", "true", "yes", "y", "x", "ja", "j", "wahr", "si", "sì", "vero", "waar",
            "tak", "t", "oui")  # fmt: skip
NO = _keys("0", "false", "no", "n", "nein", "falsch", "falso", "nee", "onwaar", "nie", "non",
           "f")  # fmt: skip

# What a word in a status, active, blocked, opt-out or reason column means for the
# person's consent (the check step lets the user say what an unknown word means).
ACTIVE_MEANING = "active"  # may be mailed
OFF = "off"  # signed off, no reason given
NO_STATEMENT = "none"  # says nothing about consent
MEANINGS = (ACTIVE_MEANING, OFF, "unsubscribed", "bounced", "complained", "blocked",
            "unconfirmed", "manual", NO_STATEMENT)  # fmt: skip

STATUS_WORDS: dict[str, frozenset[str]] = {
    ACTIVE_MEANING: _keys(
        "active",
        "aktiv",
        "attivo",
        "attiva",
        "actief",
        "aktywny",
        "aktywna",
        "subscribed",
        "angemeldet",
        "iscritto",
        "iscritta",
        "aangemeld",
        "ingeschreven",
        "zapisany",
        "zapisana",
        "enabled",
        "confirmed",
        "bestätigt",
        "confermato",
        "bevestigd",
        "potwierdzony",
        "opted in",
        "opt-in",
        "single opt-in",
        "double opt-in",
        "valid",
    ),
    OFF: _keys(
        "inactive",
        "inaktiv",
        "nicht aktiv",
        "non attivo",
        "inattivo",
        "inactief",
        "niet actief",
        "nieaktywny",
        "archived",
        "archiviert",
        "archiviato",
        "gearchiveerd",
        "zarchiwizowany",
        "deactivated",
        "deaktiviert",
        "disattivato",
        "gedeactiveerd",
        "dezaktywowany",
        "deleted",
        "gelöscht",
        "eliminato",
        "verwijderd",
        "usunięty",
    ),
    "unsubscribed": _keys(
        "unsubscribed",
        "unsubscribe",
        "abgemeldet",
        "abmeldung",
        "ausgetragen",
        "disiscritto",
        "disiscritta",
        "disiscrizione",
        "afgemeld",
        "afmelding",
        "uitgeschreven",
        "wypisany",
        "wypisana",
        "wypis",
        "opted out",
        "opt-out",
        "disabled",
        "unsub",
    ),
    "bounced": _keys(
        "bounced",
        "bounce",
        "hardbounce",
        "hard bounce",
        "cleaned",
        "undeliverable",
        "unzustellbar",
        "rimbalzato",
        "rimbalzo",
        "onbestelbaar",
        "odbicie",
        "odbity",
        "odrzucony",
    ),
    "complained": _keys(
        "complained",
        "complaint",
        "spam",
        "spam complaint",
        "marked as spam",
        "abuse",
        "beschwerde",
        "reclamo",
        "klacht",
        "skarga",
    ),
    "blocked": _keys(
        "blocked",
        "blocklisted",
        "blacklisted",
        "blocklist",
        "blacklist",
        "gesperrt",
        "blockiert",
        "bloccato",
        "geblokkeerd",
        "zablokowany",
        "do not contact",
        "donotcontact",
        "dnc",
        "suppressed",
    ),
    "unconfirmed": _keys(
        "pending",
        "unconfirmed",
        "not confirmed",
        "transactional",
        "unbestätigt",
        "nicht bestätigt",
        "ausstehend",
        "in attesa",
        "non confermato",
        "onbevestigd",
        "in afwachting",
        "niepotwierdzony",
        "oczekujący",
        "doi pending",
    ),
    "manual": _keys("manual", "manuell", "manuale", "handmatig", "ręcznie", "by admin", "admin"),
    NO_STATEMENT: _keys(
        "none",
        "n/a",
        "na",
        "-",
        "keine",
        "kein",
        "nessuno",
        "nessuna",
        "geen",
        "brak",
    ),
}
_STATUS_LOOKUP = {word: meaning for meaning, words in STATUS_WORDS.items() for word in words}


def word_meaning(target: str, raw: str) -> str | None:
    """The consent meaning of a cell of a word column (mapping.WORD_TARGETS): one of
    MEANINGS, NO_STATEMENT for an empty cell, None for a word the portal does not know.

    status/active: yes = may be mailed, no = signed off; blocked and opt-out are the
    other way round (yes = blocked / opted out, no = says nothing); a reason column names
    the reason (a word there that is no reason says nothing)."""
    key = word_key(raw)
    if not key and not raw.strip(" -"):
        return NO_STATEMENT
    if key in YES:
        return {"blocked": "blocked", "opted_out": "unsubscribed", "optout_reason": None}.get(
            target, ACTIVE_MEANING
        )
    if key in NO:
        return OFF if target in ("status", "active") else NO_STATEMENT
    meaning = _STATUS_LOOKUP.get(key) if key else None
    if meaning == ACTIVE_MEANING and target in ("blocked", "opted_out", "optout_reason"):
        return NO_STATEMENT
    return meaning


def is_yes_no(raw: str) -> bool:
    key = word_key(raw)
    return key in YES or key in NO


_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_WITH_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$")
_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")


class ValueProblem(ValueError):
    """A cell that cannot be read: a reason code (see reasons.py) and its parameters."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def __str__(self) -> str:

        return message(self.code, self.params)


# A plain ASCII dot-atom local part, which email-validator accepts unchanged. For such
# addresses only the domain needs the library's full (IDN) check, and lists repeat their
# domains, so that check is cached per domain. Anything else takes the library's full path.
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=65536)
def _validated_domain(domain: str) -> str:
    return validate_email(f"a@{domain}", check_deliverability=False).domain


def _validated(email: str) -> str:
    local, at, domain = email.rpartition("@")
    if at and len(local) <= 64 and len(email) <= 254 and _ASCII_LOCAL.fullmatch(local):
        return f"{local}@{_validated_domain(domain)}".lower()
    return _validated_full(email)


@lru_cache(maxsize=65536)
def _validated_full(email: str) -> str:
    result = validate_email(email, check_deliverability=False)
    return result.normalized.lower()


def normalize_email(raw: str) -> str:
    """Syntax-checked, IDN-normalized, lower-cased address (cached per value)."""
    email = raw.strip().strip("<>").strip()
    if not email:
        raise ValueProblem("email_missing")
    try:
        return _validated(email)
    except EmailNotValidError as exc:
        raise ValueProblem("email_invalid", value=raw.strip()[:80]) from exc


# How the dates of a column are read (the check step shows it and lets the user change
# it): "" day first or ISO (with or without a zone), "mdy" month first or ISO, "unix"
# seconds (or milliseconds) since 1970.
DATE_FORMATS = ("", "mdy", "unix")


def parse_datetime(raw: str, tz: ZoneInfo | None = None, fmt: str = "") -> datetime | None:
    """A date or date and time; naive values are in `tz`. Returns an aware UTC datetime,
    None for an empty cell (or CleverReach's "0" for "never").

    Without a format (`fmt` ""), ISO (what the portal writes) or day first, as Europe
    writes it. A value with its own zone (ISO with Z or an offset) is read as such in
    every format."""
    text = raw.strip()
    if not text or text == "0":
        return None
    tz = tz or UTC
    try:
        if go := _GO_TIME.match(text):  # Go's time.String(): "… 09:12:44.123 +0000 UTC"
            text = f"{go.group(1)}{go.group(2)}"
        if _WITH_OFFSET.search(text):
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value.astimezone(UTC)
        if fmt == "unix" or (not fmt and _UNIX.fullmatch(text)):
            return _from_unix(text)
        parts = _date_parts(text, fmt)
        if parts is None:
            raise ValueError(text)
        y, mo, d, hh, mm, ss, half = parts
        hour = int(hh or 0)
        if half:
            hour = hour % 12 + (12 if half.casefold() == "pm" else 0)
        value = datetime.combine(
            date(_full_year(y), int(mo), int(d)),
            time(hour, int(mm or 0), int(ss or 0)),
            tzinfo=tz,
        )
    except (ValueError, OverflowError) as exc:
        raise ValueProblem("bad_date", value=text[:40]) from exc
    return value.astimezone(UTC)


_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp][Mm])?)?\s*$"
_ISO_PARTS = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_DMY_PARTS = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})" + _TIME)
_MDY_PARTS = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})" + _TIME)
_UNIX = re.compile(r"\d{9,10}|\d{12,13}")


_GO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d{4})(?: [A-Z]{1,5})?$")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan", "januar", "jänner", "gennaio", "januari", "stycznia"),
            ("february", "feb", "februar", "febbraio", "februari", "lutego"),
            ("march", "mar", "märz", "marzo", "maart", "marca"),
            ("april", "apr", "aprile", "kwietnia"),
            ("may", "mai", "maggio", "mei", "maja"),
            ("june", "jun", "juni", "giugno", "czerwca"),
            ("july", "jul", "juli", "luglio", "lipca"),
            ("august", "aug", "agosto", "augustus", "sierpnia"),
            ("september", "sep", "sept", "settembre", "września"),
            ("october", "oct", "oktober", "okt", "ottobre", "października"),
            ("november", "nov", "novembre", "listopada"),
            ("december", "dec", "dezember", "dez", "dicembre", "grudnia"),
        ),
        start=1,
    )
    for name in names
}
# "October 5, 2024 2:03 pm" (Mautic's reports) and "5. Oktober 2024 14:03"
_NAMED_MONTH_FIRST = re.compile(r"^([^\W\d_]+)\.? (\d{1,2}),? (\d{4})" + _TIME)
_NAMED_DAY_FIRST = re.compile(r"^(\d{1,2})\.? ([^\W\d_]+)\.? (\d{4})" + _TIME)


def _date_parts(text: str, fmt: str) -> tuple | None:
    if m := _ISO_PARTS.match(text):
        y, mo, d, *rest = m.groups()
        return (y, mo, d, *rest)
    if m := _NAMED_MONTH_FIRST.match(text):
        name, d, y, *rest = m.groups()
        if name.casefold() in _MONTHS:
            return (y, _MONTHS[name.casefold()], d, *rest)
    if m := _NAMED_DAY_FIRST.match(text):
        d, name, y, *rest = m.groups()
        if name.casefold() in _MONTHS:
            return (y, _MONTHS[name.casefold()], d, *rest)
    if fmt == "" and (m := _DMY_PARTS.match(text)):
        d, mo, y, *rest = m.groups()
        return (y, mo, d, *rest)
    if fmt == "mdy" and (m := _MDY_PARTS.match(text)):
        mo, d, y, *rest = m.groups()
        return (y, mo, d, *rest)
    return None


def _full_year(y: str) -> int:
    """Excel's short years: 00–69 are this century, 70–99 the last."""
    year = int(y)
    if len(y) == 2:
        return year + (2000 if year < 70 else 1900)
    return year


def _from_unix(text: str) -> datetime:
    seconds = int(text)
    if len(text) > 11:  # milliseconds
        seconds //= 1000
    return datetime.fromtimestamp(seconds, UTC)


def detect_date_format(cells: list[str]) -> str:
    """The format (DATE_FORMATS) that reads the most of these cells; ties go to the
    first, day first or ISO, as Europe writes dates."""
    filled = [c.strip() for c in cells if c.strip() and c.strip() != "0"]
    scores = {fmt: sum(1 for cell in filled if _readable(cell, fmt)) for fmt in DATE_FORMATS}
    return max(DATE_FORMATS, key=lambda fmt: scores[fmt])


def _readable(cell: str, fmt: str) -> bool:
    try:
        parse_datetime(cell, UTC, fmt)
    except ValueProblem:
        return False
    return True
