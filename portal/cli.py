"""`flask --app app portal <command>`: what an operator needs."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from portal.accounts import service as accounts
from portal.accounts.models import Account, Role, User
from portal.api import service as api_keys
from portal.backups.retention import remove_expired
from portal.config import check_suppression_key
from portal.contacts import demo
from portal.core import move, privacy, storage
from portal.extensions import db
from portal.jobs import service as jobs

portal_cli = AppGroup("portal", help="Recipient portal operator commands.")

DEMO_LOGINS = (
    ("demo", "owner@example.com", "portal-demo"),
    ("other", "owner@other.example", "portal-other"),
)
STAFF_LOGIN = ("support@example.com", "portal-support")


def _fail(exc: Exception) -> None:
    db.session.rollback()
    raise click.ClickException(str(exc))


@portal_cli.command("create-account")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@click.option("--timezone", default="Europe/Berlin", show_default=True)
@click.option(
    "--locale",
    "default_locale",
    default="en",
    show_default=True,
    type=click.Choice(["en", "de", "it", "nl", "pl"]),
)
def create_account_cmd(name: str, slug: str, timezone: str, default_locale: str) -> None:
    """Create an account (tenant)."""
    try:
        account = accounts.create_account(
            name, slug, timezone=timezone, default_locale=default_locale
        )
    except accounts.ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"Account {account.slug} created (id {account.id}).")


@portal_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--account", "account_slug", help="Slug of the account to join.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.OWNER.value,
    show_default=True,
)
@click.option("--staff", is_flag=True, help="Support staff (may open the support console).")
def create_user_cmd(
    email: str, password: str, name: str, account_slug: str | None, role: str, staff: bool
) -> None:
    """Create a user, optionally as a member of an account."""
    account = None
    if account_slug:
        account = db.session.scalar(db.select(Account).where(Account.slug == account_slug))
        if account is None:
            raise click.ClickException(f"No account with slug {account_slug!r}.")
    try:
        user = accounts.create_user(email, password, name=name, is_staff=staff)
        if account is not None:
            accounts.add_member(account, user, role)
    except accounts.ServiceError as exc:
        _fail(exc)
    db.session.commit()
    where = f" as {role} of {account.slug}" if account else ""
    click.echo(f"User {user.email} created{where}{' (staff)' if staff else ''}.")


def seed_demo_data(contacts: int = 1000) -> list[str]:
    """Create the demo accounts and logins of DESIGN.md; existing ones are kept.
    The demo account gets `contacts` recipients (with groups, tags, custom fields and
    activities) unless it has contacts already; the other account a few."""
    created = []
    names = {
        "demo": ("Demo GmbH", "Europe/Berlin", "de"),
        "other": ("Other B.V.", "Europe/Amsterdam", "nl"),
    }
    for slug, email, password in DEMO_LOGINS:
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        if account is None:
            name, tz, locale = names[slug]
            account = accounts.create_account(name, slug, timezone=tz, default_locale=locale)
            created.append(f"account {slug}")
        user = accounts.find_user_by_email(email)
        if user is None:
            user = accounts.create_user(email, password, name="Demo owner")
            created.append(f"user {email}")
        if not any(m.account_id == account.id for m in user.memberships):
            accounts.add_member(account, user, Role.OWNER)
        wanted = contacts if slug == "demo" else 25
        if wanted and demo.seed_demo_contacts(account, wanted, seed=len(slug)):
            created.append(f"{wanted} contacts in {slug}")
    email, password = STAFF_LOGIN
    if accounts.find_user_by_email(email) is None:
        accounts.create_user(email, password, name="Support", is_staff=True)
        created.append(f"user {email}")
    db.session.commit()
    return created


@portal_cli.command("seed-demo")
@click.option(
    "--contacts",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Number of demo contacts (only when the demo account has none yet).",
)
def seed_demo_cmd(contacts: int) -> None:
    """Create the demo accounts, logins and recipients (idempotent)."""
    created = seed_demo_data(contacts)
    click.echo("Created: " + ", ".join(created) if created else "Demo data already present.")
    print_demo_logins()


def print_demo_logins() -> None:
    click.echo("Demo logins (development only):")
    for slug, email, password in DEMO_LOGINS:
        click.echo(f"  account {slug:<6} {email} / {password}")
    click.echo(f"  support staff  {STAFF_LOGIN[0]} / {STAFF_LOGIN[1]}")


@portal_cli.command("bench-account")
@click.option("--slug", default="bench", show_default=True)
@click.option("--contacts", "n", default=1_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--groups", "group_count", default=20, show_default=True, type=click.IntRange(1))
@click.option("--activities", default=0.5, show_default=True, help="Activities per contact.")
@click.option("--batch", default=20_000, show_default=True, type=click.IntRange(min=100))
def bench_account_cmd(slug: str, n: int, group_count: int, activities: float, batch: int) -> None:
    """Build (or grow) a large account for benchmarks, with bulk inserts."""

    account = db.session.scalar(db.select(Account).where(Account.slug == slug))
    if account is None:
        account = accounts.create_account(f"Benchmark {slug}", slug)
        db.session.commit()
    started = time.perf_counter()

    def progress(done: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-6)
        click.echo(f"  {done:>10,} / {n:,} contacts  ({rate:,.0f}/s)")

    demo.build_large_account(
        account, n, group_count=group_count, activities=activities, batch=batch, progress=progress
    )
    click.echo(f"Account {slug}: {n:,} contacts added in {time.perf_counter() - started:.1f} s.")


@portal_cli.command("demo-logins")
def demo_logins_cmd() -> None:
    """Print the development logins of the demo data."""
    print_demo_logins()


@portal_cli.command("is-empty")
def is_empty_cmd() -> None:
    """Exit 0 when the database has no users yet (used by `make run`)."""
    count = db.session.scalar(db.select(db.func.count(User.id)))
    raise SystemExit(0 if count == 0 else 1)


@portal_cli.command("cleanup")
def cleanup_cmd() -> None:
    """Remove expired invitations now (the cron job does it nightly)."""
    click.echo(f"Removed {jobs.cleanup_expired()} expired invitation(s).")


@portal_cli.command("backups-cleanup")
def backups_cleanup_cmd() -> None:
    """Remove expired backups now (the cron job does it daily)."""
    click.echo(f"Removed {remove_expired()} expired backup(s).")


# what one file of an area is called in the report of move-files
_FILE_NOUNS = {"backups": "backup", "uploads": "upload", "exports": "export", "outbox": "mail"}


@portal_cli.command("move-files")
@click.option("--to", "target", required=True, type=click.Choice(storage.STORES))
@click.option(
    "--from",
    "source",
    type=click.Choice(storage.STORES),
    help="Where the files are now (default: FILE_STORE, or the folder when that is --to).",
)
def move_files_cmd(target: str, source: str | None) -> None:
    """Move every file the portal keeps (backups, uploads, exports, the outbox) into
    another store: each copy verified by its sha256 before the original is deleted; run
    it again to continue after an interruption."""

    configured = current_app.config["FILE_STORE"]
    if source is None:
        source = configured if configured != target else storage.FOLDER
        if source == target:
            source = storage.DATABASE
    if source == target:
        raise click.ClickException("--from and --to name the same store.")
    try:
        results = move.move_all(
            lambda area: (storage.storage_named(source, area), storage.storage_named(target, area))
        )
    except storage.StorageError as exc:  # no bucket, server unreachable: run it again later
        raise click.ClickException(str(exc)) from exc
    trouble = False
    for area, counts in results.items():
        noun = _FILE_NOUNS.get(area, area)
        click.echo(
            f"Moved {counts.moved} {noun} file(s) from the {source} store to the {target} "
            f"store; {counts.already_there} already there, {counts.missing} missing, "
            f"{counts.damaged} damaged (left in the {source} store)."
        )
        if counts.without_row:
            click.echo(
                f"{counts.without_row} file(s) in the {source} store belong to no {noun} "
                "(the daily retention run removes them)."
            )
        trouble = trouble or bool(counts.missing or counts.damaged)
    if configured != target:
        click.echo(f"Set FILE_STORE={target} so that the portal reads them there.")
    if trouble:
        raise SystemExit(1)


@portal_cli.command("create-api-key")
@click.option("--account", "account_slug", required=True, help="Slug of the account.")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    required=True,
    help="read: reads only; write: reads and writes.",
)
@click.option("--name", default="CLI", show_default=True, help="Where the key is used.")
def create_api_key_cmd(account_slug: str, scope: str, name: str) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    account = db.session.scalar(db.select(Account).where(Account.slug == account_slug))
    if account is None:
        raise click.ClickException(f"No account with slug {account_slug!r}.")
    try:
        key, plain = api_keys.create_key(account, name=name, scope=scope, actor=None, source="cli")
    except accounts.ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"API key {key.name!r} ({scope}) for {account.slug}, shown only this once:")
    click.echo(plain)


@portal_cli.command("rekey-suppressions")
@click.option(
    "--new-key",
    help="64 hex digits (32 random bytes); a random key when left out.",
)
def rekey_suppressions_cmd(new_key: str | None) -> None:
    """Move the suppression list (hashes of forgotten addresses) to a new key.

    The only safe way to change SUPPRESSION_KEY: every stored hash is re-hashed with the
    new key in one transaction, and the key becomes the chain "<old>:<new>" (the list
    has no addresses to hash afresh). With the key in instance/suppression_key the file
    is replaced; with SUPPRESSION_KEY in the environment the new value is printed and
    must be set on every web and worker process — until then they refuse every
    suppression check rather than let a forgotten person back in."""

    if new_key is not None:
        value = check_suppression_key(new_key)
        if ":" in value:
            raise click.BadParameter("one key of 64 hex digits", param_hint="--new-key")
        key = bytes.fromhex(value)
    else:
        key = secrets.token_bytes(32)
    in_environment = bool(os.environ.get("SUPPRESSION_KEY"))
    path = Path(current_app.instance_path) / "suppression_key"
    try:
        new_value, moved = privacy.rekey(key)
    except privacy.SuppressionKeyMismatch as exc:
        _fail(exc)
    pending = path.with_name("suppression_key.new")
    if not in_environment:  # written before the commit: a crash between leaves both
        pending.write_text(new_value)
        pending.chmod(0o600)
    db.session.commit()
    current_app.config["SUPPRESSION_KEY"] = new_value
    click.echo(f"{moved} suppression entr{'y' if moved == 1 else 'ies'} moved to the new key.")
    if in_environment:
        click.echo("Set this SUPPRESSION_KEY on every web and worker process and restart them:")
        click.echo(new_value)
    else:
        os.replace(pending, path)
        click.echo(f"The new key is in {path}.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(portal_cli)
