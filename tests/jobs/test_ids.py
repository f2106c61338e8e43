"""Every job the portal enqueues names its row the same way (portal/jobs/ids.py), so the
queues can be read and the failure callback finds the row it must mark failed."""

from __future__ import annotations

import re
from pathlib import Path

from portal.jobs.ids import job_id

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def test_a_job_id_names_the_kind_the_row_and_the_step():
    assert job_id("import", 12) == "import-12"
    assert job_id("import", 12, "run-100-40") == "import-12-run-100-40"
    assert job_id("lifecycle", 3, 0) == "lifecycle-3-0"  # a checkpoint of 0 is a step


def test_no_enqueue_writes_its_own_job_id():
    """A hand-written f"…-{id}" somewhere would be a second rule."""
    own = []
    for path in PORTAL.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"job_id=(f?\"|[a-z_]+\.rq_job_id)", line):
                own.append(f"{path.relative_to(PORTAL)}:{number}: {line.strip()}")
    assert own == []
