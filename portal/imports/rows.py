"""One row of an import file as the portal understands it: the address, names, custom
fields, tags and — always, whenever such columns are mapped — what the row says about
consent. Only a missing or invalid address refuses a row; any other cell that cannot be
read is left empty and reported as a warning, so one bad birthday never costs a person.

This is the import's hot loop (it runs in the parser thread, see staging.py): lookups
are prepared once, names, dates and search keys are cached, and a row without consent
columns takes none of their paths."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any
from zoneinfo import ZoneInfo

from portal.contacts.models import FieldType, search_columns
from portal.core import privacy
from portal.imports import mapping as m
from portal.imports import values
from portal.imports.values import ACTIVE_MEANING, NO_STATEMENT, OFF, ValueProblem

# one encoder for all rows: json.dumps(..., ensure_ascii=False) builds a new one per call
_JSON = json.JSONEncoder(ensure_ascii=False)

# The reason a row gets when it signs someone off without naming one: with a sign-off
# date the person unsubscribed; without one the portal only knows the file said so.
REASON_WITH_DATE = "unsubscribed"
REASON_WITHOUT_DATE = "imported"
# Which signed-off reason wins when several columns name one (the reason column first).
_REASON_ORDER = ("optout_reason", "blocked", "status", "active", "opted_out")
# value_meanings of a tool profile: the meaning of any word not named ("*"), and a
# reason that applies only to someone another column signs off ("if_off:bounced":
# CleverReach counts bounces, and a soft bounce leaves the receiver active).
ANY_WORD = "*"
IF_OFF = "if_off:"
# At most this many unknown words per column are listed by name (the rest are counted).
UNKNOWN_WORDS_KEPT = 50
OTHER_WORDS = "…"


def _json_names(names: list[str]) -> str:
    """A JSON array of tag names, as json.dumps writes it (a third of the time)."""
    return "[" + ", ".join([encode_basestring(n[:100]) for n in names]) + "]"


@dataclass(frozen=True)
class FieldSpec:
    """A custom field as plain data: the hot loop must not touch ORM attributes."""

    key: str
    label: str
    type: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Consent:
    """What one row says: active True (may be mailed), False (signed off, with a
    reason), None (nothing)."""

    signup: datetime | None
    signoff: datetime | None
    active: bool | None
    reason: str | None


class ColumnStats:
    """Per consent column: how many rows said what, and the words nobody knows yet —
    what the check step explains column by column. Counted in the parser thread per
    batch (one flat dict: this runs for every row); the batch's writer adds them to the
    import's row with its checkpoint."""

    def __init__(self) -> None:
        self.counted: dict[tuple[int, str], int] = {}
        self.words: dict[int, dict[str, int]] = {}

    def count(self, position: int, what: str) -> None:
        key = (position, what)
        self.counted[key] = self.counted.get(key, 0) + 1

    def unknown(self, position: int, raw: str) -> None:
        words = self.words.setdefault(position, {})
        word = raw.strip()[:60]
        if word not in words and len(words) >= UNKNOWN_WORDS_KEPT:
            word = OTHER_WORDS
        words[word] = words.get(word, 0) + 1

    def take(self) -> dict[str, dict[str, Any]]:
        counts: dict[str, dict[str, Any]] = {}
        for (position, what), n in self.counted.items():
            counts.setdefault(str(position), {})[what] = n
        for position, words in self.words.items():
            counts.setdefault(str(position), {})["unknown"] = words
        self.counted, self.words = {}, {}
        return counts


