"""Which column holds what: automatic mapping of headers in five languages and of
the portal's own export/backup format."""

from __future__ import annotations

import re
import unicodedata

# Targets a column can be mapped to; custom fields are "field:<key>".
EMAIL = "email"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
TAGS = "tags"
SIGNUP_AT = "signup_at"
SIGNOFF_AT = "signoff_at"
ACTIVE = "active"
OPTOUT_REASON = "optout_reason"
IGNORE = ""
BUILTIN_TARGETS = (EMAIL, FIRST_NAME, LAST_NAME, TAGS, SIGNUP_AT, SIGNOFF_AT, ACTIVE, OPTOUT_REASON)
CUSTOM_PREFIX = "field:"

# The header of the portal's own CSV exports and backups, in this order.
PORTAL_HEADER = (
    "email",
    "first_name",
    "last_name",
    "tags",
    "active",
    "signup_at",
    "signoff_at",
    "optout_reason",
)

SYNONYMS: dict[str, tuple[str, ...]] = {
    EMAIL: (
        "email",
        "e-mail",
        "e mail",
        "mail",
        "email address",
        "e-mail address",
        "emailadresse",
        "e-mail-adresse",
        "mailadresse",
        "indirizzo email",
        "indirizzo e-mail",
        "posta elettronica",
        "e-mailadres",
        "emailadres",
        "adres e-mail",
        "adres email",
        "correo",
        "courriel",
    ),
    FIRST_NAME: (
        "first name",
        "firstname",
        "given name",
        "forename",
        "vorname",
        "nome",
        "voornaam",
        "imie",
        "imię",
        "prenom",
        "prénom",
    ),
    LAST_NAME: (
        "last name",
        "lastname",
        "surname",
        "family name",
        "nachname",
        "familienname",
        "cognome",
        "achternaam",
        "nazwisko",
        "nom",
    ),
    TAGS: (
        "tags",
        "tag",
        "schlagworte",
        "schlagwörter",
        "etichette",
        "etichetta",
        "labels",
        "tagi",
    ),
    SIGNUP_AT: (
        "sign-up date",
        "signup date",
        "signed up",
        "subscribed",
        "subscribed at",
        "subscription date",
        "opt-in date",
        "activated",
        "activated at",
        "registered",
        "anmeldedatum",
        "angemeldet",
        "anmeldung",
        "data iscrizione",
        "data di iscrizione",
        "iscritto il",
        "aanmelddatum",
        "aangemeld",
        "aanmelding",
        "data zapisu",
        "data zapisania",
        "zapisany",
    ),
    SIGNOFF_AT: (
        "sign-off date",
        "signoff date",
        "unsubscribed",
        "unsubscribed at",
        "unsubscribe date",
        "opt-out date",
        "deactivated",
        "deactivated at",
        "abmeldedatum",
        "abgemeldet",
        "abmeldung",
        "data disiscrizione",
        "data di disiscrizione",
        "disiscritto il",
        "afmelddatum",
        "afgemeld",
        "afmelding",
        "data wypisu",
        "data wypisania",
        "wypisany",
    ),
    ACTIVE: ("active", "status", "subscribed?", "aktiv", "attivo", "actief", "aktywny"),
    OPTOUT_REASON: (
        "opt-out reason",
        "optout reason",
        "unsubscribe reason",
        "abmeldegrund",
        "grund der abmeldung",
        "motivo disiscrizione",
        "motivo",
        "afmeldreden",
        "reden afmelding",
        "powód wypisu",
        "przyczyna wypisu",
    ),
}


def normalize_header(text: str) -> str:
    """Case, accents, punctuation and spacing do not matter for matching."""
    text = unicodedata.normalize("NFKD", text.strip().casefold().replace("ł", "l"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "", text)


_LOOKUP: dict[str, str] = {}
for _target, _words in SYNONYMS.items():
    for _word in (_target, *_words):
        _LOOKUP.setdefault(normalize_header(_word), _target)


def auto_map(header: list[str], custom_fields: dict[str, str] | None = None) -> list[str]:
    """One target per column ('' = ignore); each target is used at most once.

    custom_fields maps a field key to its label; columns named like either match,
    as do the portal's own export columns "field:<key>"."""
    custom_fields = custom_fields or {}
    custom_lookup: dict[str, str] = {}
    for key, label in custom_fields.items():
        for name in (key, label, f"{CUSTOM_PREFIX}{key}"):
            custom_lookup.setdefault(normalize_header(name), f"{CUSTOM_PREFIX}{key}")
    used: set[str] = set()
    result = []
    for column in header:
        norm = normalize_header(column)
        target = _LOOKUP.get(norm) or custom_lookup.get(norm) or IGNORE
        if target and target in used:
            target = IGNORE
        if target:
            used.add(target)
        result.append(target)
    return result


def is_portal_format(header: list[str]) -> bool:
    """True for the portal's own export/backup files, which map without questions."""
    names = [h.strip() for h in header]
    return tuple(names[: len(PORTAL_HEADER)]) == PORTAL_HEADER and all(
        n.startswith(CUSTOM_PREFIX) or n in PORTAL_HEADER for n in names
    )


def split_tags(value: str) -> list[str]:
    """Tags in one cell, separated by comma, semicolon or bar; order kept, no doubles."""
    if not value:
        return []
    result: list[str] = []
    folded: set[str] = set()
    for part in _TAG_SEPARATORS.split(value):
        part = part.strip()
        if part and (key := part.casefold()) not in folded:
            folded.add(key)
            result.append(part)
    return result


_TAG_SEPARATORS = re.compile(r"[,;|]")
