"""The import's progress page in each of the five languages (issue 17, point 8): after
the check, the run waits for a worker with its own bar at 0 and its phase named in the
reader's language, with a screenshot per language."""

from __future__ import annotations

import re

from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from tests.e2e.conftest import OWNER, sign_in
from tests.e2e.test_journeys import WORKER_TIMEOUT_MS, _csv_file, _upload_and_map

LANGUAGES = ("en", "de", "it", "nl", "pl")


def _words(app, lang: str) -> dict[str, str]:
    with app.test_request_context(), force_locale(lang):
        return {
            "queued": gettext("Waiting for a worker"),
            "status": gettext("Queued"),
        }


def test_the_waiting_run_is_named_in_every_language(
    app, owner, newsletter, async_live_server, page, rq_worker, tmp_path, screenshot
):
    base = async_live_server
    sign_in(page, base, OWNER)
    _upload_and_map(page, base, _csv_file(tmp_path, n_new=40, encoding="utf-8-sig"))
    checker = rq_worker()
    expect(page.locator("#dry-run [data-count=created]")).to_have_text(
        "40", timeout=WORKER_TIMEOUT_MS
    )
    assert checker.wait(timeout=WORKER_TIMEOUT_MS / 1000) == 0
    page.locator("#start-button").click()
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "queued")
    url = page.url.split("?")[0]

    for lang in LANGUAGES:
        words = _words(app, lang)
        if lang != "en":  # the catalogs are real: no English left on this page
            assert words["queued"] != "Waiting for a worker", lang
        page.goto(f"{url}?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("#import-status-text")).to_have_text(words["status"])
        expect(page.locator("#import-detail")).to_have_text(words["queued"])
        # the run's own bar starts from 0, not from the check's 100
        expect(page.locator("#import-progress-bar")).to_have_attribute("value", "0")
        screenshot(page, f"-{lang}")

    rq_worker()
    expect(page.locator("main h1")).to_have_text(re.compile(r"\S"), timeout=WORKER_TIMEOUT_MS)
    expect(progress).to_have_count(0, timeout=WORKER_TIMEOUT_MS)  # the summary replaces it
