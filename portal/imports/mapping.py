"""Which column holds what: automatic mapping of headers in five languages, of other
tools' exports (profiles.py) and of the portal's own export/backup format."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from portal.imports import values
from portal.imports.headers import (
    ACTIVE,
    ADDED_AT,
    BLOCKED,
    BOUNCED_AT,
    CONFIRMED_AT,
    EMAIL,
    FIRST_NAME,
    FULL_NAME,
    FULL_OR_LAST,
    LAST_NAME,
    LAST_NAME_PREFIX,
    OPTED_OUT,
    OPTOUT_REASON,
    PORTAL_HEADERS,
    SIGNOFF_AT,
    SIGNUP_AT,
    STATUS,
    SYNONYMS,
    TAGS,
)
from portal.imports.portal_format import CUSTOM_PREFIX, PORTAL_HEADER

__all__ = [
    "ACTIVE", "ADDED_AT", "BLOCKED", "BOUNCED_AT", "CONFIRMED_AT", "EMAIL", "FIRST_NAME",
    "FULL_NAME", "LAST_NAME", "LAST_NAME_PREFIX", "OPTED_OUT", "OPTOUT_REASON", "SIGNOFF_AT",
    "SIGNUP_AT", "STATUS", "TAGS", "CUSTOM_PREFIX", "PORTAL_HEADER",
]  # fmt: skip

IGNORE = ""
# A column that becomes a new custom field when the mapping is saved: "new:<type>".
NEW_FIELD_PREFIX = "new:"

# in the order the mapping page offers them
BUILTIN_TARGETS = (
    EMAIL, FIRST_NAME, LAST_NAME_PREFIX, LAST_NAME, FULL_NAME, TAGS, STATUS, ACTIVE, BLOCKED,
    OPTED_OUT, OPTOUT_REASON, SIGNUP_AT, CONFIRMED_AT, ADDED_AT, SIGNOFF_AT, BOUNCED_AT,
)  # fmt: skip
# Columns whose words say whether someone may be mailed (values.WORD_MEANINGS).
WORD_TARGETS = (STATUS, ACTIVE, BLOCKED, OPTED_OUT, OPTOUT_REASON)
DATE_TARGETS = (SIGNUP_AT, CONFIRMED_AT, ADDED_AT, SIGNOFF_AT, BOUNCED_AT)
# Everything that speaks of consent: the check step explains each of these columns.
CONSENT_TARGETS = (*WORD_TARGETS, *DATE_TARGETS)

# in the portal's own files these columns mean what the portal wrote, not the words
_PORTAL_TARGETS = {
    "email": EMAIL, "first_name": FIRST_NAME, "last_name": LAST_NAME, "tags": TAGS,
    "active": ACTIVE, "signup_at": SIGNUP_AT, "signoff_at": SIGNOFF_AT,
    "optout_reason": OPTOUT_REASON,
}  # fmt: skip


def normalize_header(text: str) -> str:
    """Case, accents, punctuation and spacing do not matter for matching."""
    text = unicodedata.normalize("NFKD", text.strip().casefold().replace("ł", "l"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "", text)


_LOOKUP: dict[str, str] = {}
for _target, _words in SYNONYMS.items():
    for _word in (_target, *_words):
        _LOOKUP.setdefault(normalize_header(_word), _target)
_FULL_OR_LAST = {normalize_header(w) for w in FULL_OR_LAST}


def target_of_header(column: str) -> str:
    """The built-in target a header names, '' when it names none."""
    return _LOOKUP.get(normalize_header(column), IGNORE)


def auto_map(
    header: list[str],
    custom_fields: dict[str, str] | None = None,
    samples: Sequence[Sequence[str]] = (),
) -> list[str]:
    """One target per column ('' = ignore); each target is used at most once.

    custom_fields maps a field key to its label; columns named like either match,
    as do the portal's own export columns "field:<key>". `samples` (the first rows)
    decide between a date and a yes/no column of the same name."""
    custom_fields = custom_fields or {}
    if is_portal_format(header):
        return [_portal_target(h.strip(), custom_fields) for h in header]
    custom_lookup: dict[str, str] = {}
    for key, label in custom_fields.items():
        for name in (key, label, f"{CUSTOM_PREFIX}{key}"):
            custom_lookup.setdefault(normalize_header(name), f"{CUSTOM_PREFIX}{key}")
    if portal_language(header):
        # the portal's own file for Excel: its columns are fixed, the rest are custom
        # fields by their label (or key); nothing is guessed from words or values
        rest = header[len(PORTAL_HEADER) :]
        rest = [custom_lookup.get(normalize_header(column), IGNORE) for column in rest]
        return unique_targets([*(_PORTAL_TARGETS[n] for n in PORTAL_HEADER), *rest])
    targets = []
    for i, column in enumerate(header):
        norm = normalize_header(column)
        target = custom_lookup.get(norm) or _LOOKUP.get(norm) or IGNORE
        target = _by_values(target, [row[i] for row in samples if i < len(row)])
        targets.append(target)
    if FIRST_NAME in targets:
        targets = [
            LAST_NAME if t == FULL_NAME and normalize_header(header[i]) in _FULL_OR_LAST else t
            for i, t in enumerate(targets)
        ]
    return unique_targets(targets)


def _portal_target(name: str, custom_fields: dict[str, str]) -> str:
    if name.startswith(CUSTOM_PREFIX):
        return name if name.removeprefix(CUSTOM_PREFIX) in custom_fields else IGNORE
    return _PORTAL_TARGETS.get(name, IGNORE)


# a column named like a date whose cells are yes/no words is the flag of the same meaning
_FLAG_OF_DATE = {SIGNUP_AT: ACTIVE, SIGNOFF_AT: OPTED_OUT, ADDED_AT: IGNORE, BOUNCED_AT: BLOCKED}


def _by_values(target: str, cells: list[str]) -> str:

    filled = [c.strip() for c in cells if c.strip()]
    if not filled:
        return target
    if target in _FLAG_OF_DATE and all(values.is_yes_no(c) for c in filled):
        return _FLAG_OF_DATE[target]
    return target


def unique_targets(targets: list[str]) -> list[str]:
    """The first column keeps a target that several columns were given."""
    seen: set[str] = set()
    result = []
    for target in targets:
        if target and target in seen:
            target = IGNORE
        seen.add(target)
        result.append(target)
    return result


def is_portal_format(header: list[str]) -> bool:
    """True for the portal's own export/backup files, which map without questions."""
    names = [h.strip() for h in header]
    return tuple(names[: len(PORTAL_HEADER)]) == PORTAL_HEADER and all(
        n.startswith(CUSTOM_PREFIX) or n in PORTAL_HEADER for n in names
    )


