"""Browser tests: the session `app` served by a real HTTP server in a thread, driven by
Debian's Chromium through Playwright (plain `playwright.sync_api`, no pytest plugin).

Playwright's own browser download cannot work on our machines, so the tests use the
Chromium that apt installs (`apt-get install chromium`). Without it the tests are skipped
locally and fail in CI (CI=true), so that a broken CI image can never pass silently.

The session `app` runs its jobs synchronously (TESTING). Journeys that must see a job wait
for a worker use `async_live_server` (a second app on the same database and Redis whose
queues are asynchronous) and `rq_worker` (a real `flask --app app rq worker` process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from portal.accounts.models import Role
from portal.config import ROOT
from tests.helpers.apps import queued_twin
from tests.helpers.auth import PASSWORD

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = ROOT / "test-artifacts" / "screenshots"

# Without the background-networking flags Chromium keeps calling home, and on a closed
# network those connections are refused and slow everything down. --disable-dev-shm-usage
# keeps Chromium alive in containers with a small /dev/shm.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

TIMEOUT_MS = 15_000
# expect() waits as long as actions do (its own default is 5 s): on a busy 2-core CI machine
# a page can take longer than that, and a passing assertion returns at once anyway
expect.set_options(timeout=TIMEOUT_MS)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _require_chromium() -> None:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return
    message = (
        f"Chromium not found at {CHROMIUM}: browser tests need Debian's Chromium "
        "(apt-get install chromium chromium-driver)"
    )
    if _in_ci():
        pytest.fail(message + " — CI=true, so this is a failure, not a skip.", pytrace=False)
    pytest.skip(message)


@contextmanager
def serve(app, name: str = "e2e-live-server") -> Iterator[str]:
    """A real threaded HTTP server for `app` on a free port of 127.0.0.1; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def _server_thread(app):
    """One real HTTP server for the whole session."""
    with serve(app) as url:
        yield url


@pytest.fixture
def live_server(app, _server_thread):
    """Base URL of the live server. The test app has SERVER_NAME="localhost", which would
    make external url_for() builds point elsewhere; the browser talks to 127.0.0.1:<port>,
    so SERVER_NAME is unset while a browser test runs and restored afterwards (the server
    thread outlives the test, the override does not). Links in mails come from BASE_URL,
    which is the live server's address for the same time."""
    saved = app.config.get("SERVER_NAME"), app.config["BASE_URL"]
    app.config["SERVER_NAME"] = None
    app.config["BASE_URL"] = _server_thread
    try:
        yield _server_thread
    finally:
        app.config["SERVER_NAME"], app.config["BASE_URL"] = saved


@pytest.fixture
def async_app(app):
    """The app as the web process has it in production: jobs go to Redis and wait for a
    worker (flask-rq reads RQ_ASYNC; the session app runs them at once because of TESTING).
    Same database, Redis, secret key and outbox as the session app, so a session cookie
    of either server is good on the other."""
    keys = ("SECRET_KEY", "SUPPRESSION_KEY", "OUTBOX_DIR", "LOGIN_RATE_LIMIT")
    with queued_twin(app, keys, WTF_CSRF_ENABLED=True) as second:
        yield second


@pytest.fixture
def async_live_server(async_app):
    """Base URL of a live server for `async_app` (its own thread, for this test only)."""
    with serve(async_app, "e2e-async-live-server") as url:
        async_app.config["BASE_URL"] = url  # links in mails
        yield url


@pytest.fixture
def rq_worker(app, tmp_path):
    """start(**env) launches a real `flask --app app rq worker --burst` on the test
    database and Redis (it does what is queued, then exits). Its log is printed at the end
    (pytest shows it when the test fails); workers still running then are stopped."""
    workers: list[tuple[subprocess.Popen, Path]] = []

    def start(**extra_env: str) -> subprocess.Popen:
        env = dict(
            os.environ,
            DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
            REDIS_URL=app.config["REDIS_URL"],
            SECRET_KEY=app.config["SECRET_KEY"],
            SUPPRESSION_KEY=app.config["SUPPRESSION_KEY"],
            **extra_env,
        )
        log = tmp_path / f"worker-{len(workers)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "--burst"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append((process, log))
        return process

    yield start
    for process, log in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        print(f"--- worker {process.pid} (exit code {process.returncode}), {log}:")
        print(log.read_text()[-3000:])


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_context(browser):
    """Factory for fresh browser contexts (own cookies), English by default; all closed
    at the end of the test."""
    contexts = []

    def make(locale: str = "en-US"):
        context = browser.new_context(
            locale=locale,
            extra_http_headers={"Accept-Language": locale},
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def _artifact_name(nodeid_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid_name).strip("_") or "screenshot"


@pytest.fixture
def screenshot(request):
    """screenshot(page) saves test-artifacts/screenshots/<test-name>.png and prints the path."""

    def take(page, suffix: str = "") -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{_artifact_name(request.node.name)}{suffix}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    return take


@pytest.fixture
def page(new_context, screenshot, request):
    """A page in a fresh English context. If the test fails, the page is saved as
    test-artifacts/screenshots/<test-name>-failed.png for the CI log."""
    page = new_context().new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not page.is_closed():
        try:
            screenshot(page, "-failed")
        except Exception as exc:  # a screenshot must never hide the real failure
            print(f"could not save a failure screenshot: {exc}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person does: the browser carries the form's CSRF
    token and receives the session cookie."""
    page.goto(f"{base_url}/login")
    form = page.locator("main form[method=post]")
    expect(form.locator("input[name=csrf_token]")).to_have_count(1)
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()


# --- the owner of "acme" and the group of the journeys ------------------------------------

OWNER = "owner@acme.example"


@pytest.fixture
def owner(app, make_account, make_user):
    """Account "acme" (Berlin) and its owner; CSRF is on for the whole journey (the
    autouse fixture of tests/conftest.py switches it off again)."""
    app.config["WTF_CSRF_ENABLED"] = True
    account_id = make_account("acme", name="Acme GmbH", timezone="Europe/Berlin")
    make_user(OWNER, account_id, Role.OWNER)
    return account_id


@pytest.fixture
def owner_page(owner, live_server, page):
    sign_in(page, live_server, OWNER)
    expect(page).to_have_url(f"{live_server}/a/acme/")
    return page


@pytest.fixture
def newsletter(app, owner, make_data):
    """The group "Newsletter" with two contacts: Anna Alt and Jürgen Größ."""
    data = make_data(owner)
    group_id = data.group("Newsletter")
    signed_up = datetime(2026, 3, 17, 16, 45, tzinfo=UTC)
    anna = data.contact("anna@example.com", "Anna", "Alt", groups=(group_id,), signup_at=signed_up)
    jurgen = data.contact(
        "juergen@example.de", "Jürgen", "Größ", groups=(group_id,), signup_at=signed_up
    )
    return {"data": data, "group": group_id, "anna": anna, "jurgen": jurgen, "at": signed_up}
