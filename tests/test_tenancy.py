"""A member of one account never reaches another account's pages."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role
from tests.helpers.auth import login

TENANT_GETS = ["/a/{slug}/", "/a/{slug}/settings", "/a/{slug}/settings/team"]
TENANT_POSTS = [
    "/a/{slug}/settings",
    "/a/{slug}/settings/team",
    "/a/{slug}/settings/team/{mid}/role",
    "/a/{slug}/settings/team/{mid}/remove",
]


@pytest.fixture
def two_tenants(app, make_account, make_user, client):
    from portal.accounts.models import Membership
    from portal.extensions import db

    a = make_account("alpha")
    b = make_account("beta")
    make_user("a@alpha.example", a, Role.OWNER)
    make_user("b@beta.example", b, Role.OWNER)
    with app.app_context():
        mid = db.session.scalar(db.select(Membership.id).where(Membership.account_id == b))
    login(client, "a@alpha.example")
    return {"slug": "beta", "mid": mid}


@pytest.mark.parametrize("path", TENANT_GETS)
def test_other_tenants_pages_are_404(client, two_tenants, path):
    assert client.get(path.format(**two_tenants)).status_code == 404


@pytest.mark.parametrize("path", TENANT_POSTS)
def test_other_tenants_writes_are_404(client, two_tenants, path):
    response = client.post(path.format(**two_tenants), data={"role": "viewer", "name": "x"})
    assert response.status_code == 404


def test_own_membership_id_through_other_account_is_404(app, client, two_tenants):
    """An id of my own account used under another slug must not resolve."""
    from portal.accounts.models import Membership
    from portal.extensions import db

    with app.app_context():
        mine = db.session.scalar(
            db.select(Membership.id).where(Membership.account_id != 0).order_by(Membership.id)
        )
    assert client.post(f"/a/beta/settings/team/{mine}/remove").status_code == 404


def test_unknown_account_is_404_like_a_foreign_one(client, two_tenants):
    assert client.get("/a/does-not-exist/").status_code == 404


def test_anonymous_visitors_are_sent_to_login(app):
    client = app.test_client()
    response = client.get("/a/beta/settings")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_staff_are_not_members_by_default(client, make_account, make_user):
    a = make_account("alpha")
    make_user("owner@alpha.example", a, Role.OWNER)
    make_user("staff@portal.example", is_staff=True)
    login(client, "staff@portal.example")
    assert client.get("/a/alpha/").status_code == 404


def test_every_table_of_a_tenant_is_tenant_owned():
    """A new table with an account's rows gets the one column, relationship and owned_by
    of TenantOwned — not a hand-written account_id that tenancy.owned would not know."""
    import portal.models  # noqa: F401  (every area's tables)
    from portal.database import TenantOwned
    from portal.extensions import db

    owned_tables = {
        mapper.class_.__table__.name
        for mapper in db.Model.registry.mappers
        if issubclass(mapper.class_, TenantOwned)
    }
    with_account = {
        table.name
        for table in db.metadata.tables.values()
        if "account_id" in table.c and not table.c.account_id.nullable
    }
    assert with_account == owned_tables
    assert len(owned_tables) >= 21


def test_owned_finds_only_the_given_accounts_row(app, make_account):
    from portal.contacts import service as contacts
    from portal.contacts.models import Group
    from portal.extensions import db
    from portal.tenancy import owned

    alpha, beta = make_account("alpha"), make_account("beta")
    with app.app_context():
        from portal.accounts.models import Account

        a, b = db.session.get(Account, alpha), db.session.get(Account, beta)
        group = contacts.create_group(a, "Newsletter", actor=None, source="ui")
        db.session.commit()
        assert owned(Group, group.id, a) is group and group.account is a
        assert owned(Group, group.id, b) is None
        for impossible in (str(group.id) + "x", -1, 2**70, None, True):
            assert owned(Group, impossible, a) is None
        assert owned(Group, str(group.id), a) is group  # an id from a form or a URL
