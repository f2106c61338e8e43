"""The whole portal to look at: the demo data of DESIGN.md with something in every state
(a deleted contact, imports waiting for the mapping, checked, queued and finished, a
backup, an API key, an invitation, a sign-up form with a confirmation link, a support
access), and a walker that finds every page a person reaches by following links.

Two gates use it: the translation gate renders every page in every language with the
Flask test client and looks for unformatted placeholders (tests/test_translation_gate_pages.py),
and the accessibility walk runs axe-core on the same pages in Chromium
(tests/e2e/test_accessibility.py). The walker follows links, so a page added later is
checked as soon as something links to it."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from portal.cli import DEMO_LOGINS, STAFF_LOGIN

LANGUAGES = ("en", "de", "it", "nl", "pl")
SLUG, OWNER_EMAIL, OWNER_PASSWORD = DEMO_LOGINS[0]
STAFF_EMAIL, STAFF_PASSWORD = STAFF_LOGIN

# Not pages: files, JSON, polling endpoints, the API, assets.
NOT_PAGES = re.compile(
    r"(/download$|/status$|\.csv$|\.json$|^/api/|^/static/|^/bootstrap/|^/healthz)"
)
# Query parameters that do not make another kind of page.
SAME_PAGE_PARAMS = {"lang", "page", "q", "after", "before", "next"}


@dataclass
class Scene:
    """The URLs (paths) where a walk starts, per visitor."""

    owner: list[str] = field(default_factory=list)
    staff: list[str] = field(default_factory=list)
    public: list[str] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)  # a few pages tests look at


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _import_rows(n: int) -> list[list[str]]:
    """New people, a duplicate line, an invalid address and a bad date: the summary then
    lists skipped rows and problems whose texts carry placeholders (line, value)."""
    rows = [["email", "first_name", "last_name", "birthday"]]
    rows += [[f"walk{i:02d}@example.org", f"Käthe{i}", "Größ", "1980-05-17"] for i in range(n)]
    rows.append(["walk00@example.org", "Käthe", "Doppelt", ""])
    rows.append(["not-an-address", "Niemand", "", ""])
    rows.append(["walk-date@example.org", "Datum", "Falsch", "im Mai"])
    return rows


def build_scene(app, tmp_path: Path, contacts: int = 40) -> Scene:
    """Seed the demo data (DESIGN.md's logins) and put something in every state."""
    from flask_babel import force_locale

    from portal.accounts import sender
    from portal.accounts import service as accounts
    from portal.accounts.models import Account, Membership, Role
    from portal.api import service as api_keys
    from portal.cli import seed_demo_data
    from portal.contacts.models import Contact, ContactStatus, Group
    from portal.extensions import db
    from portal.imports import service as imports
    from portal.imports.models import ImportStatus
    from portal.integrations import export
    from portal.lifecycle import mass, signup
    from portal.lifecycle import service as lifecycle
    from portal.lifecycle.models import LifecycleAction
    from portal.mail import outbox_messages
    from portal.support import console

    scene = Scene()
    with app.test_request_context("/"), force_locale("en"):
        seed_demo_data(contacts)
        account = db.session.scalar(db.select(Account).where(Account.slug == SLUG))
        owner = accounts.find_user_by_email(OWNER_EMAIL)
        staff = accounts.find_user_by_email(STAFF_EMAIL)
        groups = list(
            db.session.scalars(
                db.select(Group).where(Group.account_id == account.id).order_by(Group.id)
            )
        )
        group = groups[0]
        active, deleted = db.session.scalars(
            db.select(Contact.id)
            .where(
                Contact.account_id == account.id,
                Contact.status == ContactStatus.ACTIVE.value,
            )
            .order_by(Contact.id)
            .limit(2)
        ).all()
        lifecycle.delete_contacts(account, [deleted], actor=owner, source="ui")
        db.session.commit()

        def new_import(name: str, n: int, target: Group | None):
            path = _write_csv(tmp_path / name, _import_rows(n))
            job = imports.create_import(
                account, actor=owner, group=target, source_path=path, filename=name, source="ui"
            )
            db.session.commit()
            return job

        def configured(job):
            imports.configure(
                job, mapping=job.mapping, mode="update_add", import_consent=False,
                restore_deleted=False,
            )  # fmt: skip
            db.session.commit()
            imports.check(job)
            db.session.commit()
            return job

        finished = configured(new_import("neue-kontakte.csv", 12, group))
        imports.run(finished, actor=owner)  # makes the backup of the group first
        db.session.commit()
        ready = configured(new_import("geprüft.csv", 5, groups[-1]))
        queued = configured(new_import("wartend.csv", 5, groups[-1]))
        queued.status = ImportStatus.QUEUED
        uploaded = new_import("hochgeladen.csv", 3, group)
        db.session.commit()

        api_keys.create_key(account, name="Shop", scope="write", actor=owner, source="ui")
        membership = db.session.scalar(
            db.select(Membership).where(
                Membership.account_id == account.id, Membership.user_id == owner.id
            )
        )
        accounts.invite_member(
            account, "kollegin@example.org", Role.EDITOR, actor=owner, actor_membership=membership
        )
        form_token = signup.new_form_link(group, actor=owner)
        db.session.commit()
        signup.request_signup(group, "neu@example.org", ip="127.0.0.1", locale="de")
        db.session.commit()
        reset_token = accounts.make_reset_token(owner)
        export_run = export.start(account, fmt="csv", group=group, actor=owner)
        # a mass deletion drafted from a pasted list, waiting for its confirmation
        listed = mass.parse_pasted("walk01@example.org\nwalk02@example.org\nkein-email\n")
        mass_job = mass.draft_for_emails(
            account, LifecycleAction.DELETE, listed, actor=owner, source="ui"
        )
        done = mass.parse_pasted("walk03@example.org\n")
        mass.confirm(
            mass.draft_for_emails(account, LifecycleAction.DELETE, done, actor=owner, source="ui")
        )
        console.open_access(staff, account, "Ticket #4711")
        # an own sender address waiting for its confirmation (settings, public page)
        sender.request_sender_address(account, "absender@example.org", actor=owner, locale="de")
        db.session.commit()

        links = [
            urlsplit(url).path
            for message in outbox_messages()
            for url in re.findall(r"https?://\S+", message.get_body(("plain",)).get_content())
        ]
        confirm = next(link for link in links if link.startswith("/f/") and "/confirm/" in link)
        sender_confirm = next(link for link in links if link.startswith("/sender/confirm/"))
        invitation = next(link for link in links if link.startswith("/invite/"))

        home = f"/a/{SLUG}"
        scene.owner = [
            f"{home}/",
            f"{home}/contacts/{active}",
            f"{home}/contacts/{deleted}",
            f"{home}/contacts?status=deleted",
            f"{home}/imports/new",
            f"{home}/imports/{uploaded.id}",
            f"{home}/imports/{ready.id}",
            f"{home}/imports/{queued.id}",
            f"{home}/imports/{finished.id}",
            f"{home}/imports",
            f"{home}/backups",
            f"{home}/settings",
            f"{home}/settings/team",
            f"{home}/settings/api",
            f"{home}/contacts/manage/{mass_job.id}",
            f"{home}/integrations/exports/{export_run.id}",
            "/accounts",
            "/profile",
            "/profile/password",
        ]
        scene.named = {
            "active contact": f"{home}/contacts/{active}",
            "deleted contact": f"{home}/contacts/{deleted}",
            "import summary": f"{home}/imports/{finished.id}",
        }
        scene.staff = ["/support/", f"/support/accounts/{SLUG}/", "/support/accounts/other/open"]
        scene.public = [
            "/login",
            "/password/forgot",
            f"/password/reset/{reset_token}",
            invitation,
            f"/f/{form_token}",
            confirm,
            sender_confirm,
        ]
    return scene


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and (href := dict(attrs).get("href")):
            self.hrefs.append(href)


def links_in(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def kind_of_page(url: str) -> str:
    """Pages of one kind share a key: ids become "#", only the query's names count
    (a second contact card or page 2 of a list shows nothing new)."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+(?=/|$)", "/#", parts.path)
    names = sorted({k for k, _ in parse_qsl(parts.query)} - SAME_PAGE_PARAMS)
    return path + ("?" + "&".join(names) if names else "")


def in_language(url: str, lang: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lang"] + [("lang", lang)]
    return f"{parts.path}?{urlencode(query)}"


def walk(
    fetch: Callable[[str], tuple[int, str]],
    seeds: Iterable[str],
    *,
    limit: int = 150,
    stay_under: str | None = None,
) -> dict[str, str]:
    """Visit the seeds, then every link to a kind of page not seen yet (same site,
    GET pages only, `stay_under` a path prefix if given). `fetch(path)` returns the
    status and the HTML. Returns {path: html} of the pages that answered 200."""
    pages: dict[str, str] = {}
    seen_kinds: set[str] = set()
    queue = list(dict.fromkeys(seeds))
    for seed in queue:
        seen_kinds.add(kind_of_page(seed))
    while queue and len(pages) < limit:
        url = queue.pop(0)
        status, html = fetch(url)
        if status != 200:
            continue
        pages[url] = html
        for href in links_in(html):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            target = re.sub(r"[?&]lang=\w+$", "", target)
            kind = kind_of_page(target)
            if NOT_PAGES.search(parts.path) or kind in seen_kinds:
                continue
            if stay_under and not parts.path.startswith(stay_under):
                continue
            if parts.path in ("/logout",):
                continue
            seen_kinds.add(kind)
            queue.append(target)
    return pages
