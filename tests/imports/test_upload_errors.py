"""Clear upload errors (issue 16, point 10): a single 10 MB line was "the file is
empty" (or its next line silently became the column names), UTF-16 without a byte order
mark was "a binary file", and a file of 10,000 columns made a mapping page of 12.8 MB."""

from __future__ import annotations

import io

import pytest

from portal.extensions import db
from portal.imports import reader
from portal.imports import service as imports
from portal.imports.models import ImportJob
from tests.imports.conftest import contact_state

LIST = (
    "E-Mail;Vorname\r\nanna@example.com;Anna\r\nzoë@example.com;Zoë\r\nłucja@example.pl;Łucja\r\n"
)
TEN_MB = 10 * 1024 * 1024


def _upload(client, group_id, data: bytes, name: str = "liste.csv", lang: str = "en"):
    return client.post(
        f"/a/acme/imports/new?lang={lang}",
        data={"file": (io.BytesIO(data), name), "group": str(group_id)},
        content_type="multipart/form-data",
    )


def _imports(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(ImportJob.id)))


@pytest.mark.parametrize(
    "data",
    [
        b"x" * TEN_MB,  # one line, no line break at all
        b"email;" + b"y" * TEN_MB + b"\r\nanna@example.com;Anna\r\n",  # the header is it
    ],
    ids=["only-line", "header-line"],
)
def test_a_10_mb_line_is_too_long_not_empty(client, group_id, app, data):
    page = _upload(client, group_id, data).get_data(as_text=True)
    assert "Line 1 of the file is too long" in page and "empty" not in page
    assert _imports(app) == 0, "the next line never becomes the column names"
    german = _upload(client, group_id, data, lang="de").get_data(as_text=True)
    assert "Zeile 1 der Datei ist zu lang" in german


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf_16_without_a_byte_order_mark_is_read(client, group_id, app, encoding):
    data = LIST.encode(encoding)
    assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    response = _upload(client, group_id, data)
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        job = db.session.scalar(db.select(ImportJob))
        assert (job.encoding, job.header) == (encoding, ["E-Mail", "Vorname"])
        imports.configure(
            job, mapping=job.mapping, mode="update_add", import_consent=False,
            restore_deleted=False,
        )  # fmt: skip
        db.session.commit()
        imports.run(job)
        state = contact_state(job.account_id)
    assert {e: c["first"] for e, c in state.items()} == {
        "anna@example.com": "Anna",
        "zoë@example.com": "Zoë",
        "łucja@example.pl": "Łucja",
    }


def test_a_file_that_is_really_binary_is_still_named_so(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    with pytest.raises(reader.FileProblem, match="binary"):
        reader.inspect(path)


def test_more_than_500_columns_is_refused_with_a_message(client, group_id, app):
    header = ",".join(["email", *(f"c{i}" for i in range(9_999))])
    row = ",".join(["anna@example.com", *("x" for _ in range(9_999))])
    data = f"{header}\n{row}\n".encode()
    page = _upload(client, group_id, data).get_data(as_text=True)
    assert "The file has 10,000 columns; an import reads at most 500." in page
    assert len(page) < 100_000 and _imports(app) == 0
    german = _upload(client, group_id, data, lang="de").get_data(as_text=True)
    assert "höchstens 500" in german


def test_500_columns_are_read_and_empty_columns_far_right_are_no_columns(client, group_id, app):
    wide = ",".join(["email", *(f"c{i}" for i in range(499))])
    assert _upload(client, group_id, f"{wide}\na@example.com\n".encode()).status_code == 302
    # a spreadsheet formatted far to the right: 3 columns with data, 16,381 empty ones
    padded = "email,first,last" + "," * 16_381
    data = f"{padded}\na@example.com,Ann,Lee{',' * 16_381}\n".encode()
    assert _upload(client, group_id, data).status_code == 302
    with app.app_context():
        job = db.session.scalars(db.select(ImportJob).order_by(ImportJob.id.desc())).first()
        assert job.header == ["email", "first", "last"]
