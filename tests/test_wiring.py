"""The areas are wired by create_app, in one place (issue 19, point 1): which signals have
which receivers, which audit actions read as a sentence, which pages exist, which buttons
other areas add — and none of it depends on which module happened to be imported first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from portal.support.describe import merge_texts
from tests.helpers.wiring import registries

ROOT = Path(__file__).resolve().parents[1]

RECEIVERS = {
    "before-import": ["portal.backups.snapshot.backup_before_import"],
    "before-group-delete": ["portal.backups.snapshot.backup_before_group_delete"],
    "contact-changed": ["portal.integrations.service.write_outbox"],
    "before-erasure": ["portal.integrations.export.withdraw_on_erasure"],
}

BLUEPRINTS = [
    "bootstrap",
    "health",
    "accounts",
    "account",
    "contacts",
    "imports",
    "lifecycle",
    "signup",
    "backups",
    "integrations",
    "api",
    "api_keys",
    "support",
    "support_log",
]

AUDIT_ACTIONS = {
    # accounts
    "user.login",
    "user.password_reset",
    "account.created",
    "account.settings_changed",
    "account.sender_requested",
    "account.sender_confirmed",
    "account.sender_removed",
    "member.added",
    "member.invited",
    "member.role_changed",
    "member.removed",
    # contacts
    "group.created",
    "group.renamed",
    "group.deleted",
    "group.settings_changed",
    "contact.updated",
    "custom_field.created",
    # imports
    "import.finished",
    "import.discarded",
    # lifecycle
    "contacts.deleted",
    "contacts.restored",
    "contacts.purged",
    "contacts.forgotten",
    "lifecycle.draft_cancelled",
    "signup.confirmed",
    "group.form_link_renewed",
    # backups
    "backup.created",
    "backup.downloaded",
    "backup.restored",
    "import.undone",
    # integrations
    "integration.linked",
    "integration.reset",
    "integration.mapping_accepted",
    "export.downloaded",
    # api
    "api_key.created",
    "api_key.revoked",
    "api.import_started",
    # support
    "support.access_opened",
    "support.access_closed",
    "support.viewed",
    "support.contact_looked_up",
    "support.backup_restore_requested",
    "support.import_undo_requested",
}


def test_create_app_wires_every_area(app):
    wired = registries(app)
    assert wired["receivers"] == RECEIVERS
    assert wired["blueprints"] == BLUEPRINTS
    assert set(wired["audit_texts"]) == AUDIT_ACTIONS
    assert wired["card_actions"] == [
        "lifecycle.delete_contact",
        "lifecycle.restore_contact",
        "lifecycle.forget_contact",
    ]
    assert wired["bulk_actions"] == ["lifecycle.delete_selected", "lifecycle.restore_selected"]
    assert wired["support_actions"] == ["reset-integration"]
    assert wired["home_panels"] == [
        "portal.contacts.views",
        "portal.imports.views",
        "portal.lifecycle.views",
        "portal.backups.views",
    ]
    # the JSON API's operations, declared by portal.api.endpoints, are there
    assert "/api/v1/contacts" in wired["routes"]
    # every button and staff action leads to a page that exists
    endpoints = wired["card_actions"] + wired["bulk_actions"] + ["support.reset_integration"]
    assert set(endpoints) <= set(app.view_functions)


def test_two_areas_cannot_describe_the_same_action():
    with pytest.raises(RuntimeError, match="group.deleted"):
        merge_texts({"group.deleted": str}, {"group.deleted": repr})


_PROBE = """
import importlib, json, sys
from portal.core import signals
first = sys.argv[1].split(",") if sys.argv[1] else []
for name in first:
    importlib.import_module(name)
before = {s.name: signals.receivers_of(s) for s in signals.ALL}
from portal import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                  "REDIS_URL": sys.argv[2], "SECRET_KEY": "x"})
from tests.helpers.wiring import registries
print(json.dumps({"before": before, **registries(app)}))
"""


def _fresh_process(first_imports: list[str], redis_url: str) -> dict:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _PROBE, ",".join(first_imports), redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "first_imports",
    [
        [],
        # the modules that used to wire themselves when imported, alone and reversed
        ["portal.backups.wiring", "portal.backups.snapshot"],
        ["portal.integrations.tasks", "portal.integrations.export"],
        [
            "portal.support.views",
            "portal.integrations.views",
            "portal.lifecycle.views",
            "portal.backups.wiring",
            "portal.imports.service",
            "portal.contacts.service",
        ],
    ],
    ids=["nothing", "backups-wiring", "integrations-tasks", "every-area-reversed"],
)
def test_the_rules_exist_whatever_was_imported_first(app, redis_url, first_imports):
    """Importing a module wires nothing; create_app wires the same everywhere."""
    wired = _fresh_process(first_imports, redis_url)
    assert wired.pop("before") == {name: [] for name in RECEIVERS}
    assert wired == registries(app)
