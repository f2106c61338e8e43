"""XSS: every value a customer (or a file, or a visitor) controls is escaped on every page
that shows it. One account holds the payloads in contact names, tags, group names, custom
field labels and values, import file names, header and data cells, API key names, member
names, the staff reason and a mass-management search; then every page of the url map is
rendered (as owner, as staff, as a visitor; with the payloads in the query string too)
and the raw payload must never appear, while the escaped one does where it belongs."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import Membership, Role
from portal.api import service as api_keys
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.contacts.queries import ContactFilter
from portal.extensions import db
from portal.imports import service as imports
from portal.integrations import export, profiles, sync
from portal.integrations import service as integrations
from portal.lifecycle import mass
from portal.lifecycle import service as lifecycle
from portal.lifecycle.models import LifecycleAction
from portal.support import console
from tests.helpers.apps import allowing_private_targets
from tests.helpers.auth import PASSWORD, login
from tests.security import routes as R
from tests.security.conftest import clean_database, new_client

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, IMG)
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    IMG: "&lt;img src=x onerror=alert(1)&gt;",
}


def _csv(rows) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = Path(tempfile.mkdtemp(prefix="portal-xss-")) / "upload.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _build(app) -> dict:
    ids: dict = {}
    with app.test_request_context():
        account = accounts.create_account(f"Acme {SCRIPT}", "xss", timezone="Europe/Berlin")
        owner = accounts.create_user("owner@xss.example", PASSWORD, name=f"Owner {IMG}")
        accounts.add_member(account, owner, Role.OWNER)
        viewer = accounts.create_user("viewer@xss.example", PASSWORD, name=f"Viewer {SCRIPT}")
        accounts.add_member(account, viewer, Role.VIEWER)
        staff = accounts.create_user("staff@xss.example", PASSWORD, name=IMG, is_staff=True)
        db.session.flush()
        contact_fields.create_custom_field(account, "city", f"City {SCRIPT}", "text", source="ui")
        group = contacts.create_group(account, f"Group {SCRIPT}", actor=owner, source="ui")
        other_group = contacts.create_group(account, f"Group {IMG}", actor=owner, source="ui")
        db.session.flush()
        contact = contacts.create_contact(
            account,
            "anna@xss.example",
            first_name=SCRIPT,
            last_name=IMG,
            fields={"city": SCRIPT},
            source="ui",
        )
        contacts.subscribe(contact, group, source="ui")
        tag = contacts.add_tag(contact, SCRIPT, actor=owner, source="ui")
        contacts.add_tag(contact, IMG, actor=owner, source="ui")
        gone = contacts.create_contact(
            account, "gone@xss.example", first_name=IMG, last_name=SCRIPT, source="ui"
        )
        contacts.subscribe(gone, other_group, source="ui")
        db.session.flush()
        lifecycle.delete_contacts(account, [gone.id], actor=owner, source="ui")
        with allowing_private_targets(app):  # a closed port of this machine
            link = integrations.link_provider(
                account, profile=profiles.DEFAULT_PROFILE, url="http://127.0.0.1:9/x", actor=owner
            )
        db.session.commit()

        header = ["email", "first_name", SCRIPT, IMG]
        rows = [header, ["imported@xss.example", SCRIPT, IMG, SCRIPT], [f"bad{IMG}", IMG, "", ""]]
        finished = imports.create_import(
            account,
            actor=owner,
            group=group,
            source_path=_csv(rows),
            filename=f"{IMG}.csv",
            source="ui",
        )
        imports.configure(
            finished,
            mapping=finished.mapping,
            mode="update_add",
            import_consent=False,
            restore_deleted=False,
        )
        db.session.commit()
        imports.run(finished, actor=owner)
        uploaded = imports.create_import(
            account,
            actor=owner,
            group=group,
            source_path=_csv(rows),
            filename=f"{IMG}.csv",
            source="ui",
        )
        checked = imports.create_import(
            account,
            actor=owner,
            group=group,
            source_path=_csv(rows),
            filename=f"{IMG}.csv",
            source="ui",
        )
        imports.configure(
            checked,
            mapping=checked.mapping,
            mode="update_add",
            import_consent=False,
            restore_deleted=False,
        )
        db.session.commit()
        imports.check(checked)
        db.session.commit()

        job = mass.draft_for_filter(
            account,
            LifecycleAction.DELETE,
            ContactFilter(q=SCRIPT, tag_id=tag.id, group_id=group.id),
            tz=ZoneInfo("Europe/Berlin"),
            actor=owner,
            source="ui",
        )
        key, _plain = api_keys.create_key(
            account, name=f"Shop {IMG}", scope="read", actor=owner, source="ui"
        )
        _, ids["api_key"] = api_keys.create_key(
            account, name=SCRIPT, scope="write", actor=owner, source="ui"
        )
        run = sync.start(link, actor=owner)
        db.session.commit()
        sync.run(run)
        export_run = export.start(account, fmt="csv", group=group, actor=owner)
        db.session.commit()
        export.run(export_run)
        from portal.integrations.models import OutgoingEvent

        event = db.session.scalar(db.select(OutgoingEvent).limit(1))
        accounts.invite_member(
            account,
            "invitee@xss.example",
            Role.EDITOR,
            actor=owner,
            actor_membership=db.session.scalar(
                db.select(Membership).where(Membership.user_id == owner.id)
            ),
        )
        access = console.open_access(staff, account, f"Ticket {SCRIPT} {IMG}")
        db.session.commit()
        ids.update(
            slug="xss",
            contact_id=contact.id,
            group_id=group.id,
            tag_id=tag.id,
            import_id=finished.id,
            backup_id=finished.backup_id,
            job_id=job.id,
            membership_id=db.session.scalar(
                db.select(Membership.id).where(Membership.user_id == viewer.id)
            ),
            revocable_key_id=key.id,
            sync_id=run.id,
            event_id=event.id,
            export_id=export_run.id,
            uploaded_import_id=uploaded.id,
            checked_import_id=checked.id,
            form_token=group.signup_token,
            access_id=access.id,
        )
        assert finished.backup_id and ids["event_id"]
    return ids


@pytest.fixture(scope="module")
def xss(request, app):
    clean_database(app)
    ids = _build(app)
    request.module._shared_world = True
    owner, staff = new_client(app), new_client(app)
    assert login(owner, "owner@xss.example").status_code == 302
    assert login(staff, "staff@xss.example").status_code == 302
    yield {"ids": ids, "owner": owner, "staff": staff, "visitor": new_client(app)}
    request.module._shared_world = False
    clean_database(app)


def assert_escaped(response, *, must_show: bool = False):
    if "text/html" not in (response.content_type or ""):
        return
    html = response.get_data(as_text=True)
    for payload in PAYLOADS:
        assert payload not in html, f"raw {payload!r} in the page"
    if must_show:
        assert any(ESCAPED[p] in html for p in PAYLOADS), "the payload is not on the page at all"


PAGES = [
    r
    for r in R.all_routes()
    if r.method == "GET" and r.kind in ("tenant", "support", "signed_in", "public")
]
# pages that show customer-controlled text: the escaped payload must be there (so the test
# cannot pass because the value never reached the page)
MUST_SHOW = {
    "account.home",
    "account.settings",
    "account.team",
    "api_keys.keys",
    "contacts.list_contacts",
    "contacts.view_contact",
    "contacts.list_groups",
    "contacts.view_group",
    "contacts.group_settings",
    "imports.list_imports",
    "imports.show_import",
    "backups.list_backups",
    "integrations.overview",
    "integrations.tags",
    "integrations.show_export",
    "lifecycle.manage",
    "lifecycle.show_job",
    "lifecycle.forget_contact",
    "signup.form",
    "support.account",
    "support.deleted",
    "support.backups",
    "support.imports",
    "support.audit",
    "support.index",
    "accounts.choose_account",
    "accounts.profile",
}


def _client_and_path(xss, route):
    ids = xss["ids"]
    values = {p: ids["slug"] for p in route.params if p in R.ACCOUNT_PARAMS}
    for p in route.params:
        if p in R.OBJECT_PARAMS:
            values[p] = ids[R.OBJECT_PARAMS[p]]
    values.setdefault("form_token", ids["form_token"])
    values.setdefault("token", "no-such-token")
    values.setdefault("filename", "css/portal.css")
    client = {"support": xss["staff"], "public": xss["visitor"]}.get(route.kind, xss["owner"])
    return client, route.path(values)


@pytest.mark.parametrize("route", PAGES, ids=R.ids(PAGES))
def test_every_page_escapes_what_customers_wrote(xss, route):
    client, path = _client_and_path(xss, route)
    response = client.get(path)
    assert response.status_code < 500
    assert_escaped(response, must_show=route.endpoint in MUST_SHOW)


@pytest.mark.parametrize("route", PAGES, ids=R.ids(PAGES))
def test_every_page_escapes_its_query_string(xss, route):
    """Reflected: search boxes, filters and `next` links echo the query string."""
    client, path = _client_and_path(xss, route)
    query = "&".join(
        f"{name}={quote(SCRIPT + IMG)}"
        for name in ("q", "status", "next", "group", "tag", "signup_from", "profile", "reason")
    )
    response = client.get(f"{path}?{query}")
    assert response.status_code < 500
    assert_escaped(response)


@pytest.mark.parametrize("import_key", ["uploaded_import_id", "checked_import_id", "import_id"])
def test_each_step_of_an_import_escapes_file_name_and_cells(xss, import_key):
    """The mapping page (header cells and the preview), the confirmation and the summary
    with the rows that were not imported."""
    ids = xss["ids"]
    response = xss["owner"].get(f"/a/xss/imports/{ids[import_key]}")
    assert response.status_code == 200
    assert_escaped(response, must_show=True)
    html = response.get_data(as_text=True)
    if import_key == "uploaded_import_id":  # the header cells as column names
        assert html.count(ESCAPED[SCRIPT]) >= 2


def test_flash_messages_and_form_errors_escape_what_was_typed(xss):
    owner = xss["owner"]
    contact_id = xss["ids"]["contact_id"]
    response = owner.post(
        f"/a/xss/contacts/{contact_id}/tags", data={"name": f"T{IMG}"}, follow_redirects=True
    )
    assert_escaped(response, must_show=True)
    response = owner.post("/a/xss/groups/new", data={"name": f"G{SCRIPT}"}, follow_redirects=True)
    assert_escaped(response, must_show=True)
    response = owner.post(
        f"/a/xss/contacts/{contact_id}/edit", data={"email": f"x{SCRIPT}", "first_name": IMG}
    )
    assert_escaped(response, must_show=True)
    response = owner.post(
        "/a/xss/contacts/manage/list", data={"emails": f"{SCRIPT}\n{IMG}", "action": "delete"}
    )
    assert_escaped(response)
    response = owner.post("/a/xss/settings/team", data={"email": f"{IMG}@x", "role": "editor"})
    assert_escaped(response)


def test_the_public_form_escapes_what_a_visitor_typed(xss):
    visitor = new_client(xss["owner"].application)
    token = xss["ids"]["form_token"]
    response = visitor.post(
        f"/f/{token}", data={"email": f"{SCRIPT}@x", "first_name": IMG, "last_name": SCRIPT}
    )
    assert_escaped(response, must_show=True)  # the group's name, escaped, and the values


def test_the_api_key_page_escapes_a_new_key_name(xss):
    created = xss["owner"].post("/a/xss/settings/api", data={"name": IMG, "scope": "read"})
    assert_escaped(xss["owner"].get(created.location), must_show=True)


def test_json_answers_are_json(xss):
    """Status endpoints and the API answer application/json (with nosniff), which a
    browser never renders as a page."""
    ids = xss["ids"]
    for path in (
        f"/a/xss/imports/{ids['import_id']}/status",
        f"/a/xss/contacts/manage/{ids['job_id']}/status",
        f"/a/xss/integrations/sync/{ids['sync_id']}/status",
    ):
        response = xss["owner"].get(path)
        assert response.status_code == 200 and response.mimetype == "application/json", path
    response = xss["visitor"].get(
        "/api/v1/contacts", headers={"Authorization": f"Bearer {ids['api_key']}"}
    )
    assert response.mimetype == "application/json"
    names = {c["first_name"] for c in response.get_json()["data"]}
    assert SCRIPT in names  # the value itself, unchanged: escaping is the page's job
