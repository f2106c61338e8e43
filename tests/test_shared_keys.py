"""Secrets shared by all nodes (issue 18, point 2).

On PostgreSQL the portal may run on several machines, so every web, worker and cron
process must take SECRET_KEY and SUPPRESSION_KEY from the environment: without either,
it refuses to start with one line on stderr and a non-zero exit, instead of inventing a
key of its own in its instance folder. SQLite (one machine, `make run`) keeps generating
them there (tests/test_app.py, tests/lifecycle/test_suppression_key.py).

The `test_start_*` tests start real processes (marked slow in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal import create_app
from portal.accounts import service as accounts
from portal.config import ROOT, StartRefused, build_config
from portal.contacts import service as contacts
from portal.core import privacy
from portal.extensions import db
from portal.lifecycle import service as lifecycle
from tests.helpers.auth import login
from tests.workers import TEST_KEYS

# refused before any connection is made, so an address nobody listens on will do
# where the suite runs on SQLite
NOWHERE = "postgresql+psycopg://portal:portal@127.0.0.1:1/portal"
REFUSAL = "portal: refusing to start:"


def _postgresql(database_url: str) -> str:
    return database_url if database_url.startswith("postgresql") else NOWHERE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _role(role: str, port: int) -> list[str]:
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    return {
        "web (gunicorn)": [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}"]
        + ["app:app"],
        "web (flask run)": flask + ["run", "--port", str(port), "--no-reload"],
        "worker": flask + ["rq", "worker", "--burst"],
        "cron": flask + ["rq", "cron"],
        "make run": [sys.executable, "-m", "portal.launcher"],
    }[role]


def _env(database_url: str, redis_url: str, instance: Path, port: int, **keys: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TEST_KEYS}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        INSTANCE_PATH=str(instance),
        WEB_PORT=str(port),
        PYTHONUNBUFFERED="1",
        **keys,
    )
    return env


ROLES = ("web (gunicorn)", "web (flask run)", "worker", "cron", "make run")


# --- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SUPPRESSION_KEY"])
def test_postgresql_without_a_shared_key_is_refused(monkeypatch, tmp_path, missing):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", NOWHERE)
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    with pytest.raises(StartRefused, match=f"^{missing} not set: with DATABASE_URL on PostgreSQL"):
        build_config()
    assert list(tmp_path.iterdir()) == [], "no key may be invented into the instance folder"


def test_the_refusal_names_the_key_this_node_used_so_far(monkeypatch, tmp_path):
    """A single server upgraded to this version: its keys are in its instance folder;
    the line says where, so that the operator sets that value (and nobody forgotten
    comes back, nobody is signed out)."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    (tmp_path / "suppression_key").write_text("ab" * 32)
    monkeypatch.setenv("SECRET_KEY", "set")
    monkeypatch.delenv("SUPPRESSION_KEY", raising=False)
    with pytest.raises(StartRefused) as refused:
        build_config({"SQLALCHEMY_DATABASE_URI": NOWHERE})
    assert f"SUPPRESSION_KEY from {tmp_path / 'suppression_key'}" in str(refused.value)


def test_sqlite_still_keeps_its_keys_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name in TEST_KEYS:
        monkeypatch.delenv(name, raising=False)
    config = build_config()
    assert (tmp_path / "secret_key").read_text() == config["SECRET_KEY"]
    assert (tmp_path / "suppression_key").read_text() == config["SUPPRESSION_KEY"]


# --- two nodes, one set of keys ------------------------------------------------------------


