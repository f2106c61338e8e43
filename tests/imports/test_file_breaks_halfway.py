"""A file that stops being readable halfway: the import fails with a message that names
the line, and what came before it is kept for a re-run."""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.imports import reader, service
from portal.imports.models import ImportStatus
from tests.imports.conftest import configured_import, contact_state


def test_a_file_that_breaks_its_encoding_halfway_fails_with_the_line_and_keeps_what_came_before(
    app, account, group, tmp_path
):
    """The first 256 KB decide the encoding (UTF-8 here); a cp1252 "ü" far below that is
    found only while importing, and its message — with the line — becomes the import's
    error (kept as a code, so each reader gets it in their language). The batches before
    it stay staged (the checkpoint), and no contact is half-merged."""
    lines = ["email,first_name"] + [f"p{i}@example.de,Jürgen" for i in range(12_000)]
    lines[11_000] = "broken@example.de,M\xfcller"
    path = tmp_path / "halfway.csv"
    body = "\n".join(lines).encode("utf-8").replace("M\xfcller".encode(), b"M\xfcller")
    path.write_bytes(body)
    assert path.stat().st_size > reader.SAMPLE_BYTES
    before = app.config["IMPORT_BATCH_ROWS"]
    app.config["IMPORT_BATCH_ROWS"] = 1_000
    try:
        job = configured_import(account, group, path)
        with pytest.raises(reader.FileProblem):
            service.run(job)
    finally:
        app.config["IMPORT_BATCH_ROWS"] = before
    db.session.expire_all()
    assert job.status == ImportStatus.FAILED.value
    assert not service.can_resume(job)  # the same bytes would stop it again
    found = re.search(r"not in the utf-8 encoding after line (\d+)", service.file_problem(job))
    assert found and 10_000 <= int(found.group(1)) <= 11_001  # the text is read in blocks
    assert 10_000 <= job.staged_line <= 11_001  # the batches before it are staged
    assert contact_state(account.id) == {}  # and no contact half-merged
