"""Browser tests: the session `app` served by a real HTTP server in a thread, driven by
Debian's Chromium through Playwright (plain `playwright.sync_api`, no pytest plugin).

Playwright's own browser download cannot work on our machines, so the tests use the
Chromium that apt installs (`apt-get install chromium`). Without it the tests are skipped
locally and fail in CI (CI=true), so that a broken CI image can never pass silently."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal.config import ROOT

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


@pytest.fixture(scope="session")
def _server_thread(app):
    """One real HTTP server for the whole session, on a free port of 127.0.0.1."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def live_server(app, _server_thread):
    """Base URL of the live server. The test app has SERVER_NAME="localhost", which would
    make external url_for() builds point elsewhere; the browser talks to 127.0.0.1:<port>,
    so SERVER_NAME is unset while a browser test runs and restored afterwards (the server
    thread outlives the test, the override does not)."""
    saved = app.config.get("SERVER_NAME")
    app.config["SERVER_NAME"] = None
    try:
        yield _server_thread
    finally:
        app.config["SERVER_NAME"] = saved


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
