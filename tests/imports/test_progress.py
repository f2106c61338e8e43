"""The import's progress (issue 17, point 8): after the check the bar of the run starts at
0 and only moves forward, names its phase (waiting, backup, import) and says how many
lines of how many are done and about how long the rest takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from portal.extensions import db
from portal.imports import queries, service
from portal.imports.models import ImportStatus
from portal.imports.views import detail_text
from tests.imports.conftest import configured_import, write_csv


def test_the_run_after_a_check_starts_at_0_names_its_phase_and_moves_forward(
    app, account, group, tmp_path
):
    rows = [["email"]] + [[f"p{i}@example.com"] for i in range(10)]
    job = configured_import(account, group, write_csv(tmp_path / "l.csv", rows))
    service.check(job)
    assert (job.status, queries.percent(job)) == (ImportStatus.READY, 100)

    seen = []
    job.status = ImportStatus.QUEUED.value
    seen.append((queries.phase(job), queries.percent(job)))
    job.status = ImportStatus.RUNNING.value
    seen.append((queries.phase(job), queries.percent(job)))  # the backup comes first
    job.backup_id = 1
    start = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    job.started_at = start
    for merged in (0, 4, 10):
        job.merged_line = merged + 1 if merged else 0  # lines count the header
        seen.append((queries.phase(job), queries.percent(job)))
    assert [p for p, _ in seen] == ["queued", "backup", "import", "import", "import"]
    percents = [p for _, p in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100

    job.merged_line = 6  # half of the 11 lines, after 10 s: about 10 s left
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        progress = queries.progress(job)
        assert progress["rows_done"] == 6 and progress["rows_total"] == 11
        assert 5 <= progress["eta_seconds"] <= 10
        with app.test_request_context("/?lang=de"):
            text = detail_text(progress)
    assert text.startswith("Import läuft · 6 von 11 Zeilen · noch etwa ")
    db.session.rollback()
