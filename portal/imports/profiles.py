"""Exports of other tools, recognised by their headers: a customer who switches tools
imports the old tool's export, and the mapping page says "This looks like a Mailchimp
export (unsubscribed members)" and maps every column that has a meaning here — with the
tool's own words for consent and the zone its times are written in.

Each profile names the headers that identify it (all must be there), the targets of
headers whose generic meaning (headers.py) is not the tool's, what the words of its
consent columns mean, and the zone of its times. The formats, with their sources, are
in docs/decisions/tool-exports.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from portal.imports import headers as h
from portal.imports.mapping import (
    IGNORE,
    PORTAL_HEADER,
    normalize_header,
    portal_language,
    unique_targets,
)
from portal.imports.rows import ANY_WORD, IF_OFF
from portal.imports.values import ACTIVE_MEANING, NO_STATEMENT, word_key


def _norm(*names: str) -> frozenset[str]:
    return frozenset(normalize_header(n) for n in names)


def _words(meanings: Mapping[str, str]) -> dict[str, str]:
    return {word_key(word): meaning for word, meaning in meanings.items()}


@dataclass(frozen=True)
class Profile:
    key: str
    tool: str  # a product name: not translated
    variant: object = None  # a lazy translated text, e.g. "unsubscribed members"
    signature: frozenset[str] = frozenset()  # normalized headers that must all be there
    targets: Mapping[str, str] = field(default_factory=dict)  # normalized header -> target
    meanings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    date_zone: str = ""  # "UTC" where the tool writes UTC times without saying so
    date_formats: Mapping[str, str] = field(default_factory=dict)  # header -> format
    note: object = None  # what the mapping page must tell about this export

    def matches(self, names: set[str]) -> bool:
        return self.signature <= names

    @property
    def title(self) -> str:
        if self.variant is None:
            return str(_l("This looks like an export of %(tool)s.", tool=self.tool))
        return str(
            _l(
                "This looks like an export of %(tool)s (%(variant)s).",
                tool=self.tool,
                variant=self.variant,
            )
        )


def _targets(names: Mapping[str, str]) -> dict[str, str]:
    return {normalize_header(header): target for header, target in names.items()}


_MAILCHIMP_TARGETS = _targets(
    {
        "Email Address": h.EMAIL,
        "First Name": h.FIRST_NAME,
        "Last Name": h.LAST_NAME,
        "OPTIN_TIME": h.SIGNUP_AT,
        "CONFIRM_TIME": h.CONFIRMED_AT,
        "UNSUB_TIME": h.SIGNOFF_AT,
        "UNSUB_REASON": h.OPTOUT_REASON,
        "CLEAN_TIME": h.BOUNCED_AT,
        "TAGS": h.TAGS,
        "LAST_CHANGED": IGNORE,
        "MEMBER_RATING": IGNORE,
        # Mailchimp's birthdays have no year ("03/14"), which no date field can hold;
        # the user may map the column to a text field
        "Birthday": IGNORE,
    }
)
# the answers of Mailchimp's unsubscribe survey (UNSUB_REASON), as it writes them
_MAILCHIMP_REASONS = {
    normalize_header("UNSUB_REASON"): {
        **_words(
            {
                "The emails are spam and should be reported": "complained",
                "N/A (Unsubscribed by an admin)": "unsubscribed",
                "N/A (Unsubscribed by admin)": "unsubscribed",
                "SPAM": "complained",
                "ABUSE": "complained",
            }
        ),
        ANY_WORD: "unsubscribed",  # every other answer of the survey, and "NORMAL"
    }
}
_MAILCHIMP = {"targets": _MAILCHIMP_TARGETS, "date_zone": "UTC"}

_LISTMONK = _targets(
    {
        "name": h.FULL_NAME,
        "status": h.STATUS,
        "created_at": h.ADDED_AT,
        "updated_at": IGNORE,
        "uuid": IGNORE,
        "attributes": IGNORE,
    }
)

_MAUTIC_CONTACTS = _targets({"last_active": IGNORE, "attribution_date": IGNORE, "id": IGNORE})
_MAUTIC_DNC = _targets(
    {
        "Email": h.EMAIL,
        "DNC Reason": h.OPTOUT_REASON,
        "DNC Date": h.SIGNOFF_AT,
        "DNC Channel": IGNORE,
        "DNC Comment": IGNORE,
    }
)
_MAUTIC_DNC_WORDS = {
    normalize_header("DNC Reason"): _words(
        {
            "DNC Unsubscribed": "unsubscribed",
            "DNC Bounced": "bounced",
            "DNC Manually Unsubscribed": "blocked",
            "Contactable": ACTIVE_MEANING,
            "1": "unsubscribed",
            "2": "bounced",
            "3": "blocked",
            "0": ACTIVE_MEANING,
        }
    )
}

_CLEVERREACH = _targets(
    {
        "activated": h.CONFIRMED_AT,
        "registered": h.ADDED_AT,
        "deactivated": h.SIGNOFF_AT,
        "bounced": h.OPTOUT_REASON,
        "source": IGNORE,
        "salutation": IGNORE,
    }
)
_CLEVERREACH_WORDS = {
    # an empty activation date: the double opt-in was never confirmed
    normalize_header("activated"): {"": "unconfirmed"},
    # a bounce count: the reason of a receiver CleverReach deactivated, nothing more
    normalize_header("bounced"): {word_key("0"): NO_STATEMENT, ANY_WORD: f"{IF_OFF}bounced"},
}

_BREVO = _targets(
    {
        "EMAIL_BLACKLISTED": h.BLOCKED,
        "ADDED_TIME": h.ADDED_AT,
        "MODIFIED_TIME": IGNORE,
        "SMS_BLACKLISTED": IGNORE,
    }
)

PROFILES: tuple[Profile, ...] = (
    Profile(
        "mailchimp",
        "Mailchimp",
        _l("unsubscribed members"),
        _norm("Email Address", "UNSUB_TIME"),
        meanings=_MAILCHIMP_REASONS,
        **_MAILCHIMP,
    ),
    Profile(
        "mailchimp",
        "Mailchimp",
        _l("cleaned members"),
        _norm("Email Address", "CLEAN_TIME"),
        **_MAILCHIMP,
    ),
    Profile(
        "mailchimp",
        "Mailchimp",
        _l("subscribed members"),
        _norm("Email Address", "OPTIN_TIME", "CONFIRM_TIME"),
        **_MAILCHIMP,
    ),
    Profile(
        "listmonk",
        "listmonk",
        _l("subscribers"),
        _norm("uuid", "email", "name", "attributes", "status"),
        _LISTMONK,
    ),
    Profile(
        "mautic",
        "Mautic",
        _l("“Do Not Contact” report"),
        _norm("Email", "DNC Reason"),
        _MAUTIC_DNC,
        _MAUTIC_DNC_WORDS,
    ),
    Profile(
        "mautic",
        "Mautic",
        _l("contacts"),
        _norm("email", "firstname", "lastname", "preferred_locale", "attribution_date"),
        _MAUTIC_CONTACTS,
        date_zone="UTC",
        note=_l(
            "Mautic’s contact export does not say who asked not to be contacted. Export "
            "a report of the “Do Not Contact” source as well and import it after this "
            "file, so that those people are signed off here too."
        ),
    ),
    Profile(
        "cleverreach",
        "CleverReach",
        _l("receivers"),
        _norm("email", "activated", "registered", "deactivated"),
        _CLEVERREACH,
        _CLEVERREACH_WORDS,
    ),
    Profile(
        "brevo",
        "Brevo",
        _l("contacts"),
        _norm("EMAIL", "EMAIL_BLACKLISTED"),
        _BREVO,
    ),
    Profile(
        "salesmanago",
        "SALESmanago",
        _l("contacts"),
        _norm("Adres e-mail", "Imię i nazwisko", "Opt-out"),
    ),
)

PORTAL = Profile("portal", "Recipient portal", _l("backup or export"))
# The reason column of the portal's own files, in every language it writes (headers.
# REASON_WORDS): each word is read back as exactly that reason - "imported" too, which
# no other list uses.
PORTAL_REASONS = {
    word_key(word): reason for words in h.REASON_WORDS.values() for reason, word in words.items()
}
_PORTAL_REASON_AT = str(PORTAL_HEADER.index(h.OPTOUT_REASON))


@dataclass
class Recognised:
    """What a profile makes of a header: one target per column, the meanings of words
    and the date formats by column position (as the import job keeps them)."""

    profile: Profile | None
    targets: list[str]
    meanings: dict[str, dict[str, str]]
    date_formats: dict[str, str]
    date_zone: str


def recognise(header: list[str], suggested: list[str]) -> Recognised:
    """Apply the profile the header matches (if any) to the suggested mapping."""
    if portal_language(header) is not None:
        return Recognised(PORTAL, suggested, {_PORTAL_REASON_AT: dict(PORTAL_REASONS)}, {}, "")
    names = [normalize_header(column) for column in header]
    profile = next((p for p in PROFILES if p.matches(set(names))), None)
    if profile is None:
        return Recognised(None, suggested, {}, {}, "")
    targets = [
        profile.targets.get(name, target) for name, target in zip(names, suggested, strict=True)
    ]
    meanings = {
        str(i): dict(profile.meanings[name])
        for i, name in enumerate(names)
        if name in profile.meanings
    }
    formats = {
        str(i): profile.date_formats[name]
        for i, name in enumerate(names)
        if name in profile.date_formats
    }
    return Recognised(profile, unique_targets(targets), meanings, formats, profile.date_zone)


def by_key(key: str, header: list[str]) -> Profile | None:
    """The profile an import was recognised as (for its page)."""
    if not key:
        return None
    if key == PORTAL.key:
        return PORTAL
    names = {normalize_header(column) for column in header}
    return next((p for p in PROFILES if p.key == key and p.matches(names)), None)
