"""Which language and timezone a request speaks, and formatting helpers.

Order for the language: ?lang= (remembered in the session, for this browser session
only) -> the user's preference (the profile) -> the browser's Accept-Language -> the
account default -> en."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from flask import current_app, g, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "it": "Italiano",
    "nl": "Nederlands",
    "pl": "Polski",
}

COMMON_TIMEZONES = (
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Warsaw",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "UTC",
)


def supported() -> tuple[str, ...]:
    return current_app.config["SUPPORTED_LOCALES"]


def is_valid_timezone(name: str) -> bool:
    return name in available_timezones()


def remember_requested_language() -> None:
    """before_request hook: a ?lang= choice is kept in the session, for this browser
    session only. The profile's language is the user's own setting and changes only on
    the profile page: a link with ?lang= (from a colleague, a mail, a bookmark) must not
    rewrite it — nor may a GET write to the database at all."""
    lang = request.args.get("lang")
    if lang and lang in supported():
        session["lang"] = lang


# The locale that formats dates and numbers for a language: English readers here are
# in Europe, so dates are day first (British English: 05/12/2026, 14:30), not US style.
FORMAT_LOCALES = {"en": "en_GB"}


def formatting_locale(language: str) -> str:
    """The Babel locale for a language: its catalog is the language's, its dates the
    region's (en -> en_GB)."""
    return FORMAT_LOCALES.get(language, language)


def select_locale() -> str:
    return formatting_locale(_select_language())


def _select_language() -> str:
    if not has_request_context():  # CLI and jobs: callers use force_locale()
        return "en"
    lang = request.args.get("lang")
    if lang in supported():
        return lang
    if (lang := session.get("lang")) and lang in supported():
        return lang
    if current_user and current_user.is_authenticated and current_user.locale in supported():
        return current_user.locale
    best = request.accept_languages.best_match(supported())
    if best:
        return best
    account = g.get("account") or g.get("public_account")
    if account is not None and account.default_locale in supported():
        return account.default_locale
    return "en"


def select_timezone() -> str:
    if not has_request_context():
        return "UTC"
    if current_user and current_user.is_authenticated and current_user.timezone:
        return current_user.timezone
    account = g.get("account") or g.get("public_account")
    if account is not None:
        return account.timezone
    return "UTC"


def current_timezone() -> ZoneInfo:
    return ZoneInfo(select_timezone())


def current_language() -> str:
    """The page's language (en, de, …): the locale without its region."""
    locale = get_locale()
    return locale.language if locale is not None else "en"
