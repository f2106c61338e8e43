"""Staff speak the five languages too: the console follows ?lang= like every page, its
texts go through the catalogs, and its audit sentences are told in the reader's language."""

from __future__ import annotations

import pytest
from flask_babel import force_locale, gettext

from portal.config import SUPPORTED_LOCALES
from tests.support.conftest import open_account


def _catalog(app, lang: str, message: str) -> str:
    with app.test_request_context("/"), force_locale(lang):
        return gettext(message)


@pytest.mark.parametrize("lang", SUPPORTED_LOCALES)
def test_console_pages_speak_the_chosen_language(app, acme, staff_client, lang):
    open_account(staff_client, "acme")
    for path in ("/support/", "/support/accounts/acme/", "/support/accounts/acme/audit"):
        html = staff_client.get(f"{path}?lang={lang}").get_data(as_text=True)
        assert f'<html lang="{lang}">' in html
        assert _catalog(app, lang, "Support console") in html
    banner = staff_client.get(f"/support/accounts/acme/?lang={lang}").get_data(as_text=True)
    assert _catalog(app, lang, "Close access") in banner
    assert _catalog(app, lang, "Sign out") in banner
    if lang != "en":  # a string the catalogs already have: proof the page is translated
        assert _catalog(app, lang, "Sign out") != "Sign out"


def test_audit_sentences_follow_the_reader(app, acme, staff_client, owner_client):
    open_account(staff_client, "acme", "Ticket 8")
    english = owner_client.get("/a/acme/settings?lang=en").get_data(as_text=True)
    assert "Support accessed your account. Reason: Ticket 8" in english
    german = owner_client.get("/a/acme/settings?lang=de").get_data(as_text=True)
    sentence = _catalog(
        app, "de", "Support accessed your account. Reason: %(reason)s (access until %(until)s)"
    )
    assert sentence.split("%(reason)s")[0] in german
