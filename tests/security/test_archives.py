"""Hostile export packages (the ZIP that "import into another account" takes): a zip
bomb or a manifest of the wrong shape is refused with a clear, translated message and
nothing is imported - never a crash or a process that unpacks gigabytes into memory."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from portal.imports.models import ImportJob

HEADER = "email,first_name,last_name,tags,active,signup_at,signoff_at,optout_reason\r\n"


def _package(files: dict[str, bytes], manifest) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(name, data)
        package.writestr("manifest.json", json.dumps(manifest))
    out.seek(0)
    return out


def _upload(client, package):
    return client.post(
        "/a/acme/integrations/import-package",
        data={"file": (package, "export.zip")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _imports(app) -> int:
    from portal.extensions import db

    with app.app_context():
        return len(db.session.scalars(db.select(ImportJob.id)).all())


def test_a_zip_bomb_is_refused_before_it_is_unpacked(app, owner, client):
    bomb = HEADER.encode() + b"a" * (64 * 1024 * 1024)  # 64 MB that packs into ~64 KB
    manifest = {"format": "recipient-portal-export", "version": 1, "groups": {"g.csv": "G"}}
    response = _upload(client, _package({"g.csv": bomb}, manifest))
    assert response.status_code == 200
    assert "unpacks to an unreasonable size" in response.get_data(as_text=True)
    assert _imports(app) == 0


@pytest.mark.parametrize(
    "manifest",
    [
        ["not", "an", "object"],
        {"groups": ["g.csv"]},
        {"groups": {"g.csv": 7}},
        {"groups": {}, "fields": "city"},
        {"groups": {}, "fields": [{"key": ["x"]}]},
    ],
    ids=["list", "groups-list", "group-name-number", "fields-text", "field-key-list"],
)
def test_a_manifest_of_the_wrong_shape_is_refused(app, owner, client, manifest):
    response = _upload(client, _package({"g.csv": (HEADER + "a@b.example\r\n").encode()}, manifest))
    assert response.status_code == 200, response.status_code
    assert "This is not an export of the recipient portal." in response.get_data(as_text=True)
    assert _imports(app) == 0


def test_a_real_package_still_imports(app, owner, client):
    manifest = {"format": "recipient-portal-export", "version": 1, "groups": {"g.csv": "Shop"}}
    rows = (HEADER + "anna@b.example,Anna,,,yes,,,\r\n").encode()
    response = _upload(client, _package({"g.csv": rows}, manifest))
    assert response.status_code == 200
    assert _imports(app) == 1
