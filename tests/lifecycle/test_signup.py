"""The public sign-up form /f/<token>: localized, protected against forged posts and
bots, rate-limited, and with double opt-in — only the confirmation link adds the person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine

from portal.contacts.models import Contact, Group, Subscription
from portal.extensions import db, limiter
from portal.lifecycle.models import SignupRequest
from portal.mail import outbox_messages


def _token(app, group_id: int) -> str:
    with app.app_context():
        return db.session.get(Group, group_id).signup_token


def _form_key(page: str) -> str:
    return re.search(r'name="form_key" type="hidden" value="([^"]+)"', page).group(1)


def _sign_up(client, token, email, *, lang="en", **extra):
    page = client.get(f"/f/{token}?lang={lang}").get_data(as_text=True)
    data = {
        "email": email,
        "first_name": "Zoë",
        "last_name": "Łukasiewicz",
        "form_key": _form_key(page),
    }
    data.update(extra)
    return client.post(f"/f/{token}?lang={lang}", data=data)


def _confirm_link(app) -> str:
    with app.app_context():
        body = outbox_messages()[-1].get_content()
    return re.search(r"http://localhost(/f/\S+/confirm/\S+)", body).group(1)


def test_the_form_speaks_the_visitors_language_and_only_the_link_adds_the_person(app, data, client):
    group = data.group("Newsletter")
    token = _token(app, group)
    anonymous = app.test_client()
    page = anonymous.get(f"/f/{token}", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert '<html lang="pl">' in page and "Newsletter" in page
    response = _sign_up(anonymous, token, "Zoe@Example.com", lang="de")
    assert response.status_code == 200
    assert "bitte sehen Sie in Ihrem Posteingang nach" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Contact)) is None  # not before the click
        message = outbox_messages()[-1]
        assert message["To"] == "zoe@example.com" and message["Content-Language"] == "de"
        # the group in the subject, the customer's name as the sender (issue 17, point 10)
        assert message["Subject"] == "Bitte bestätigen Sie Ihre Anmeldung zu „Newsletter“"
        assert message["From"].startswith("Acme <") and "@" in message["From"]

    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2)):
        confirmed = anonymous.get(_confirm_link(app))
    assert confirmed.status_code == 200
    with app.app_context():
        contact = db.session.scalar(db.select(Contact))
        assert (contact.email, contact.first_name, contact.last_name) == (
            "zoe@example.com",
            "Zoë",
            "Łukasiewicz",
        )
        sub = db.session.scalar(db.select(Subscription))
        assert sub.active and sub.source == "form" and sub.group_id == group
        assert sub.confirmed_at - sub.activated_at >= timedelta(hours=1, minutes=59)
        assert sub.signup_ip == sub.confirm_ip == "127.0.0.1"
        request = db.session.scalar(db.select(SignupRequest))
        assert request.confirmed_at is not None  # used up; kept to answer a second click
        assert (request.first_name, request.last_name) == ("", "")
    # a second click says so and changes nothing
    again = anonymous.get(_confirm_link(app))
    assert again.status_code == 200
    assert "Your sign-up is already confirmed." in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 1


def test_an_expired_link_adds_nobody(app, data):
    group = data.group("Newsletter")
    anonymous = app.test_client()
    _sign_up(anonymous, _token(app, group), "late@example.com")
    link = _confirm_link(app)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=8)):
        response = anonymous.get(link)
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Contact)) is None


def test_a_deleted_contact_comes_back_through_the_form(app, data):
    group = data.group("Newsletter")
    cid = data.contact("back@example.com", "Ada", "", deleted=True)
    anonymous = app.test_client()
    _sign_up(anonymous, _token(app, group), "back@example.com")
    anonymous.get(_confirm_link(app))
    with app.app_context():
        contact = db.session.get(Contact, cid)
        assert contact.status == "active" and contact.deleted_at is None
        assert (
            contact.first_name == "Ada" and contact.last_name == "Łukasiewicz"
        )  # only gaps filled


def test_a_contact_made_meanwhile_is_subscribed_not_refused(app, data, look_up_misses_once):
    """The address became a contact (another form's link, the API) after the confirmation
    looked it up and found nobody: the click runs again and subscribes that contact."""
    group = data.group("Newsletter")
    anonymous = app.test_client()
    _sign_up(anonymous, _token(app, group), "both@example.com")
    cid = data.contact("both@example.com", "", "")
    response = anonymous.get(_confirm_link(app))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(look_up_misses_once) == 2
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 1
        contact = db.session.get(Contact, cid)
        assert contact.first_name == "Zoë"  # the form's name fills the gap
        sub = db.session.scalar(db.select(Subscription))
        assert sub.contact_id == cid and sub.group_id == group and sub.active
        assert db.session.scalar(db.select(SignupRequest)).confirmed_at is not None


def test_bots_forged_posts_and_stale_pages_are_turned_away(app, data):
    group = data.group("Newsletter")
    token = _token(app, group)
    anonymous = app.test_client()
    # the honeypot: looks like success, sends nothing
    response = _sign_up(anonymous, token, "bot@example.com", website="http://spam.example")
    assert response.status_code == 200
    # no form key (a post that did not come from our form)
    forged = anonymous.post(f"/f/{token}", data={"email": "x@example.com"})
    assert forged.status_code == 400
    # from another site's page
    page = anonymous.get(f"/f/{token}").get_data(as_text=True)
    cross = anonymous.post(
        f"/f/{token}",
        data={"email": "x@example.com", "form_key": _form_key(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 400
    # a key for another group's form
    other = data.group("Other")
    other_page = anonymous.get(f"/f/{_token(app, other)}").get_data(as_text=True)
    swapped = anonymous.post(
        f"/f/{token}", data={"email": "x@example.com", "form_key": _form_key(other_page)}
    )
    assert swapped.status_code == 400
    with app.app_context():
        assert outbox_messages() == [] and db.session.scalar(db.select(SignupRequest)) is None


def test_invalid_address_is_explained_and_unknown_form_is_a_404(app, data):
    group = data.group("Newsletter")
    anonymous = app.test_client()
    response = _sign_up(anonymous, _token(app, group), "not-an-address", lang="it")
    assert response.status_code == 422
    assert anonymous.get("/f/does-not-exist").status_code == 404


def test_one_address_gets_at_most_three_mails_a_day(app, data):
    group = data.group("Newsletter")
    token = _token(app, group)
    for _ in range(5):
        limiter.reset()
        assert _sign_up(app.test_client(), token, "many@example.com").status_code == 200
    with app.app_context():
        assert len(outbox_messages()) == 3


def test_the_form_is_rate_limited_per_ip(app, data):
    app.config["SIGNUP_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    try:
        group = data.group("Newsletter")
        token = _token(app, group)
        anonymous = app.test_client()
        answers = [_sign_up(anonymous, token, f"p{i}@example.com") for i in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        # the refusal shows inside the customer's iframe too
        assert "X-Frame-Options" not in answers[-1].headers
    finally:
        app.config["SIGNUP_RATE_LIMIT"] = "5 per minute;30 per hour"
        limiter.reset()


def test_the_form_may_be_framed_by_the_customers_site_but_portal_pages_not(app, data, client):
    group = data.group("Newsletter")
    token = _token(app, group)
    form = app.test_client().get(f"/f/{token}?embed=1")
    assert "frame-ancestors *" in form.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in form.headers
    portal_page = client.get(f"/a/acme/groups/{group}")
    assert portal_page.headers["X-Frame-Options"] == "DENY"


def test_the_group_page_shows_the_form_link_and_the_snippet_and_a_new_link_retires_the_old(
    app, data, client
):
    group = data.group("Newsletter")
    token = _token(app, group)
    page = client.get(f"/a/acme/groups/{group}").get_data(as_text=True)
    assert f"http://localhost/f/{token}" in page
    snippet = re.search(
        r'id="signup-snippet" rows="3" readonly>(.*?)</textarea>', page, re.S
    ).group(1)
    assert "&lt;iframe" in snippet and f"/f/{token}?embed=1" in snippet
    client.post(f"/a/acme/groups/{group}/form-link")
    assert app.test_client().get(f"/f/{token}").status_code == 404
    assert app.test_client().get(f"/f/{_token(app, group)}").status_code == 200
