"""A stored upload or export whose bytes changed after it was written is refused by
every read (its sha256 no longer matches its row), on whichever store the database
makes the default: the export does not download (410, like an expired one), the
import fails instead of reading changed data."""

from __future__ import annotations

import pytest

from portal.core.storage import FileDamaged
from portal.extensions import db
from portal.imports import files as upload_files
from portal.imports import service as imports
from portal.imports.models import ImportJob, ImportStatus
from portal.integrations import export
from portal.integrations.models import ExportRun
from tests.backups.stores import damage
from tests.imports.conftest import configured_import, write_csv


def test_a_damaged_export_is_not_handed_out(app, data, client):
    group = data.group("Newsletter")
    data.contact("anna@example.com", groups=(group,))
    response = client.post(
        "/a/acme/integrations/exports", data={"format": "csv", "group": str(group)}
    )
    download = f"{response.location}/download"
    assert client.get(download).status_code == 200
    with app.app_context():
        run = db.session.scalar(db.select(ExportRun))
        damage(export.store(), run.path, at=5)

    answer = client.get(download)
    assert answer.status_code == 410 and b"anna@example.com" not in answer.data


def test_a_damaged_upload_fails_its_import_instead_of_being_read(account, group, tmp_path):
    path = write_csv(tmp_path / "list.csv", [["email"], ["anna@example.com"]])
    job = configured_import(account, group, path)
    damage(upload_files.store(), job.stored_path, at=8)

    with pytest.raises(FileDamaged):
        imports.check(job)
    job = db.session.get(ImportJob, job.id)
    assert job.status == ImportStatus.FAILED and "checksum" in job.error
    assert job.created == 0 and job.rows_valid == 0
