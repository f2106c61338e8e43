"""Turning cell text into values: email addresses, dates, yes/no, opt-out reasons.

Lists come from Excel in five languages, so "12.03.2024", "12/03/2024", "ja",
"sì", "tak" and "nee" all have to mean what their writers meant."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

OPTOUT_REASONS = ("unsubscribed", "bounced", "complained", "manual")

TRUE_WORDS = {
    "1",
    "true",
    "yes",
    "y",
    "x",
    "active",
    "ja",
    "aktiv",
    "si",
    "sì",
    "vero",
    "attivo",
    "waar",
    "actief",
    "tak",
    "aktywny",
    "subscribed",
    "angemeldet",
    "iscritto",
    "aangemeld",
    "zapisany",
}
FALSE_WORDS = {
    "0",
    "false",
    "no",
    "n",
    "inactive",
    "nein",
    "inaktiv",
    "falso",
    "non attivo",
    "nee",
    "onwaar",
    "inactief",
    "nie",
    "nieaktywny",
    "unsubscribed",
    "abgemeldet",
    "disiscritto",
    "afgemeld",
    "wypisany",
}

REASON_WORDS = {
    "unsubscribed": {
        "unsubscribed",
        "unsubscribe",
        "abgemeldet",
        "abmeldung",
        "disiscritto",
        "disiscrizione",
        "afgemeld",
        "afmelding",
        "wypisany",
        "wypis",
    },
    "bounced": {
        "bounced",
        "bounce",
        "hardbounce",
        "unzustellbar",
        "rimbalzato",
        "rimbalzo",
        "onbestelbaar",
        "odbicie",
        "odrzucony",
    },
    "complained": {"complained", "complaint", "spam", "beschwerde", "reclamo", "klacht", "skarga"},
    "manual": {"manual", "manuell", "manuale", "handmatig", "recznie", "ręcznie"},
}
_REASON_LOOKUP = {word: reason for reason, words in REASON_WORDS.items() for word in words}

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
        from portal.imports.reasons import message

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


def parse_bool(raw: str) -> bool | None:
    """None for an empty cell; ValueProblem for a word we do not know."""
    text = raw.strip().casefold()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueProblem("bad_bool", value=raw.strip()[:40])


def parse_reason(raw: str) -> str | None:
    text = raw.strip().casefold().replace("-", "").replace(" ", "")
    if not text:
        return None
    reason = _REASON_LOOKUP.get(text) or (text if text in OPTOUT_REASONS else None)
    if reason is None:
        raise ValueProblem("bad_reason", value=raw.strip()[:40])
    return reason


def parse_datetime(raw: str, tz: ZoneInfo | None = None) -> datetime | None:
    """ISO (what the portal writes) or day-first European dates; naive values are in `tz`.

    Returns an aware UTC datetime, None for an empty cell."""
    text = raw.strip()
    if not text:
        return None
    tz = tz or UTC
    try:
        if _WITH_OFFSET.search(text):
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value.astimezone(UTC)
        if m := _ISO.match(text):
            y, mo, d, hh, mm, ss = m.groups()
        elif m := _DMY.match(text):
            d, mo, y, hh, mm, ss = m.groups()
        else:
            raise ValueError(text)
        value = datetime.combine(
            date(int(y), int(mo), int(d)),
            time(int(hh or 0), int(mm or 0), int(ss or 0)),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueProblem("bad_date", value=text[:40]) from exc
    return value.astimezone(UTC)
