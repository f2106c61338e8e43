"""seed-demo fills the demo account; the bench generator builds large accounts."""

from __future__ import annotations

from portal.accounts.models import Account
from portal.contacts import demo
from portal.contacts.models import Activity, Contact, CustomField, Group, Subscription, Tag
from portal.database_setup import planned_rows
from portal.extensions import db
from tests.helpers.auth import login


def _count(model, account_id, column=None):
    column = column if column is not None else model.id
    return db.session.scalar(db.select(db.func.count(column)).where(model.account_id == account_id))


def test_seed_demo_fills_the_demo_account_once(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "seed-demo", "--contacts", "300"])
    assert result.exit_code == 0, result.output
    assert "300 contacts in demo" in result.output
    with app.app_context():
        demo_id = db.session.scalar(db.select(Account.id).where(Account.slug == "demo"))
        assert _count(Contact, demo_id) == 300
        names = {
            g.name for g in db.session.scalars(db.select(Group).where(Group.account_id == demo_id))
        }
        assert {"Newsletter", "Kunden", "Webinar"} <= names
        assert _count(CustomField, demo_id) == 4
        assert _count(Activity, demo_id) > 0
        tags = set(db.session.scalars(db.select(Tag.name).where(Tag.account_id == demo_id)))
        assert {"Rückruf", "Übersee", "Łódź"} <= tags
        reasons = set(
            db.session.scalars(
                db.select(Subscription.optout_reason).where(Subscription.active.is_(False))
            )
        )
        assert {"unsubscribed", "bounced"} <= reasons
        signed_off = db.session.scalars(
            db.select(Subscription).where(Subscription.active.is_(False))
        ).all()
        assert all(s.deactivated_at and s.deactivated_at > s.activated_at for s in signed_off)
        text = " ".join(
            f"{c.first_name} {c.last_name}"
            for c in db.session.scalars(db.select(Contact).where(Contact.account_id == demo_id))
        )
        for letter in "üößłęò":
            assert letter in text
        assert (
            db.session.scalar(
                db.select(db.func.count(Contact.id)).where(Contact.status == "deleted")
            )
            > 0
        )
        first = db.session.scalar(db.select(Contact).order_by(Contact.id))
        assert first.search_name == " ".join(
            part for part in (demo.fold(first.first_name), demo.fold(first.last_name)) if part
        )
    again = runner.invoke(args=["portal", "seed-demo"])
    assert again.exit_code == 0 and "already present" in again.output
    with app.app_context():
        assert _count(Contact, demo_id) == 300
    login(client, "owner@example.com", "portal-demo")
    html = client.get("/a/demo/contacts", query_string={"q": "Größ"}).get_data(as_text=True)
    assert "contact-row" in html


def test_seed_is_deterministic(app):
    from portal.accounts import service as accounts

    with app.app_context():
        a = accounts.create_account("A", "seed-a")
        b = accounts.create_account("B", "seed-b")
        db.session.commit()
        demo.seed_demo_contacts(a, 50, seed=5)
        demo.seed_demo_contacts(b, 50, seed=5)

        def names(account):
            return list(
                db.session.execute(
                    db.select(Contact.first_name, Contact.last_name, Contact.email)
                    .where(Contact.account_id == account.id)
                    .order_by(Contact.id)
                )
            )

        assert names(a) == names(b)


def test_bench_account_builds_a_large_account(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["portal", "bench-account", "--slug", "bench", "--contacts", "2500", "--batch", "1000"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        bench_id = db.session.scalar(db.select(Account.id).where(Account.slug == "bench"))
        assert _count(Contact, bench_id) == 2500
        assert _count(Group, bench_id) == 20
        assert _count(Subscription, bench_id) >= 2500
    result = runner.invoke(args=["portal", "bench-account", "--contacts", "500"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _count(Contact, bench_id) == 3000
        emails = db.session.scalar(db.select(db.func.count(db.distinct(Contact.email))))
        assert emails == 3000


def test_a_large_account_is_known_to_the_planner_straight_away(app):
    """PostgreSQL: right after the bulk load the planner's statistics count the new
    account (without them a group count took over 30 minutes for 100,000 contacts)."""
    runner = app.test_cli_runner()
    runner.invoke(args=["portal", "bench-account", "--slug", "first", "--contacts", "300"])
    result = runner.invoke(
        args=["portal", "bench-account", "--slug", "second", "--contacts", "3000"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        second = db.session.scalar(db.select(Account.id).where(Account.slug == "second"))
        if db.engine.dialect.name != "postgresql":
            assert _count(Contact, second) == 3000  # SQLite keeps no statistics to check
            return
        with db.engine.connect() as conn:
            assert planned_rows(conn, "contacts", "account_id = :a", {"a": second}) >= 2_700
