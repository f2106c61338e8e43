"""The translation gate, on rendered pages (issue 17, point 11 and "Proof"): every page a
person reaches — as the demo owner, as support staff and without signing in — and every
mail, rendered in every language, shows no unformatted placeholder: no "%(line)s" (a
msgstr or a gettext call whose arguments never reached it, as in "…in line %(line)s.: 1")
and no "{name}" (a msgstr written in str.format style).

The pages come from tests/site_walk.py, which follows links from the demo data in every
state, so a page added later is checked once something links to it. Templates the walk
does not reach are rendered directly (the mails) or must be named below with the page
that includes them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portal.config import ROOT
from tests.site_walk import (
    LANGUAGES,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    SLUG,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    build_scene,
    in_language,
    walk,
)

# Inline JSON, scripts and styles have braces of their own; the text a person reads
# is everything else. An attribute's value is text too (title, aria-label, value).
_CODE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_PERCENT = re.compile(r"%\(\w*\)?[sd]?|%[sd]\b")
_BRACES = re.compile(r"\{\s*[A-Za-z_][\w.]*\s*\}|\{\{|\}\}|\{%|%\}")


def leftovers(html: str) -> list[str]:
    """The unformatted placeholders in a page, each with a little text around it."""
    text = _CODE.sub(" ", html)
    found = []
    for pattern in (_PERCENT, _BRACES):
        for match in pattern.finditer(text):
            start, end = max(match.start() - 50, 0), match.end() + 30
            found.append(" ".join(text[start:end].split()))
    return found


# --- the checker itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<p>The address appears earlier in the file, in line %(line)s.: 1</p>",
        "<td>Zeile %(line)d</td>",
        "<span title='Hallo {name}'>x</span>",
        "<p>Importiert: { num }</p>",
        "<p>{{ contact.email }}</p>",
        "<p>%s Kontakte</p>",
    ],
)
def test_the_checker_finds_unformatted_placeholders(html):
    assert leftovers(html)


@pytest.mark.parametrize(
    "html",
    [
        '<script type="application/json">{"name": "x", "a": "%(b)s"}</script><p>ok</p>',
        "<style>.a { color: red }</style><p>50 % of {1, 2}</p>",
        "<p>Rabatt 20 %, Anteil 3 %s</p>".replace(" %s", " % s"),
        "<p>{}</p>",
    ],
)
def test_the_checker_leaves_real_text_alone(html):
    assert not leftovers(html)


# --- every page in every language --------------------------------------------------------


@contextmanager
def templates_loaded(app) -> Iterator[set[str]]:
    """The names of every template loaded while inside, includes and layouts too (the
    template_rendered signal names only the page's own template)."""
    env = app.jinja_env
    names: set[str] = set()
    real = env.get_template

    def get_template(name, *args, **kwargs):
        names.add(name if isinstance(name, str) else name.name)
        return real(name, *args, **kwargs)

    env.get_template = get_template
    try:
        yield names
    finally:
        del env.get_template


def _extra_pages(client, visitor: str, lang: str) -> dict[str, str]:
    """Pages no link leads to: the error page, and the staff's look-up (a POST, so that
    an address never ends up in a URL)."""
    pages = {}
    gone = "/f/no-such-form" if visitor == "public" else f"/a/{SLUG}/contacts/999999"
    missing = client.get(in_language(gone, lang))
    assert missing.status_code == 404
    pages["404"] = missing.get_data(as_text=True)
    if visitor == "staff":
        found = client.post(
            in_language("/support/lookup", lang),
            data={"email": "walk01@example.org", "reason": "Ticket #4711"},
        )
        assert found.status_code == 200
        pages["lookup walk01@example.org"] = found.get_data(as_text=True)
    return pages


@pytest.fixture(scope="module")
def walked(app, tmp_path_factory):
    """The scene walked by the owner, staff and a visitor: the discovery in English,
    then the same pages in the other languages. Returns ({(visitor, lang, path): html},
    the templates loaded, the outbox). Modules share the session app and the tables are
    emptied after each test, so everything is collected here, once."""
    from portal.extensions import db
    from portal.mail import outbox_messages

    saved = app.config.get("SERVER_NAME")
    app.config["SERVER_NAME"] = None
    try:
        with templates_loaded(app) as loaded:
            scene = build_scene(app, tmp_path_factory.mktemp("scene"))
            visitors = {
                "owner": (OWNER_EMAIL, OWNER_PASSWORD, scene.owner, None),
                "staff": (STAFF_EMAIL, STAFF_PASSWORD, scene.staff, "/support/"),
                "public": (None, None, scene.public, None),
            }
            pages = {}
            for visitor, (email, password, seeds, under) in visitors.items():
                client = app.test_client()
                if email:
                    response = client.post("/login", data={"email": email, "password": password})
                    assert response.status_code == 302, f"{visitor} could not sign in"

                def fetch(url, client=client):
                    response = client.get(in_language(url, "en"))
                    return response.status_code, response.get_data(as_text=True)

                found = walk(fetch, seeds, stay_under=under)
                for lang in LANGUAGES:
                    for path in found:
                        if lang == "en":
                            html = found[path]
                        else:
                            response = client.get(in_language(path, lang))
                            assert response.status_code == 200, (visitor, lang, path)
                            html = response.get_data(as_text=True)
                        pages[(visitor, lang, path)] = html
                    for label, html in _extra_pages(client, visitor, lang).items():
                        pages[(visitor, lang, label)] = html
            with app.app_context():
                outbox = [
                    (m["Subject"], m.get_body(("plain",)).get_content()) for m in outbox_messages()
                ]
        yield pages, loaded, outbox
    finally:
        app.config["SERVER_NAME"] = saved
        with app.app_context():
            db.session.remove()


@pytest.fixture(scope="module")
def scene_pages(walked):
    return walked[0]


def test_the_walk_reaches_the_pages_of_the_journeys(scene_pages):
    paths = {path.split("?")[0] for _visitor, _lang, path in scene_pages}
    home = f"/a/{SLUG}"
    for expected in (
        "/login",
        f"{home}/",
        f"{home}/contacts",
        f"{home}/groups",
        f"{home}/imports",
        f"{home}/imports/new",
        f"{home}/backups",
        f"{home}/settings",
        f"{home}/settings/team",
        f"{home}/settings/api",
        "/profile",
        "/profile/password",
        "/support/",
        f"/support/accounts/{SLUG}/audit",
    ):
        assert expected in paths, f"{expected} not reached; reached: {sorted(paths)}"
    assert any(re.fullmatch(rf"{home}/groups/\d+/settings", p) for p in paths)
    assert any(p.startswith("/f/") and "/confirm/" in p for p in paths)
    print(f"{len(scene_pages)} pages rendered ({len(paths)} paths, 5 languages)")


def test_every_template_is_rendered(walked):
    """A template that no page of the walk loads is not checked: then it needs a link
    from a page, a state in tests/site_walk.py, or a direct rendering here."""
    _pages, loaded, _outbox = walked
    root = ROOT / "templates"
    templates = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    mails = {t for t in templates if t.startswith("mail/")}  # test_no_mail_shows_...
    assert not templates - mails - loaded, sorted(templates - mails - loaded)


def test_no_page_shows_an_unformatted_placeholder(scene_pages):
    problems = {
        f"{visitor} {lang} {path}": found
        for (visitor, lang, path), html in scene_pages.items()
        if (found := leftovers(html))
    }
    assert not problems, problems


def test_every_page_speaks_its_language(scene_pages):
    wrong = [
        (visitor, lang, path)
        for (visitor, lang, path), html in scene_pages.items()
        if f'<html lang="{lang}"' not in html
    ]
    assert not wrong, wrong[:10]


def test_the_mails_of_the_walk_show_no_placeholder(walked):
    _pages, _loaded, outbox = walked
    assert len(outbox) >= 2  # the invitation and the sign-up confirmation
    problems = [(subject, leftovers(subject + "\n" + body)) for subject, body in outbox]
    assert not [p for p in problems if p[1]], problems


MAIL_SAMPLES = {
    "mail/password_reset.txt": {"user": {"display_name": "Jürgen Größ"}},
    "mail/invitation.txt": {
        "inviter": {"display_name": "Jürgen Größ"},
        "account": {"name": "Demo GmbH"},
        "role": "editor",
        "days": 7,
    },
    "mail/sender_confirm.txt": {"account": {"name": "Demo GmbH"}, "address": "a@example.org"},
    "mail/signup_confirm.txt": {
        "group": {"name": "Newsletter"},
        "account": {"name": "Demo GmbH"},
        "days": 1,
    },
}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_mail_shows_an_unformatted_placeholder(app, lang):
    """Every mail template, in every language, with sample values (one and many days)."""
    from flask import render_template
    from flask_babel import force_locale

    mails = {p.name for p in (ROOT / "templates" / "mail").iterdir()}
    assert {Path(name).name for name in MAIL_SAMPLES} == mails, "a mail without sample values"
    with app.test_request_context("/"), force_locale(lang):
        for name, context in MAIL_SAMPLES.items():
            for days in (1, 5):
                text = render_template(
                    name, link="https://portal.example/x", **(context | {"days": days})
                )
                assert "Größ" in text or "Demo GmbH" in text or "Hello" in text or lang != "en"
                assert not leftovers(text), (name, lang, leftovers(text))


def test_a_broken_msgstr_fails_the_gate(app, client, tmp_path, monkeypatch):
    """The proof, for "{": a German catalog whose translator wrote "{name}" (str.format
    style). The page renders without an error; only the rendered text shows it.
    (An unknown "%(x)s" in a template's msgstr is a server error, not a leak: Jinja's
    gettext always formats; test_placeholders_match refuses such a catalog.)"""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from babel.support import Translations
    from flask_babel import Domain

    catalog = Catalog(locale="de")
    catalog.add("Sign in", "Anmelden bei {name}")
    catalog.add("Forgot your password?", "Passwort vergessen? {link}")
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as fh:
        write_mo(fh, catalog)
    broken = Translations.load(str(tmp_path), ["de"])

    honest = client.get("/login?lang=de").get_data(as_text=True)
    assert "Anmelden" in honest and not leftovers(honest)
    monkeypatch.setattr(Domain, "get_translations", lambda self: broken)
    page = client.get("/login?lang=de").get_data(as_text=True)
    found = leftovers(page)
    assert any("Anmelden bei {name}" in text for text in found), found
    assert any("Passwort vergessen? {link}" in text for text in found), found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_gettext_call_without_its_arguments_fails_the_gate(app, tmp_path, monkeypatch, lang):
    """The proof, for "%(": the issue's "…in line %(line)s.: 1" came from a label made
    of a message with a placeholder, shown without its value. Put that mistake back
    into the import summary: the gate finds it in every language."""
    from portal.imports import reasons

    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    scene = build_scene(app, tmp_path, contacts=5)
    client = app.test_client()
    client.post("/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    summary = in_language(scene.named["import summary"], lang)
    honest = client.get(summary).get_data(as_text=True)
    assert not leftovers(honest)
    monkeypatch.setitem(reasons.SKIP_LABELS, "duplicate", reasons.MESSAGES["duplicate"])
    found = leftovers(client.get(summary).get_data(as_text=True))
    assert any(re.search(r"%\(line\)s\.?: 1", text) for text in found), found
