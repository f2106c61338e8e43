"""A world of two tenants for the security tests: real objects of every kind, made
through the services as the portal makes them, each carrying its tenant's marker text
(so that a page or a file that leaks another tenant's data is caught by a substring
test), members of every role with their own signed-in browser, API keys and a support
staff user with an open access."""

from __future__ import annotations

import csv
import io
import itertools
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import Account, Membership, Role, User
from portal.api import service as api_keys
from portal.backups.models import Backup
from portal.backups.undo import request_undo, run_undo
from portal.contacts import fields as contact_fields
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group, Tag
from portal.contacts.queries import ContactFilter
from portal.extensions import db
from portal.imports import service as imports
from portal.integrations import export, sync
from portal.integrations import service as integrations
from portal.integrations.models import OutgoingEvent
from portal.lifecycle import mass, signup
from portal.lifecycle import service as lifecycle
from portal.lifecycle.models import LifecycleAction
from portal.support import console
from tests.helpers.apps import allowing_private_targets
from tests.helpers.auth import PASSWORD, login

ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER)
_ips = itertools.count(10)


def marker(name: str) -> str:
    """The text every personal or business value of tenant `name` contains."""
    return f"qx{name}qx"


def new_client(app):
    """A browser of its own, from its own address (the sign-in limit counts per IP)."""
    n = next(_ips)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.9.{n // 250}.{n % 250 + 1}"
    return client


@dataclass
class Tenant:
    """One account and the ids of everything in it that a URL can name."""

    name: str
    slug: str
    account_id: int
    user_ids: dict[Role, int]
    emails: dict[Role, str]
    ids: dict[str, int] = field(default_factory=dict)
    form_token: str = ""
    confirm_path: str = ""  # the link of the sign-up confirmation mail
    contact_email: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # scope -> plain key
    clients: dict[Role, object] = field(default_factory=dict)

    @property
    def marker(self) -> str:
        return marker(self.name)


def _csv_file(rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = Path(tempfile.mkdtemp(prefix="portal-sec-")) / "upload.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _finished_import(account: Account, owner: User, group: Group, rows: list[list[str]]):
    """An import from the portal (source "ui"): a backup first, a failed row reported."""
    tok = rows[1][0]
    job = imports.create_import(
        account,
        actor=owner,
        group=group,
        source_path=_csv_file(rows),
        filename=f"list-{tok.split('@')[0]}.csv",
        source="ui",
    )
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    db.session.commit()
    imports.run(job, actor=owner)
    db.session.commit()
    return job


def build_tenant(app, name: str, *, clients: bool = True) -> Tenant:
    """Account `name` with one member of every role, and one real object of every kind
    that has an id in a URL: contact (and one "to be deleted"), group, tag, custom field,
    imports (one undone, one with a live backup and a failed row), backup, import undo,
    mass-management draft, API keys, provider link with a sync run and an outgoing event,
    export run with its file, invitation, sign-up request."""
    tok = marker(name)
    with app.test_request_context():  # mails are rendered with the page helpers
        account = accounts.create_account(f"{name.title()} Ltd", name, timezone="Europe/Berlin")
        db.session.flush()
        user_ids, emails = {}, {}
        for role in ROLES:
            email = f"{role.value}-{tok}@{name}.example"
            user = accounts.create_user(email, PASSWORD, name=f"{role.value.title()} {tok}")
            accounts.add_member(account, user, role)
            db.session.flush()
            user_ids[role], emails[role] = user.id, email
        owner = db.session.get(User, user_ids[Role.OWNER])
        db.session.commit()
        t = Tenant(name, name, account.id, user_ids, emails)

        contact_fields.create_custom_field(account, "city", f"City {tok}", "text", source="ui")
        group = contacts.create_group(account, f"Group {tok}", actor=owner, source="ui")
        db.session.flush()
        contact = contacts.create_contact(
            account,
            f"contact-{tok}@{name}.example",
            first_name=f"Ann{tok}",
            last_name=f"Lee{tok}",
            fields={"city": f"city-{tok}"},
            source="ui",
        )
        contacts.subscribe(contact, group, source="ui")
        tag = contacts.add_tag(contact, f"tag-{tok}", actor=owner, source="ui")
        gone = contacts.create_contact(
            account, f"deleted-{tok}@{name}.example", first_name=tok, source="ui"
        )
        contacts.subscribe(gone, group, source="ui")
        db.session.flush()
        lifecycle.delete_contacts(account, [gone.id], actor=owner, source="ui")
        db.session.commit()

        # the provider link comes before the imports, so their changes leave events
        with allowing_private_targets(app):  # a closed port of this machine
            link = integrations.link_provider(
                account, profile=_profile(), url="http://127.0.0.1:9/hooks", actor=owner
            )
        db.session.commit()

        header = ["email", "first_name", "city"]
        undone = _finished_import(
            account,
            owner,
            group,
            [header, [f"undo-{tok}@{name}.example", f"U{tok}", "x"], [f"bad-{tok}", "", ""]],
        )
        undo = request_undo(undone, actor=owner)
        db.session.commit()
        run_undo(undo)
        db.session.commit()
        job = _finished_import(
            account,
            owner,
            group,
            [header, [f"imported-{tok}@{name}.example", f"I{tok}", "y"], [f"bad-{tok}", "", ""]],
        )
        backup_id = job.backup_id
        assert backup_id is not None, "an import from the portal makes a backup first"

        draft = mass.draft_for_filter(
            account,
            LifecycleAction.DELETE,
            ContactFilter(q=tok),
            tz=ZoneInfo("Europe/Berlin"),
            actor=owner,
            source="ui",
        )
        key_write, t.keys["write"] = api_keys.create_key(
            account, name=f"Shop {tok}", scope="write", actor=owner, source="ui"
        )
        _, t.keys["read"] = api_keys.create_key(
            account, name=f"Reports {tok}", scope="read", actor=owner, source="ui"
        )
        revocable, _plain = api_keys.create_key(
            account, name=f"Old {tok}", scope="read", actor=owner, source="ui"
        )
        run = sync.start(link, actor=owner)
        db.session.commit()
        sync.run(run)
        db.session.commit()
        event = db.session.scalar(
            db.select(OutgoingEvent)
            .where(OutgoingEvent.account_id == account.id)
            .order_by(OutgoingEvent.id)
            .limit(1)
        )
        assert event is not None, "the linked provider has an outgoing event"
        export_run = export.start(account, fmt="csv", group=group, actor=owner)
        db.session.commit()
        export.run(export_run)

        viewer_membership = db.session.scalar(
            db.select(Membership).where(
                Membership.account_id == account.id,
                Membership.user_id == user_ids[Role.VIEWER],
            )
        )
        accounts.invite_member(
            account,
            f"invitee-{tok}@{name}.example",
            Role.EDITOR,
            actor=owner,
            actor_membership=db.session.scalar(
                db.select(Membership).where(
                    Membership.account_id == account.id, Membership.user_id == owner.id
                )
            ),
        )
        signup.request_signup(
            group, f"signup-{tok}@{name}.example", first_name=tok, ip="10.0.0.1", locale="en"
        )
        db.session.commit()
        t.form_token = group.signup_token
        t.contact_email = contact.email
        t.confirm_path = _confirm_path(f"signup-{tok}@{name}.example")
        t.ids.update(
            contact_id=contact.id,
            deleted_contact_id=gone.id,
            group_id=group.id,
            tag_id=tag.id,
            import_id=job.id,
            undone_import_id=undone.id,
            undo_id=undo.id,
            backup_id=backup_id,
            job_id=draft.id,
            key_id=key_write.id,
            revocable_key_id=revocable.id,
            membership_id=viewer_membership.id,
            sync_id=run.id,
            event_id=event.id,
            export_id=export_run.id,
            link_id=link.id,
        )
    if clients:
        for role in ROLES:
            client = new_client(app)
            assert login(client, t.emails[role]).status_code == 302
            t.clients[role] = client
    return t


def _confirm_path(email: str) -> str:
    from portal.mail import outbox_messages

    for message in reversed(outbox_messages()):
        if message["To"] == email:
            return re.search(r"https?://[^/\s]+(/f/\S+/confirm/\S+)", message.get_content())[1]
    raise AssertionError(f"no confirmation mail to {email}")


def _profile() -> str:
    from portal.integrations import profiles

    return profiles.DEFAULT_PROFILE


@dataclass
class World:
    app: object
    a: Tenant
    b: Tenant
    staff_id: int
    staff: object  # signed-in client of the staff user, with an open access to b only
    anonymous: object

    def tenants(self):
        return (self.a, self.b)


STAFF_EMAIL = "staff-qxstaffqx@portal.example"


def build_world(app) -> World:
    a = build_tenant(app, "alpha")
    b = build_tenant(app, "bravo")
    with app.app_context():
        staff = accounts.create_user(STAFF_EMAIL, PASSWORD, is_staff=True)
        db.session.commit()
        staff_id = staff.id
        # a past access to alpha (its reason is alpha's business), an open one to bravo
        old = console.open_access(
            staff, db.session.get(Account, a.account_id), f"ticket {a.marker}"
        )
        console.close_access(old, staff=staff)
        access = console.open_access(
            staff, db.session.get(Account, b.account_id), f"ticket {b.marker}"
        )
        db.session.commit()
        a.ids["staff_access_id"] = old.id
        b.ids["staff_access_id"] = access.id
    staff_client = new_client(app)
    assert login(staff_client, STAFF_EMAIL).status_code == 302
    return World(app, a, b, staff_id, staff_client, new_client(app))


def clean_database(app) -> None:
    """What tests/conftest.py's _clean_state does after every test: empty tables, Redis
    and outbox."""
    from portal.extensions import rq

    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        rq.queue.connection.flushdb()
    outbox = Path(app.config["OUTBOX_DIR"])
    for f in outbox.glob("*.eml") if outbox.exists() else ():
        f.unlink()
    app.config["WTF_CSRF_ENABLED"] = False


# Columns that a harmless request may touch: an API key's last use (written at most once a
# minute, see docs/decisions/api-keys-and-requests.md).
VOLATILE = {("api_keys", "last_used_at")}


def fingerprint(app) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: the whole state a request could have changed."""
    state = {}
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
                rows = conn.execute(db.select(*columns)).all()
                state[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


@pytest.fixture(autouse=True)
def _clean_state(request, app):
    """tests/conftest.py's cleanup after every test, except while a module's shared
    `world` lives: it is built once per module (its tests check that a refused request
    changes no row) and removed when the module is done."""
    yield
    if not getattr(request.module, "_shared_world", False):
        clean_database(app)


@pytest.fixture(scope="module")
def world(request, app):
    clean_database(app)
    w = build_world(app)
    w.baseline = fingerprint(app)
    request.module._shared_world = True  # no cleanup after each test while it lives
    yield w
    request.module._shared_world = False
    clean_database(app)


@pytest.fixture
def tenant_models():
    """The models of the ids in Tenant.ids (for checks that an id is really the tenant's)."""
    from portal.api.models import ApiKey
    from portal.backups.models import ImportUndo
    from portal.core.audit import StaffAccess
    from portal.imports.models import ImportJob
    from portal.integrations.models import ExportRun, ProviderLink, SyncRun
    from portal.lifecycle.models import LifecycleJob

    return {
        "contact_id": Contact,
        "deleted_contact_id": Contact,
        "group_id": Group,
        "tag_id": Tag,
        "import_id": ImportJob,
        "undone_import_id": ImportJob,
        "undo_id": ImportUndo,
        "backup_id": Backup,
        "job_id": LifecycleJob,
        "key_id": ApiKey,
        "revocable_key_id": ApiKey,
        "membership_id": Membership,
        "sync_id": SyncRun,
        "event_id": OutgoingEvent,
        "export_id": ExportRun,
        "link_id": ProviderLink,
        "staff_access_id": StaffAccess,
    }
