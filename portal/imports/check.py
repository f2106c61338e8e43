"""What the check step tells before anything is written, in plain words: per consent
column what its cells say, what will happen to consent (with the people listed by
address where someone stays active or stays signed off against what the file says),
how each date column is read, and the cells that could not be read.

Read-only: built from the import's row (its dry run and column statistics) and the
first rows of its file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from zoneinfo import ZoneInfo

from flask_babel import format_datetime, ngettext
from flask_babel import lazy_gettext as _l

from portal.contacts.forms import OPTOUT_LABELS
from portal.imports import mapping as m
from portal.imports import profiles, values
from portal.imports.forms import label
from portal.imports.models import ImportJob, ImportRowProblem
from portal.imports.reasons import message
from portal.imports.service import date_columns as positions

MEANING_LABELS = {
    values.ACTIVE_MEANING: _l("may be mailed (active)"),
    values.OFF: _l("signed off"),
    "unsubscribed": _l("signed off: unsubscribed"),
    "bounced": _l("signed off: bounced"),
    "complained": _l("signed off: complaint"),
    "blocked": _l("signed off: blocked"),
    "unconfirmed": _l("signed off: never confirmed"),
    "manual": _l("signed off: manually"),
    values.NO_STATEMENT: _l("says nothing"),
}

DATE_FORMAT_LABELS = {
    "": _l("Day first or ISO (31.12.2024, 2024-12-31 14:30)"),
    "mdy": _l("Month first (12/31/2024)"),
    "unix": _l("Seconds since 1970 (Unix time)"),
}

# what a date column does, by its target
DATE_ROLES = {
    m.SIGNUP_AT: _l("The sign-up date of new subscriptions."),
    m.CONFIRMED_AT: _l("The sign-up date of new subscriptions (before any other date)."),
    m.ADDED_AT: _l("The sign-up date of new subscriptions when the file has no other."),
    m.SIGNOFF_AT: _l(
        "A date here signs the person off, unless their sign-up in the file is newer."
    ),
    m.BOUNCED_AT: _l("A date here signs the person off as bounced."),
}

# the consent effects of the dry run and the run (consent.CONSENT_CASE), in this order
EFFECT_LABELS = {
    "new_on": _l("Added as active subscribers"),
    "new_off": _l("Added as signed off"),
    "signed_off": _l("Active here, signed off as the file says"),
    "kept_newer": _l("Kept active: signed up here again after the sign-off date in the file"),
    "reactivated": _l("Active again: a newer sign-up in the file, and you chose to re-activate"),
    "stays_off": _l(
        "Left signed off: active in the file with a newer sign-up, but re-activating was not chosen"
    ),
    "signup_moved": _l("Sign-up date set to the one in the file"),
}

SAMPLE_ROWS = 50  # first rows of the file whose dates the check step shows
EXAMPLES_SHOWN = 20
DATE_EXAMPLES = 3
WARNINGS_SHOWN = 20


@dataclass
class Word:
    word: str
    count: int
    meaning: str


@dataclass
class ConsentColumn:
    position: int
    header: str
    target: str
    sentences: list[str] = field(default_factory=list)
    unknown: list[Word] = field(default_factory=list)


@dataclass
class Effect:
    key: str
    label: str
    count: int
    detail: str = ""
    examples: list[str] = field(default_factory=list)


@dataclass
class DateColumn:
    position: int
    header: str
    target: str
    fmt: str
    examples: list[tuple[str, str]]  # (cell, how it is read)


def consent_columns(job: ImportJob) -> list[ConsentColumn]:
    """Every mapped consent column with what its cells said."""
    stats = job.column_stats or {}
    chosen = job.value_meanings or {}
    result = []
    for position, target in enumerate(job.mapping or []):
        if target not in m.CONSENT_TARGETS:
            continue
        counts = stats.get(str(position), {})
        column = ConsentColumn(position, job.header[position], target)
        if target in m.DATE_TARGETS:
            column.sentences.append(str(DATE_ROLES[target]))
            column.sentences.append(_dated_sentence(counts))
        else:
            column.sentences.append(_words_sentence(counts))
            for word, count in sorted(counts.get("unknown", {}).items(), key=lambda w: -w[1]):
                meaning = chosen.get(str(position), {}).get(values.word_key(word), values.OFF)
                column.unknown.append(Word(word, count, meaning))
        if job.group_id is None:
            column.sentences.append(
                str(_l("Not used: an import without a group changes no subscription."))
            )
        elif target in (m.SIGNUP_AT, m.CONFIRMED_AT, m.ADDED_AT) and not job.import_consent:
            column.sentences.append(
                str(
                    _l(
                        "For contacts already in the group the sign-up date stays as it "
                        "is here; it changes only with the option to re-activate."
                    )
                )
            )
        result.append(column)
    return result


def _dated_sentence(counts: dict) -> str:
    dated, unreadable = counts.get("dated", 0), counts.get("unreadable", 0)
    text = ngettext("%(num)d row has a date.", "%(num)d rows have a date.", dated)
    if unreadable:
        text += " " + ngettext(
            "%(num)d date could not be read and is left empty.",
            "%(num)d dates could not be read and are left empty.",
            unreadable,
        )
    return text


# what only the portal's own files say (profiles.PORTAL_REASONS): counted, never offered
_COUNTED_ONLY = {"imported": OPTOUT_LABELS["imported"]}


def _words_sentence(counts: dict) -> str:
    labels = {**MEANING_LABELS, **_COUNTED_ONLY}
    parts = [f"{labels[meaning]}: {counts[meaning]}" for meaning in labels if counts.get(meaning)]
    return " · ".join(parts) if parts else str(_l("All cells are empty."))


def consent_effects(job: ImportJob, counts: dict, examples: dict | None = None) -> list[Effect]:
    """The consent effects of the dry run (or, after the run, of the import)."""
    examples = examples or {}
    result = []
    for key, text in EFFECT_LABELS.items():
        count = counts.get(key, 0)
        if not count:
            continue
        detail = ""
        if key in ("new_off", "signed_off"):
            detail = ", ".join(
                f"{label(OPTOUT_LABELS, reason)}: {n}"
                for name, n in sorted(counts.items())
                if name.startswith(f"{key}:") and (reason := name.split(":", 1)[1])
            )
        result.append(Effect(key, str(text), count, detail, examples.get(key, [])[:EXAMPLES_SHOWN]))
    return result


def date_columns(job: ImportJob, sample: list[list[str]], account_zone: str) -> list[DateColumn]:
    """How every date column is read, with the first values of the file."""

    zone = ZoneInfo("UTC" if job.date_zone == "UTC" else account_zone)
    formats = job.date_formats or {}
    result = []
    for position in positions(job):
        fmt = formats.get(str(position), "")
        cells = [r[position].strip() for r in sample if position < len(r) and r[position].strip()]
        shown = [(cell, _read(cell, zone, fmt)) for cell in cells[:DATE_EXAMPLES]]
        result.append(DateColumn(position, job.header[position], job.mapping[position], fmt, shown))
    return result


def _read(cell: str, zone: ZoneInfo, fmt: str) -> str:
    try:
        value = values.parse_datetime(cell, zone, fmt)
    except values.ValueProblem:
        return str(_l("cannot be read: left empty"))
    if value is None:
        return str(_l("no date"))
    return format_datetime(value.astimezone(UTC), "medium")


def warning_text(problem: ImportRowProblem) -> str:
    """A warning in the reader's language: which column, what was wrong, what happened."""
    return str(
        _l(
            "Column “%(column)s”: %(problem)s The cell is left empty; the row is imported.",
            column=problem.params.get("column", ""),
            problem=message(problem.code, problem.params),
        )
    )


def problem_text(problem: ImportRowProblem, source: str = "ui") -> str:
    """The reason in the reader's language; `source` is the import's (a restore's texts
    never name an option that only the import page has)."""
    if problem.kind == "warning":
        return warning_text(problem)
    return message(problem.code, problem.params, source)


def recognised_as(job: ImportJob) -> profiles.Profile | None:
    return profiles.by_key(job.detected_format, job.header or [])
