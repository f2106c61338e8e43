"""Which language a page speaks, in which order the choices win, and plural forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale, format_datetime, ngettext

from portal.accounts.models import Account, Role, User
from portal.extensions import db
from tests.helpers.auth import login

SIGN_IN = {"en": "Sign in", "de": "Anmelden", "it": "Accedi", "nl": "Inloggen", "pl": "Zaloguj się"}


def _heading(html: str) -> str:
    start = html.index('<h1 class="h3 mb-3">') + len('<h1 class="h3 mb-3">')
    return html[start : html.index("</h1>", start)].strip()


@pytest.mark.parametrize("lang", SIGN_IN)
def test_login_page_in_each_language_by_parameter(client, lang):
    html = client.get(f"/login?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert _heading(html) == SIGN_IN[lang]


@pytest.mark.parametrize("lang", SIGN_IN)
def test_login_page_follows_the_browser_language(client, lang):
    html = client.get("/login", headers={"Accept-Language": f"{lang},en;q=0.5"}).get_data(
        as_text=True
    )
    assert f'<html lang="{lang}">' in html
    assert _heading(html) == SIGN_IN[lang]


def test_chosen_language_is_remembered_in_the_session(client):
    client.get("/login?lang=pl")
    html = client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert _heading(html) == SIGN_IN["pl"]


@pytest.mark.parametrize("profile", ["de", None])
def test_chosen_language_is_for_this_session_only_and_the_profile_keeps_its_own(
    app, client, make_account, make_user, profile
):
    """Issue 16, point 13: ?lang= on a GET changes the language of this session; the
    profile's setting (or its "Automatic") stays, and the next sign-in speaks it."""
    make_user("owner@acme.example", make_account("acme"), Role.OWNER, locale=profile)
    login(client, "owner@acme.example")
    assert '<html lang="it">' in client.get("/a/acme/?lang=it").get_data(as_text=True)
    assert '<html lang="it">' in client.get("/a/acme/").get_data(as_text=True)  # this session
    with app.app_context():
        assert db.session.scalar(db.select(User.locale)) == profile
    other = app.test_client()
    login(other, "owner@acme.example")
    html = other.get("/a/acme/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert f'<html lang="{profile or "nl"}">' in html
    profile_page = client.get("/profile").get_data(as_text=True)
    language = re.search(r'<select[^>]*name="locale".*?</select>', profile_page, re.S).group(0)
    assert f'<option selected value="{profile or ""}">' in language, "the saved setting shows"


def test_the_profile_page_changes_the_language_for_good(app, client, owner):
    client.post("/profile", data={"name": "", "locale": "pl", "timezone": ""})
    with app.app_context():
        assert db.session.scalar(db.select(User.locale)) == "pl"
    other = app.test_client()
    login(other, "owner@acme.example")
    assert '<html lang="pl">' in other.get("/a/acme/").get_data(as_text=True)


def test_users_preference_beats_the_browser(app, client, make_account, make_user):
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id, Role.OWNER, locale="nl")
    login(client, "owner@acme.example")
    html = client.get("/a/acme/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="nl">' in html


def test_account_default_when_nothing_else_is_known(app, client, make_account, make_user):
    account_id = make_account("acme", default_locale="pl")
    make_user("owner@acme.example", account_id, Role.OWNER)
    login(client, "owner@acme.example")
    html = client.get("/a/acme/").get_data(as_text=True)  # no Accept-Language at all
    assert '<html lang="pl">' in html
    with app.app_context():
        assert db.session.get(Account, account_id).default_locale == "pl"


def test_polish_plural_forms_follow_the_rules(app):
    with app.test_request_context(), force_locale("pl"):
        one = ngettext("%(num)d contact matches.", "%(num)d contacts match.", 1)
        few = {
            ngettext("%(num)d contact matches.", "%(num)d contacts match.", k).split(" ", 1)[1]
            for k in (2, 3, 4, 22, 23, 24)
        }
        many = {
            ngettext("%(num)d contact matches.", "%(num)d contacts match.", k).split(" ", 1)[1]
            for k in (5, 11, 12, 13, 14, 25, 100)
        }
    assert len(few) == 1 and len(many) == 1
    assert one.split(" ", 1)[1] not in few | many
    assert few != many


def test_dates_are_formatted_in_the_chosen_language(app):
    moment = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    with app.test_request_context():
        with force_locale("de"):
            assert "März" in format_datetime(moment, "long")
        with force_locale("pl"):
            assert "marca" in format_datetime(moment, "long")
        with force_locale("it"):
            assert "marzo" in format_datetime(moment, "long")
        with force_locale("nl"):
            assert "maart" in format_datetime(moment, "long")


def test_english_dates_are_day_first_as_in_europe(app, client, owner):
    """en is British English for dates and times (05/12/2026, 14:30), not US style;
    the page still says lang="en"."""
    from datetime import UTC, datetime

    from portal import i18n

    with app.test_request_context("/?lang=en"):
        assert i18n.current_language() == "en"
        assert format_datetime(datetime(2026, 12, 5, 14, 30, tzinfo=UTC), "short").startswith(
            "05/12/2026"
        )
    page = client.get("/a/acme/?lang=en").get_data(as_text=True)
    assert '<html lang="en"' in page
