"""Every service that writes is told who writes (Source): a forgotten argument must be an
error, not "ui" — the one source that takes an automatic backup before a change."""

from __future__ import annotations

import inspect

import pytest

from portal.api import service as api_keys
from portal.contacts import fields, service
from portal.contacts.models import Source, checked_source
from portal.imports import service as imports
from portal.integrations import export
from portal.lifecycle import mass

WRITERS = [
    api_keys.create_key,
    fields.create_custom_field,
    service.create_group,
    service.rename_group,
    service.update_group_settings,
    service.delete_group,
    service.create_contact,
    service.update_contact,
    service.add_tag,
    service.remove_tag,
    service.subscribe,
    service.unsubscribe,
    imports.create_import,
    export.import_package,
    mass.draft_for_filter,
    mass.draft_for_emails,
    mass.draft_for_ids,
]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_source_is_a_required_keyword(writer):
    parameter = inspect.signature(writer).parameters["source"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty


def test_a_call_without_a_source_fails(app, make_account):
    from portal.accounts.models import Account
    from portal.extensions import db

    account_id = make_account("acme")
    with app.app_context():
        account = db.session.get(Account, account_id)
        with pytest.raises(TypeError, match="source"):
            service.create_group(account, "Newsletter", actor=None)
        assert service.create_group(account, "Newsletter", actor=None, source=Source.API)


def test_sources_are_the_four_known_ones():
    assert [s.value for s in Source] == ["ui", "api", "job", "form"]
    assert checked_source(Source.FORM) == "form" and checked_source("api") == "api"
    with pytest.raises(ValueError):
        checked_source("restore")
