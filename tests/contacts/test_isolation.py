"""Tenant isolation of every contacts page and id: another account's page or id is a
404 (never a 403), for reading and for writing, and filters never reach across."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role
from portal.contacts.models import Contact, Group, Tag
from portal.extensions import db
from tests.helpers.auth import login

GETS = [
    "/a/{slug}/contacts",
    "/a/{slug}/contacts/{contact}",
    "/a/{slug}/groups",
    "/a/{slug}/groups/{group}",
    "/a/{slug}/groups/{group}/settings",
]
POSTS = [
    "/a/{slug}/contacts/{contact}/edit",
    "/a/{slug}/contacts/{contact}/tags",
    "/a/{slug}/contacts/{contact}/tags/{tag}/remove",
    "/a/{slug}/groups/new",
    "/a/{slug}/groups/{group}/rename",
    "/a/{slug}/groups/{group}/delete",
    "/a/{slug}/groups/{group}/settings",
]
# pages under my own account that carry an id of the other account
OWN_SLUG_FOREIGN_IDS = [
    ("get", "/a/beta/contacts/{contact}"),
    ("get", "/a/beta/groups/{group}"),
    ("get", "/a/beta/groups/{group}/settings"),
    ("post", "/a/beta/contacts/{contact}/edit"),
    ("post", "/a/beta/contacts/{contact}/tags"),
    ("post", "/a/beta/contacts/{contact}/tags/{tag}/remove"),
    ("post", "/a/beta/contacts/{own_contact}/tags/{tag}/remove"),
    ("post", "/a/beta/groups/{group}/rename"),
    ("post", "/a/beta/groups/{group}/delete"),
    ("post", "/a/beta/groups/{group}/settings"),
]
FORM = {
    "email": "hijack@example.com",
    "name": "Hijacked",
    "confirm": "y",
    "automatic_backups": "",
}


@pytest.fixture
def tenants(app, client, make_account, make_user, make_data):
    """Account alpha with data; the signed-in user owns beta (and has data there too)."""
    alpha, beta = make_account("alpha"), make_account("beta")
    make_user("a@alpha.example", alpha, Role.OWNER)
    make_user("b@beta.example", beta, Role.OWNER)
    a, b = make_data(alpha), make_data(beta)
    group = a.group("Alpha-Kunden")
    contact = a.contact("secret@alpha.example", "Geheim", groups=(group,), tags=("Alpha-Tag",))
    own_group = b.group("Beta-Gruppe")
    own_contact = b.contact("mine@beta.example", groups=(own_group,), tags=("Beta-Tag",))
    login(client, "b@beta.example")
    return {
        "slug": "alpha",
        "contact": contact,
        "group": group,
        "tag": a.tag_id("Alpha-Tag"),
        "own_contact": own_contact,
        "own_group": own_group,
        "alpha": alpha,
    }


def _alpha_unchanged(app, tenants):
    with app.app_context():
        contact = db.session.get(Contact, tenants["contact"])
        assert contact.email == "secret@alpha.example"
        assert [t.name for t in contact.tags] == ["Alpha-Tag"]
        group = db.session.get(Group, tenants["group"])
        assert group.name == "Alpha-Kunden" and group.automatic_backups is True
        assert (
            db.session.scalar(
                db.select(db.func.count(Group.id)).where(Group.account_id == tenants["alpha"])
            )
            == 1
        )


@pytest.mark.parametrize("path", GETS)
def test_other_accounts_pages_are_404(client, tenants, path):
    assert client.get(path.format(**tenants)).status_code == 404


@pytest.mark.parametrize("path", POSTS)
def test_other_accounts_writes_are_404(app, client, tenants, path):
    assert client.post(path.format(**tenants), data=FORM).status_code == 404
    _alpha_unchanged(app, tenants)


@pytest.mark.parametrize("method, path", OWN_SLUG_FOREIGN_IDS)
def test_other_accounts_ids_under_my_account_are_404(app, client, tenants, method, path):
    response = getattr(client, method)(path.format(**tenants), data=FORM)
    assert response.status_code == 404
    _alpha_unchanged(app, tenants)


def test_filters_with_other_accounts_ids_find_nothing(client, tenants):
    for args in (
        {"group": tenants["group"]},
        {"tag": tenants["tag"]},
        {"q": "secret"},
        {"q": "Geheim"},
    ):
        html = client.get("/a/beta/contacts", query_string=args).get_data(as_text=True)
        assert "secret@alpha.example" not in html and "0 contacts match." in html
    html = client.get("/a/beta/contacts").get_data(as_text=True)
    assert "mine@beta.example" in html and "Alpha-Tag" not in html
    assert "Alpha-Kunden" not in html  # not even in the group choices


def test_groups_page_shows_only_my_groups(client, tenants):
    html = client.get("/a/beta/groups").get_data(as_text=True)
    assert "Beta-Gruppe" in html and "Alpha-Kunden" not in html


def test_adding_a_tag_never_reuses_another_accounts_tag(app, client, tenants):
    client.post(f"/a/beta/contacts/{tenants['own_contact']}/tags", data={"name": "Alpha-Tag"})
    with app.app_context():
        tags = db.session.scalars(db.select(Tag).where(Tag.name == "Alpha-Tag")).all()
        assert len({t.account_id for t in tags}) == 2
        mine = db.session.get(Contact, tenants["own_contact"])
        assert {t.account_id for t in mine.tags} == {mine.account_id}


def test_the_same_email_may_live_in_two_accounts(app, tenants):
    from portal.accounts.models import Account
    from portal.contacts import service

    with app.app_context():
        beta = db.session.scalar(db.select(Account).where(Account.slug == "beta"))
        service.create_contact(beta, "Secret@Alpha.example", source="ui")
        db.session.commit()
        assert (
            db.session.scalar(
                db.select(db.func.count(Contact.id)).where(Contact.email == "secret@alpha.example")
            )
            == 2
        )


def test_anonymous_visitors_are_sent_to_sign_in(app, tenants):
    anonymous = app.test_client()
    for path in GETS:
        response = anonymous.get(path.format(**tenants))
        assert response.status_code == 302 and "/login" in response.headers["Location"]
