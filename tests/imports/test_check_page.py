"""The mapping page and the check step as a customer switching tools meets them: the
export is recognised, the consent columns are explained one by one, the people whose
consent the file contradicts are listed by address, dates can be read another way and
unknown words can be given a meaning — all before anything is written."""

from __future__ import annotations

import io
import re

from portal.contacts.models import Contact, CustomField, Subscription
from portal.extensions import db
from portal.imports.models import ImportJob
from tests.imports import tool_exports


def _upload(client, group_id, content: bytes, name: str) -> int:
    response = client.post(
        "/a/acme/imports/new",
        data={"file": (io.BytesIO(content), name), "group": str(group_id)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def _selected(page: str) -> list[str]:
    """The target chosen for each column of the mapping page."""
    selects = re.findall(r'<select[^>]*name="column-\d+".*?</select>', page, re.S)
    return [(re.search(r'value="([^"]*)" selected', s) or [None, ""])[1] for s in selects]


def _submit_mapping(client, job_id: int, page: str, **extra) -> None:
    data = {f"column-{i}": target for i, target in enumerate(_selected(page))}
    data.update(mode="update_add", **extra)
    assert client.post(f"/a/acme/imports/{job_id}/mapping", data=data).status_code == 302


def test_a_mailchimp_unsubscribed_export_is_recognised_and_its_consent_explained(
    app, client, group_id
):
    export = tool_exports.mailchimp_unsubscribed()
    job_id = _upload(client, group_id, export.content, export.filename)
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "This looks like an export of Mailchimp (unsubscribed members)." in page
    header = export.content.decode().splitlines()[0].replace('"', "").split(",")
    targets = dict(zip(header, _selected(page), strict=True))
    assert targets["UNSUB_TIME"] == "signoff_at"
    assert targets["UNSUB_REASON"] == "optout_reason"
    assert targets["Birthday"] == ""  # MM/DD without a year: no date field can hold it
    assert targets["TAGS"] == "tags" and targets["CONFIRM_TIME"] == "confirmed_at"

    _submit_mapping(client, job_id, page)
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "what will happen" in page
    assert "Appears earlier in the file: 1" in page  # the file's duplicate, counted
    for lang in ("en", "de", "it", "nl", "pl"):
        translated = client.get(f"/a/acme/imports/{job_id}?lang={lang}").get_data(as_text=True)
        assert "%(" not in translated, f"a placeholder left unformatted in {lang}"
    client.get(f"/a/acme/imports/{job_id}?lang=en")
    signed_off = len(export.expected.signed_off)
    assert re.search(rf'data-effect="new_off"><span class="effect-count">{signed_off}<', page), (
        "the check step must say that everyone arrives signed off"
    )
    assert 'data-effect="new_on"' not in page
    assert "UNSUB_TIME" in page and "rows have a date" in page
    # the times are UTC, as Mailchimp writes them, and that is what the page offers
    assert re.search(r'<option value="UTC" selected>', page)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0

    client.post(f"/a/acme/imports/{job_id}/start")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "Import finished" in page
    with app.app_context():
        active = db.session.scalar(
            db.select(db.func.count(Subscription.id)).where(Subscription.active)
        )
        assert active == 0


def test_people_the_file_would_re_activate_are_listed_by_address(app, client, group_id):
    first = "E-Mail;Angemeldet am;Abgemeldet am\r\nu@example.com;01.01.2024;01.02.2024\r\n"
    job_id = _upload(client, group_id, first.encode(), "erste.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page)
    client.post(f"/a/acme/imports/{job_id}/start")

    again = "E-Mail;Angemeldet am;Status\r\nu@example.com;01.05.2024;aktiv\r\n"
    job_id = _upload(client, group_id, again.encode(), "zweite.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page)
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert 'data-effect="stays_off"' in page
    assert "<li>u@example.com</li>" in page
    assert "To re-activate them" in page

    client.post(f"/a/acme/imports/{job_id}/edit")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page, import_consent="y")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert 'data-effect="reactivated"' in page and "<li>u@example.com</li>" in page
    with app.app_context():
        assert db.session.scalar(db.select(Subscription.active)) is False  # not yet


def test_unknown_words_and_date_formats_are_chosen_on_the_check_step(app, client, group_id):
    csv_text = (
        "email,state,joined\r\n"
        "a@example.com,NORMAL,03/14/2024\r\n"
        "b@example.com,subscribed,12/31/2023\r\n"
    )
    job_id = _upload(client, group_id, csv_text.encode(), "list.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert _selected(page)[1] == ""  # "state" names nothing the portal knows
    data = {"column-0": "email", "column-1": "status", "column-2": "signup_at"}
    client.post(f"/a/acme/imports/{job_id}/mapping", data={**data, "mode": "update_add"})
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "“NORMAL”" in page and "until then it counts as “signed off”" in page
    # both dates are month first, and the file says so: 12/31 is no day-first date
    assert re.search(r'name="date-2".*?<option value="mdy" selected>', page, re.S)
    assert re.search(r'data-effect="new_off"><span class="effect-count">1<', page)

    word = re.search(r'name="word-1-0" value="([^"]+)"', page)[1]
    response = client.post(
        f"/a/acme/imports/{job_id}/reading",
        data={"word-1-0": word, "meaning-1-0": "active", "date-2": "mdy", "date_zone": "UTC"},
    )
    assert response.status_code == 302
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert re.search(r'data-effect="new_on"><span class="effect-count">2<', page)
    assert "“NORMAL”" not in page  # known now: nothing left to ask
    client.post(f"/a/acme/imports/{job_id}/start")
    with app.app_context():
        subs = db.session.scalars(db.select(Subscription)).all()
        assert {s.active for s in subs} == {True}
        assert {s.activated_at.date().isoformat() for s in subs} == {"2024-03-14", "2023-12-31"}


def test_unreadable_cells_are_warnings_on_the_page_and_in_the_report(app, client, owner, group_id):
    with app.app_context():
        db.session.add(
            CustomField(account_id=owner, key="birthday", label="Geburtstag", type="date")
        )
        db.session.commit()
    csv_text = "E-Mail;Geburtstag\r\na@example.com;31.02.1990\r\nb@example.com;01.02.1990\r\n"
    job_id = _upload(client, group_id, csv_text.encode(), "list.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page)
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "1 cell cannot be read" in page
    assert "Column “Geburtstag”: “31.02.1990” is not a date." in page
    client.post(f"/a/acme/imports/{job_id}/start")
    report = client.get(f"/a/acme/imports/{job_id}/problems.csv?lang=de").get_data(as_text=True)
    line = report.lstrip("\ufeff").splitlines()[1]
    assert line.startswith("2;") and "Geburtstag" in line and "31.02.1990" in line
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert (job.created, job.invalid, job.warnings) == (2, 0, 1)


def test_a_column_becomes_a_new_custom_field_on_the_mapping_page(app, client, group_id):
    csv_text = "E-Mail;Miasto\r\na@example.com;Kraków\r\n"
    job_id = _upload(client, group_id, csv_text.encode(), "list.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    assert "New text field “Miasto”" in page
    client.post(
        f"/a/acme/imports/{job_id}/mapping",
        data={"column-0": "email", "column-1": "new:text", "mode": "update_add"},
    )
    client.post(f"/a/acme/imports/{job_id}/start")
    with app.app_context():
        field = db.session.scalar(db.select(CustomField))
        assert (field.key, field.label, field.type) == ("miasto", "Miasto", "text")
        assert db.session.scalar(db.select(Contact.fields)) == {"miasto": "Kraków"}


def test_a_checked_import_can_be_discarded_and_its_file_goes(app, client, group_id):
    from portal.imports import files

    job_id = _upload(client, group_id, b"E-Mail;Vorname\r\na@example.com;Anna\r\n", "list.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page)
    with app.app_context():
        stored = db.session.get(ImportJob, job_id).stored_path
        assert files.store().exists(stored)
    response = client.post(f"/a/acme/imports/{job_id}/discard")
    assert response.status_code == 302
    history = client.get(response.location).get_data(as_text=True)
    assert "The import was discarded; its file was deleted." in history
    assert "Cancelled" in history
    with app.app_context():
        assert not files.store().exists(stored)
        job = db.session.get(ImportJob, job_id)
        assert (job.status, job.stored_path) == ("cancelled", "")
        assert db.session.scalar(db.select(db.func.count(Contact.id))) == 0
    # a discarded import cannot be started any more
    client.post(f"/a/acme/imports/{job_id}/start")
    with app.app_context():
        assert db.session.get(ImportJob, job_id).status == "cancelled"


def test_back_to_the_mapping_only_before_the_import_starts(app, client, group_id):
    """Once started, "change the mapping" must not throw away what the import has done."""
    from portal.imports.models import ImportJob

    job_id = _upload(client, group_id, b"email\r\na@example.com\r\n", "list.csv")
    page = client.get(f"/a/acme/imports/{job_id}").get_data(as_text=True)
    _submit_mapping(client, job_id, page)
    client.post(f"/a/acme/imports/{job_id}/start")
    with app.app_context():
        started = db.session.get(ImportJob, job_id).status
    assert started != "ready"
    client.post(f"/a/acme/imports/{job_id}/edit")
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == started and job.rows_valid == 1
