"""Formula injection: no cell of any CSV the portal writes starts with = + - @ tab or CR
(portal/safe_csv.py puts a quote before them). Values that start so are in every text
column (address, names, tags, custom fields, import header and data cells); then every
CSV a user can download is fetched - the failed-rows report (comma and semicolon), the
backup (portal and API, with and without forgotten addresses filtered out, which are two
code paths, and on PostgreSQL the database writes the lines itself), the export of a group
(CSV) and of everything (ZIP of CSVs), the account's log of support access - and every
cell is checked.

A new csv.writer or text/csv in portal/ fails test_every_csv_writer_is_known until it is
added here."""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from pathlib import Path

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import Role
from portal.api import service as api_keys
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.imports import service as imports
from portal.integrations import export
from portal.lifecycle import service as lifecycle
from portal.safe_csv import TRIGGERS
from tests.helpers.auth import PASSWORD, login
from tests.security.conftest import clean_database, new_client

ROOT = Path(__file__).resolve().parents[2]
FORMULAS = ["=1+2", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\t=1+2", "\r=1+2", '=HYPERLINK("x")']
# where the portal writes CSV (grep for csv.writer and text/csv); each is fetched below
KNOWN_CSV_WRITERS = {
    "portal/imports/views.py": 1,  # failed-rows report
    "portal/backups/read.py": 2,  # filtered download, restore file
    "portal/backups/snapshot.py": 2,  # snapshot (Python; PostgreSQL head line)
    "portal/excel_csv.py": 2,  # backups and exports for Excel (writer + content type)
    "portal/integrations/export.py": 1,  # group CSV, also inside the ZIP
    "portal/api/endpoints_imports.py": 2,  # JSON rows -> import file (guarded), OpenAPI media
    "portal/support/account_views.py": 1,  # the account's log of support access
}


def test_every_csv_writer_is_known():
    found = {}
    for path in sorted((ROOT / "portal").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        count = len(re.findall(r"csv\.writer\(|csv\.DictWriter\(|text/csv", text))
        if count:
            found[str(path.relative_to(ROOT))] = count
    assert found == KNOWN_CSV_WRITERS, "a new CSV writer: add its file to this test"


def _upload(rows, delimiter=",") -> Path:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    path = Path(tempfile.mkdtemp(prefix="portal-formula-")) / "upload.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _import(account, owner, group, rows, delimiter=","):
    job = imports.create_import(
        account,
        actor=owner,
        group=group,
        source_path=_upload(rows, delimiter),
        filename="l.csv",
        source="ui",
    )
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    db.session.commit()
    imports.run(job, actor=owner)
    db.session.commit()
    return job


def _build(app) -> dict:
    with app.test_request_context():
        account = accounts.create_account("Formula", "formula")
        owner = accounts.create_user("owner@formula.example", PASSWORD)
        accounts.add_member(account, owner, Role.OWNER)
        contact_fields.create_custom_field(account, "city", "City", "text", source="ui")
        group = contacts.create_group(account, "Newsletter", actor=owner, source="ui")
        db.session.flush()
        for i, value in enumerate(FORMULAS):
            contact = contacts.create_contact(
                account,
                f"{'=+-'[i % 3]}user{i}@formula.example",
                first_name=value,
                last_name=value,
                fields={"city": value},
                source="ui",
            )
            contacts.subscribe(contact, group, source="ui")
            contacts.add_tag(contact, value, actor=owner, source="ui")
        forget_me = contacts.create_contact(account, "forget@formula.example", source="ui")
        contacts.subscribe(forget_me, group, source="ui")
        db.session.commit()
        header = ["email", "first_name", *FORMULAS]
        bad_rows = [[f"{v}bad", v, *FORMULAS] for v in FORMULAS]  # not addresses: reported
        comma = _import(account, owner, group, [header, ["ok@formula.example", "Ok"], *bad_rows])
        semicolon = _import(account, owner, group, [header, *bad_rows], delimiter=";")
        assert comma.backup_id and semicolon.delimiter == ";"
        csv_export = export.start(account, fmt="csv", group=group, actor=owner)
        zip_export = export.start(account, fmt="csv", group=None, actor=owner)
        _, key = api_keys.create_key(account, name="Shop", scope="read", actor=owner, source="ui")
        for value in FORMULAS:  # staff labels and reasons are text others typed
            db.session.add(
                AuditEvent(
                    account_id=account.id,
                    actor_type="staff",
                    actor_label=value,
                    action="support.access_opened",
                    details={"reason": value, "until": "x"},
                )
            )
        db.session.commit()
        export.run(csv_export)
        export.run(zip_export)
        return {
            "account_id": account.id,
            "forget_me": forget_me.id,
            "imports": [comma.id, semicolon.id],
            "backup": comma.backup_id,
            "exports": [csv_export.id, zip_export.id],
            "key": key,
        }


@pytest.fixture(scope="module")
def built(request, app):
    clean_database(app)
    ids = _build(app)
    request.module._shared_world = True
    owner = new_client(app)
    assert login(owner, "owner@formula.example").status_code == 302
    yield ids, owner
    request.module._shared_world = False
    clean_database(app)


def _cells(text: str, delimiter: str = ",") -> list[str]:
    return [
        cell
        for row in csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
        for cell in row
    ]


def assert_guarded(cells: list[str], *, raw: bool = False):
    """No cell starts with a trigger, and every formula is there with its guard (names,
    tags and fields are stored stripped of leading blanks; the report keeps raw cells)."""
    bad = [c for c in cells if c.startswith(TRIGGERS)]
    assert not bad, f"cells a spreadsheet would run: {bad[:10]}"
    for value in FORMULAS:
        stored = value if raw else value.strip()
        assert "'" + stored in cells, f"{stored!r} is missing"


@pytest.mark.parametrize("which", [0, 1], ids=["comma", "semicolon"])
def test_the_failed_rows_report_is_guarded(built, which):
    ids, owner = built
    response = owner.get(f"/a/formula/imports/{ids['imports'][which]}/problems.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    delimiter = ";" if which else ","
    cells = _cells(response.get_data(as_text=True), delimiter)
    assert len(cells) > 2 * len(FORMULAS)
    assert_guarded(cells, raw=True)


def _backup_downloads(ids, owner):
    """The portal's and the API's download, each read to the end before the next
    request (the file is streamed inside its request)."""
    texts = []
    response = owner.get(f"/a/formula/backups/{ids['backup']}/download")
    assert response.status_code == 200
    texts.append(response.get_data(as_text=True))
    response = new_client(owner.application).get(
        f"/api/v1/backups/{ids['backup']}/download",
        headers={"Authorization": f"Bearer {ids['key']}"},
    )
    assert response.status_code == 200
    texts.append(response.get_data(as_text=True))
    return [_cells(text) for text in texts]


def test_the_backup_download_is_guarded(built):
    ids, owner = built
    for cells in _backup_downloads(ids, owner):
        assert_guarded(cells)


def test_exports_are_guarded_csv_and_every_file_of_the_zip(built):
    ids, owner = built
    response = owner.get(f"/a/formula/integrations/exports/{ids['exports'][0]}/download")
    assert response.status_code == 200
    assert_guarded(_cells(response.get_data(as_text=True)))
    response = owner.get(f"/a/formula/integrations/exports/{ids['exports'][1]}/download")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as package:
        names = [n for n in package.namelist() if n.endswith(".csv")]
        assert len(names) >= 2  # the group's file and no-group.csv
        cells = [c for n in names for c in _cells(package.read(n).decode("utf-8"))]
    assert_guarded(cells)


def test_the_log_of_support_access_is_guarded(built):
    _ids, owner = built
    response = owner.get("/a/formula/settings/support.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    cells = _cells(response.get_data(as_text=True))
    assert len(cells) >= 4 * len(FORMULAS)
    assert_guarded(cells, raw=True)


def test_the_backup_download_without_forgotten_addresses_is_guarded(built, app):
    """Last: a "forget me" makes every later download filter the file (another path)."""
    from portal.accounts.models import Account
    from portal.contacts.models import Contact

    ids, owner = built
    with app.app_context():
        contact = db.session.get(Contact, ids["forget_me"])
        lifecycle.forget_contact(contact, actor=None, source="ui")
        db.session.commit()
        assert db.session.get(Account, ids["account_id"]) is not None
    for cells in _backup_downloads(ids, owner):
        assert "forget@formula.example" not in cells
        assert_guarded(cells)
