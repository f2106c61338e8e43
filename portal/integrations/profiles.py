"""What a provider can carry, and the tag-compatibility report before a switch.

The seed article (Spreadmind) warns that providers differ: numeric tag ids or names,
ids starting at 0 or 1, ids that are already taken, special characters (umlauts,
underscores) allowed or not. A Profile describes one such shape; the report lists every
tag the provider cannot carry as it is, the suggested name (German transliteration
first — ä→ae, ß→ss — then ASCII for the rest: ł→l, ż→z, è→e) and the tags that would
collide into one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from anyascii import anyascii
from flask_babel import lazy_gettext as _l

_GERMAN = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS"}
)


@dataclass(frozen=True)
class Profile:
    key: str
    label: Any  # lazy string
    description: Any
    numeric_ids: bool = False  # tags travel as numbers, their names are for people only
    first_id: int = 1
    reserved_ids: tuple[int, ...] = ()
    allowed: str = r"[^,;|]"  # one allowed character (a regex class)
    ascii_only: bool = False
    case: str = "any"  # any | upper | lower
    case_sensitive: bool = True
    separator: str = " "  # replaces spaces and characters that are not allowed
    max_length: int = 100

    def fits(self, name: str) -> bool:
        return not problems_of(self, name)


PROFILES: dict[str, Profile] = {
    "webhook": Profile(
        key="webhook",
        label=_l("Generic webhook (JSON)"),
        description=_l(
            "Your own endpoint receives signed JSON events; tags travel by their names as they are."
        ),
    ),
    "names": Profile(
        key="names",
        label=_l("Provider with tag names (special characters allowed)"),
        description=_l(
            "Tag names with letters of any language, digits, spaces, hyphens and "
            "underscores, up to 64 characters; upper and lower case are the same tag."
        ),
        allowed=r"[\w \-]",
        case_sensitive=False,
        max_length=64,
    ),
    "ascii_ids": Profile(
        key="ascii_ids",
        label=_l("Provider with numeric tag ids (ASCII upper-case names)"),
        description=_l(
            "Tags are numbers; ids 1 to 3 are taken by the provider, so the first free id "
            "is 4. Names: A–Z, 0–9 and hyphens, up to 30 characters, upper case."
        ),
        numeric_ids=True,
        first_id=1,
        reserved_ids=(1, 2, 3),
        allowed=r"[A-Z0-9\-]",
        ascii_only=True,
        case="upper",
        case_sensitive=False,
        separator="-",
        max_length=30,
    ),
}

DEFAULT_PROFILE = "webhook"

# the reasons a name does not fit, as codes with their sentence
PROBLEMS = {
    "umlaut": _l("umlauts or ß"),
    "letters": _l("letters with accents or other marks (e.g. Polish letters)"),
    "case": _l("lower-case letters"),
    "spaces": _l("spaces"),
    "underscore": _l("underscores"),
    "characters": _l("characters that are not allowed"),
    "length": _l("too long"),
    "empty": _l("no name left"),
}


def problems_of(profile: Profile, name: str) -> list[str]:
    found: list[str] = []
    allowed = re.compile(profile.allowed)
    for ch in name:
        if allowed.fullmatch(ch) and not (profile.ascii_only and not ch.isascii()):
            continue
        if ch in "äöüÄÖÜßẞ":
            code = "umlaut"
        elif not ch.isascii() and ch.isalpha():
            code = "letters"
        elif ch == " ":
            code = "spaces"
        elif ch == "_":
            code = "underscore"
        elif profile.case == "upper" and ch.isalpha() and ch.upper() != ch:
            code = "case"
        else:
            code = "characters"
        if code not in found:
            found.append(code)
    if profile.case == "upper" and name != name.upper() and "case" not in found:
        found.append("case")
    if len(name) > profile.max_length:
        found.append("length")
    if not name.strip():
        found.append("empty")
    return found


def suggest(profile: Profile, name: str) -> str:
    """A name the provider can carry, as close to the original as it can be."""
    text = name
    if profile.ascii_only:
        text = anyascii(text.translate(_GERMAN))
    if profile.case == "upper":
        text = text.upper()
    elif profile.case == "lower":
        text = text.lower()
    allowed = re.compile(profile.allowed)
    sep = profile.separator
    out = []
    for ch in text:
        out.append(ch if allowed.fullmatch(ch) else sep)
    text = "".join(out)
    if sep.strip():
        text = re.sub(rf"{re.escape(sep)}+", sep, text).strip(sep)
    text = " ".join(text.split()) if sep == " " else text
    text = text[: profile.max_length].rstrip(sep)
    return text or ("TAG" if profile.case == "upper" else "tag")


def key_of(profile: Profile, name: str) -> str:
    """Two names with the same key are one tag at the provider."""
    return name if profile.case_sensitive else name.casefold()


@dataclass
class ReportRow:
    tag_id: int
    name: str
    suggested: str
    problems: list[str] = field(default_factory=list)
    collides_with: list[str] = field(default_factory=list)  # other tags with the same result
    remote_id: int | None = None

    @property
    def fits(self) -> bool:
        return not self.problems and not self.collides_with


def numeric_ids(profile: Profile, count: int) -> list[int]:
    """`count` ids for the provider: from first_id on, skipping its reserved ids."""
    ids, candidate = [], profile.first_id
    while len(ids) < count:
        if candidate not in profile.reserved_ids:
            ids.append(candidate)
        candidate += 1
    return ids


def report(profile: Profile, tags: list[tuple[int, str]], chosen: dict[int, str] | None = None):
    """One row per tag (sorted by name): its problems, the suggested (or chosen) remote
    name and the collisions of those remote names."""
    chosen = chosen or {}
    rows = []
    for tag_id, name in sorted(tags, key=lambda t: t[1].casefold()):
        remote = chosen.get(tag_id) or (name if profile.fits(name) else suggest(profile, name))
        rows.append(
            ReportRow(
                tag_id=tag_id, name=name, suggested=remote, problems=problems_of(profile, name)
            )
        )
    by_key: dict[str, list[ReportRow]] = {}
    for row in rows:
        by_key.setdefault(key_of(profile, row.suggested), []).append(row)
    for group in by_key.values():
        if len(group) > 1:
            for row in group:
                row.collides_with = [other.name for other in group if other is not row]
    if profile.numeric_ids:
        for row, number in zip(rows, numeric_ids(profile, len(rows)), strict=True):
            row.remote_id = number
    return rows