@pytest.fixture
def node(database_url, redis_url, tmp_path, monkeypatch):
    """node(name): an app as a machine of its own runs it — its own instance folder,
    the keys from the environment only (none in the overrides)."""
    made = []

    def make(name: str):
        monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / name / "instance"))
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "REDIS_URL": redis_url,
                "WTF_CSRF_ENABLED": False,
                "SERVER_NAME": "localhost",
                "BASE_URL": "http://localhost",
            }
        )
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_two_nodes_with_the_same_environment_keys_work_as_one(node, monkeypatch, tmp_path):
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)
    a, b = node("a"), node("b")
    with a.app_context():
        account = accounts.create_account("Acme", "acme")
        user = accounts.create_user("owner@acme.example", "correct-horse-battery")
        accounts.add_member(account, user, "owner")
        contact = contacts.create_contact(account, "gone@example.com", source="ui")
        lifecycle.forget_contact(contact, actor=None, source="ui")
        db.session.commit()
        hash_on_a = privacy.email_hash("gone@example.com")

    # signed in on node A; the load balancer sends the next request to node B
    on_a = a.test_client()
    assert login(on_a, "owner@acme.example").status_code == 302
    on_b = b.test_client()
    on_b.set_cookie("session", on_a.get_cookie("session").value, domain="localhost")
    page = on_b.get("/a/acme/contacts")
    assert page.status_code == 200, "node B must accept the session node A signed"

    # a person forgotten through node A stays forgotten on node B
    with b.app_context():
        assert privacy.email_hash("gone@example.com") == hash_on_a
        assert lifecycle.is_forgotten(account_of("acme"), "gone@example.com")
        with pytest.raises(contacts.ContactForgotten):
            contacts.create_contact(account_of("acme"), "gone@example.com", source="ui")
        db.session.rollback()
    assert not any((tmp_path / n / "instance" / "suppression_key").exists() for n in "ab")


def account_of(slug: str):
    from portal.accounts.models import Account

    return db.session.scalar(db.select(Account).where(Account.slug == slug))


def test_without_shared_keys_two_instance_folders_mean_two_keys(monkeypatch, tmp_path):
    """What the refusal prevents: on SQLite every instance folder invents its own keys —
    right for one machine, wrong for two (so PostgreSQL does not allow it)."""
    for name in TEST_KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    configs = []
    for name in ("a", "b"):
        monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / name))
        configs.append(build_config())
    assert configs[0]["SECRET_KEY"] != configs[1]["SECRET_KEY"]
    assert configs[0]["SUPPRESSION_KEY"] != configs[1]["SUPPRESSION_KEY"]


# --- real processes ------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SUPPRESSION_KEY"])
@pytest.mark.parametrize("role", ROLES)
def test_start_without_a_key_on_postgresql_refuses_in_one_line(
    role, missing, database_url, redis_url, tmp_path
):
    port = _free_port()
    present = {k: v for k, v in TEST_KEYS.items() if k != missing}
    env = _env(_postgresql(database_url), redis_url, tmp_path / "instance", port, **present)
    started = subprocess.Popen(
        _role(role, port),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = started.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(started.pid, signal.SIGKILL)
        out, err = started.communicate()
        raise AssertionError(
            f"{role} kept running without {missing}:\n{out[-2000:]}{err[-2000:]}"
        ) from None
    assert started.returncode != 0
    refusals = [line for line in err.splitlines() if line.startswith(REFUSAL)]
    assert len(refusals) == 1, err
    assert refusals[0].startswith(f"{REFUSAL} {missing} not set"), refusals[0]
    assert "Traceback" not in out + err
    if role != "web (gunicorn)":  # gunicorn logs "Starting gunicorn" before its hook runs
        assert err.strip().splitlines() == refusals and out.strip() == ""
    assert not _listening(port), "nothing may answer on the web port"
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "suppression_key").exists()


@contextlib.contextmanager
def _running(args: list[str], env: dict, log: Path):
    with log.open("w") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _healthz(port: int) -> dict | None:
    import json

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return json.load(answer)
    except OSError:
        return None


@pytest.mark.parametrize("role", ["web (gunicorn)", "web (flask run)", "worker", "cron"])
def test_start_with_both_keys_on_postgresql(role, database_url, redis_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("needs TEST_DATABASE_URL on PostgreSQL (CI leg 2)")
    port = _free_port()
    env = _env(database_url, redis_url, tmp_path / "instance", port, **TEST_KEYS)
    log = tmp_path / "process.log"
    with _running(_role(role, port), env, log) as process:
        deadline = time.monotonic() + 60
        if role.startswith("web"):
            while (body := _healthz(port)) is None:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert body["db"] == "ok", body
        elif role == "worker":  # --burst: an empty queue, done
            assert process.wait(timeout=60) == 0, log.read_text()
        else:  # cron runs until stopped
            time.sleep(3)
            assert process.poll() is None, log.read_text()
    assert REFUSAL not in log.read_text()
    assert not (tmp_path / "instance" / "suppression_key").exists()
