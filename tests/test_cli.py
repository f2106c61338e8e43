"""Operator commands: flask --app app portal ..."""

from __future__ import annotations

from portal.accounts.models import Account, Membership, User
from portal.extensions import db
from tests.helpers.auth import login


def test_create_account_and_user_from_the_cli(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "portal",
            "create-account",
            "--name",
            "Bäckerei Müller",
            "--slug",
            "baeckerei",
            "--locale",
            "de",
        ]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "Chef@Baeckerei.example",
            "--password",
            "ein-langes-passwort",
            "--account",
            "baeckerei",
            "--role",
            "admin",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == "baeckerei"))
        assert account.name == "Bäckerei Müller" and account.default_locale == "de"
        membership = db.session.scalar(db.select(Membership))
        assert membership.role == "admin" and membership.user.email == "chef@baeckerei.example"
    assert login(client, "chef@baeckerei.example", "ein-langes-passwort").status_code == 302


def test_create_user_as_staff(app):
    result = app.test_cli_runner().invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "help@portal.example",
            "--password",
            "support-password",
            "--staff",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(db.select(User)).is_staff is True


def test_cli_refuses_bad_input_with_a_message(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "create-account", "--name", "X", "--slug", "Not OK!"])
    assert result.exit_code != 0
    assert "lowercase letters" in result.output
    result = runner.invoke(
        args=["portal", "create-user", "--email", "a@b.example", "--password", "short"]
    )
    assert result.exit_code != 0 and "at least 10 characters" in result.output
    result = runner.invoke(
        args=[
            "portal",
            "create-user",
            "--email",
            "a@b.example",
            "--password",
            "long-enough-1",
            "--account",
            "nope",
        ]
    )
    assert result.exit_code != 0 and "No account" in result.output


def test_seed_demo_creates_the_documented_logins_and_is_idempotent(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["portal", "seed-demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["portal", "seed-demo"])
    assert second.exit_code == 0 and "already present" in second.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Account.id))) == 2
    for email, password, slug in [
        ("owner@example.com", "portal-demo", "demo"),
        ("owner@other.example", "portal-other", "other"),
    ]:
        response = login(client, email, password)
        assert response.headers["Location"].endswith(f"/a/{slug}/")
        client.post("/logout")
    assert login(client, "support@example.com", "portal-support").status_code == 302
    client.post("/logout")
    login(client, "owner@example.com", "portal-demo")
    assert client.get("/a/other/").status_code == 404