_LOCALIZED_HEADERS = {
    language: tuple(normalize_header(word) for word in words)
    for language, words in PORTAL_HEADERS.items()
}


def portal_language(header: list[str]) -> str | None:
    """The language of the portal's own file as downloaded for Excel (headers.
    PORTAL_HEADERS): "de", "en", …; "" for the machine format (PORTAL_HEADER, as backups
    are stored and the API sends them); None for any other file."""
    if is_portal_format(header):
        return ""
    names = tuple(normalize_header(h) for h in header[: len(PORTAL_HEADER)])
    return next((lang for lang, words in _LOCALIZED_HEADERS.items() if names == words), None)


_TAG_SEPARATORS = re.compile(r"[,;|]")
_QUOTES = "\"'“”„‘’«»"


def split_tags(value: str) -> list[str]:
    """Tags in one cell, separated by comma, semicolon or bar; order kept, no doubles
    (whatever their case), surrounding quotes gone: Mailchimp writes `"Kunde","VIP"`."""
    if not value:
        return []
    result: list[str] = []
    folded: set[str] = set()
    for part in _TAG_SEPARATORS.split(value):
        part = " ".join(part.strip().strip(_QUOTES).split())
        if part and (key := part.casefold()) not in folded:
            folded.add(key)
            result.append(part)
    return result


# Particles that begin a family name: "Jan van der Berg", "Ludwig von Beethoven".
NAME_PARTICLES = frozenset(
    ("van", "von", "vom", "zu", "zum", "zur", "der", "den", "de", "del", "della", "di", "da",
     "dos", "du", "la", "le", "ten", "ter", "te", "'t", "op", "in")
)  # fmt: skip


def split_full_name(value: str) -> tuple[str, str]:
    """First and last name of a whole name: the last word is the family name, with the
    particles before it ("Jan van der Berg" → Jan / van der Berg); "Last, First" is
    turned round; one word stays whole as the first name."""
    text = " ".join(value.split())
    if not text:
        return "", ""
    if text.count(",") == 1:
        last, first = (p.strip() for p in text.split(","))
        if first and last:
            return first, last
    words = text.split(" ")
    if len(words) == 1:
        return text, ""
    start = len(words) - 1
    for i in range(1, len(words) - 1):
        if words[i].casefold() in NAME_PARTICLES:
            start = i
            break
    return " ".join(words[:start]), " ".join(words[start:])