def add_stats(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Two ColumnStats counts together (a new dict: JSON columns change by assignment)."""
    result = json.loads(json.dumps(total or {}))
    for position, counts in part.items():
        column = result.setdefault(position, {})
        for what, value in counts.items():
            if what == "unknown":
                words = column.setdefault("unknown", {})
                for word, n in value.items():
                    words[word] = words.get(word, 0) + n
            else:
                column[what] = column.get(what, 0) + value
    return result


class TagSpelling:
    """Tags match whatever their case: "NEWSLETTER", "newsletter" and "Newsletter" are
    one tag, spelt as the account already has it, else as the file first writes it."""

    def __init__(self, known: list[str]) -> None:
        self.spelling: dict[str, str] = {}
        for name in known:
            self.spelling.setdefault(name.casefold(), name)

    def __call__(self, names: list[str]) -> list[str]:
        spelling = self.spelling
        return [spelling.setdefault(name.casefold(), name) for name in names]


class RowParser:
    """Turns the cells of one row into a staging tuple, or raises ValueProblem when
    the address is missing or invalid; unreadable optional cells go to `warnings`."""

    def __init__(
        self,
        job,
        fields: dict[str, Any],
        tz: ZoneInfo,
        time_value: Callable[[datetime | None], Any],
        known_tags: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        self.job_id = job.id
        self.header = list(job.header or [])
        self.tz = ZoneInfo("UTC") if job.date_zone == "UTC" else tz
        self.time_value = time_value
        self.hash = privacy.hasher()
        self.fold_names = lru_cache(maxsize=200_000)(search_columns)
        self.parse_time = lru_cache(maxsize=20_000)(values.parse_datetime)
        self.full_name = lru_cache(maxsize=100_000)(m.split_full_name)
        self.spell_tags = TagSpelling(list(known_tags))
        self.stats = ColumnStats()
        formats = job.date_formats or {}
        meanings = job.value_meanings or {}
        index: dict[str, int] = {}
        self.custom: list[tuple[int, FieldSpec, str]] = []
        for position, target in enumerate(job.mapping):
            if target.startswith(m.CUSTOM_PREFIX):
                field = fields.get(target.removeprefix(m.CUSTOM_PREFIX))
                if field is not None:
                    spec = FieldSpec(field.key, field.label, field.type, tuple(field.choices or ()))
                    self.custom.append((position, spec, formats.get(str(position), "")))
            elif target:
                index[target] = position
        self.email_at = index[m.EMAIL]
        self.first_at = index.get(m.FIRST_NAME)
        self.last_at = index.get(m.LAST_NAME)
        self.full_at = index.get(m.FULL_NAME)
        self.tags_at = index.get(m.TAGS)
        self.words = [
            (index[t], t, meanings.get(str(index[t]), {})) for t in m.WORD_TARGETS if t in index
        ]
        self.dates = {
            t: (index[t], formats.get(str(index[t]), ""), meanings.get(str(index[t]), {}))
            for t in m.DATE_TARGETS
            if t in index
        }
        self.prefix_at = index.get(m.LAST_NAME_PREFIX)
        self.split_tags = lru_cache(maxsize=50_000)(m.split_tags)  # cells repeat a lot
        self.has_consent = bool(self.words or self.dates)

    @staticmethod
    def _cell(cells: list[str], position: int | None) -> str:
        if position is None or position >= len(cells):
            return ""
        return cells[position]

    def _name(self, cells: list[str], position: int | None) -> str | None:
        if position is None:
            return None
        return self._cell(cells, position).strip()[:200] or None

    def parse(self, line: int, cells: list[str], warnings: list[dict]) -> tuple:
        email = values.normalize_email(self._cell(cells, self.email_at))
        first, last = self._name(cells, self.first_at), self._name(cells, self.last_at)
        if self.prefix_at is not None and last is not None:
            prefix = self._cell(cells, self.prefix_at).strip()
            last = f"{prefix} {last}"[:200] if prefix else last
        if self.full_at is not None and first is None and last is None:
            whole = self._cell(cells, self.full_at).strip()
            if whole:
                first, last = (part[:200] or None for part in self.full_name(whole))
        names = self.fold_names(first, last)
        fields = self._fields(line, cells, warnings) if self.custom else None
        tags = self.spell_tags(self.split_tags(self._cell(cells, self.tags_at)))
        consent = self._consent(line, cells, warnings) if self.has_consent else _NO_CONSENT
        row = (
            self.job_id, line, email, self.hash(email), first, last, names["search_name"],
            names["search_name_rev"], _JSON.encode(fields) if fields else None,
            _json_names(tags) if tags else None,
            self.time_value(consent.signup), self.time_value(consent.signoff), consent.active,
            consent.reason if consent.active is False else None,
        )  # fmt: skip
        return row

    def _fields(self, line: int, cells: list[str], warnings: list[dict]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for position, field, fmt in self.custom:
            raw = cells[position].strip() if position < len(cells) else ""
            if raw:
                try:
                    result[field.key] = parse_field(field, raw, self.tz, fmt)
                except ValueProblem as problem:
                    warnings.append(self.warning(line, position, problem))
        return result

    def _date(self, line: int, cells: list[str], target: str, said: dict, warnings: list[dict]):
        position, fmt, chosen = self.dates[target]
        if position >= len(cells) or not cells[position]:
            if chosen.get(""):  # a tool's word for an empty date: CleverReach, not confirmed
                said[target] = chosen[""]
            return None
        text = self._cell(cells, position).strip()
        try:
            value = self.parse_time(text, self.tz, fmt)
        except ValueProblem as problem:
            warnings.append(self.warning(line, position, problem))
            self.stats.count(position, "unreadable")
            return None
        if value is not None:
            self.stats.count(position, "dated")
        elif chosen.get(""):
            said[target] = chosen[""]
        return value

    def _consent(self, line: int, cells: list[str], warnings: list[dict]) -> Consent:
        said: dict[str, str] = {}
        read: dict[str, datetime | None] = {}
        # every mapped date is read (its cell may need a warning)
        for target in self.dates:
            read[target] = self._date(line, cells, target, said, warnings)
        get = read.get
        signup = get(m.CONFIRMED_AT) or get(m.SIGNUP_AT) or get(m.ADDED_AT)
        signoff, bounced = get(m.SIGNOFF_AT), get(m.BOUNCED_AT)
        for position, target, chosen in self.words:
            raw = self._cell(cells, position)
            key = values.word_key(raw)
            meaning = chosen.get(key) or values.word_meaning(target, raw) or chosen.get(ANY_WORD)
            if meaning is None:
                self.stats.unknown(position, raw)
                meaning = OFF
            self.stats.count(position, meaning)
            if meaning != NO_STATEMENT:
                said[target] = meaning
        return resolve_consent(said, signup, signoff, bounced)

    def warning(self, line: int, position: int, problem: ValueProblem) -> dict:
        """An optional cell that could not be read: the value is left empty."""
        column = self.header[position] if position < len(self.header) else str(position + 1)
        params = {k: str(v) for k, v in problem.params.items()}
        return {
            "import_id": self.job_id,
            "line": line,
            "kind": "warning",
            "code": problem.code,
            "params": {**params, "column": column[:100]},
            "cells": [],
        }


_NO_CONSENT = Consent(None, None, None, None)


def resolve_consent(
    said: dict[str, str],
    signup: datetime | None,
    signoff: datetime | None,
    bounced: datetime | None,
) -> Consent:
    """The row's word on consent. What restricts wins (the consent rule): any column
    that says signed off, blocked, bounced or unconfirmed, a bounce date, or a sign-off
    date not older than the sign-up. Otherwise a column that says active, or a date of
    sign-up, makes the row active; a row that says nothing is None."""
    if not said and signoff is None and bounced is None:  # the common case: a sign-up date
        return _NO_CONSENT if signup is None else Consent(signup, None, True, None)
    only_if_off = [v.removeprefix(IF_OFF) for v in said.values() if v.startswith(IF_OFF)]
    if only_if_off:
        said = {t: v for t, v in said.items() if not v.startswith(IF_OFF)}
    named = [said[t] for t in _REASON_ORDER if t in said] + list(said.values())
    reason = next((r for r in named if r not in (ACTIVE_MEANING, OFF)), None)
    if bounced is not None:
        reason = reason or "bounced"
        signoff = signoff or bounced
    reason = reason or next(iter(only_if_off), None)
    restricted = any(meaning != ACTIVE_MEANING for meaning in said.values())
    signed_off_by_date = signoff is not None and (signup is None or signoff >= signup)
    if restricted or bounced is not None or signed_off_by_date:
        default = REASON_WITH_DATE if signoff is not None else REASON_WITHOUT_DATE
        return Consent(signup, signoff, False, reason or default)
    if said or signup is not None or signoff is not None:
        return Consent(signup, signoff, True, None)
    return _NO_CONSENT


def parse_field(field: FieldSpec, raw: str, tz: ZoneInfo, fmt: str = "") -> Any:
    kind = field.type
    if kind == FieldType.NUMBER:
        try:
            number = float(raw.replace(" ", "").replace(",", "."))
        except ValueError as exc:
            raise ValueProblem("bad_number", value=raw[:40], field=field.label) from exc
        if not math.isfinite(number):  # "inf", "NaN": no JSON number, no user's number
            raise ValueProblem("bad_number", value=raw[:40], field=field.label)
        return int(number) if number.is_integer() else number
    if kind == FieldType.DATE:
        parsed = values.parse_datetime(raw, tz, fmt)
        return parsed.astimezone(tz).date().isoformat() if parsed else None
    if kind == FieldType.CHOICE:
        for choice in field.choices:
            if choice.casefold() == raw.casefold():
                return choice
        raise ValueProblem("bad_choice", value=raw[:40], field=field.label)
    return raw[:1000]
