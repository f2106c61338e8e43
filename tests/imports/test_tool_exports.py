"""Switching tools: the exports of Mailchimp, CleverReach, Brevo, listmonk, Mautic and
SALESmanago, and Excel lists in five languages, imported as a new user would — the
automatic mapping and the options as the page offers them, nothing ticked.

The files and what each must give come from tests/imports/tool_exports.py, built from
each tool's documented format (docs/decisions/tool-exports.md). What must hold for
every one: nobody the file shows as opted out is active, nobody is lost to an optional
cell, names and dates arrive as the file has them."""

from __future__ import annotations

import pytest

from portal.contacts.models import Contact, Subscription, Tag, contact_tags
from portal.extensions import db
from portal.imports import queries, service
from portal.imports.models import ImportStatus
from tests.imports import tool_exports
from tests.imports.tool_exports import ALL_EXPORTS, write_to


@pytest.fixture
def account(account):
    """An account that keeps birthdays, as many do: the Mautic export has one that
    cannot be a date (its one unreadable optional cell)."""
    from portal.contacts import fields as contact_fields

    contact_fields.create_custom_field(account, "birthday", "Geburtstag", "date", source="ui")
    db.session.commit()
    return account


def _import_with_the_defaults(account, group, tmp_path, export):
    job = service.create_import(
        account,
        actor=None,
        group=group,
        source_path=write_to(tmp_path, export),
        filename=export.filename,
        source="ui",
    )
    # what the mapping page submits when the user only presses "Check the file"
    service.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=False, restore_deleted=False
    )
    db.session.commit()
    service.check(job)
    service.run(job)
    return job


def _subscriptions(group):
    rows = db.session.execute(
        db.select(Contact, Subscription)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(Subscription.group_id == group.id)
    )
    return {contact.email: (contact, sub) for contact, sub in rows}


def _tags(contact_id):
    return set(
        db.session.scalars(
            db.select(Tag.name)
            .join(contact_tags, contact_tags.c.tag_id == Tag.id)
            .where(contact_tags.c.contact_id == contact_id)
        )
    )


@pytest.mark.parametrize("build", ALL_EXPORTS, ids=lambda b: b.__name__)
def test_an_export_comes_in_consent_safe_complete_and_exact(account, group, tmp_path, build):
    export = build()
    expected = export.expected
    job = _import_with_the_defaults(account, group, tmp_path, export)
    assert job.status == ImportStatus.FINISHED, job.error
    if not export.tool.startswith("excel"):
        assert job.detected_format == export.tool

    # only a missing or invalid address refuses a line; the in-file duplicate is skipped
    assert job.invalid == expected.invalid
    assert job.skipped_reasons == {"duplicate": expected.duplicates}
    assert job.warnings == expected.warnings
    people = _subscriptions(group)
    assert set(people) == expected.active | set(expected.signed_off)

    # the consent rule: every opted-out person arrives signed off, with the reason
    active = {email for email, (_, sub) in people.items() if sub.active}
    assert active == expected.active
    reasons = {e: sub.optout_reason for e, (_, sub) in people.items() if not sub.active}
    assert reasons == expected.signed_off

    # names, sign-up and sign-off dates, tags as in the file
    names = {e: (c.first_name, c.last_name) for e, (c, _) in people.items()}
    assert names == expected.names
    signups = {e: sub.activated_at for e, (_, sub) in people.items() if e in expected.signup}
    assert signups == expected.signup
    signoffs = {e: sub.deactivated_at for e, (_, sub) in people.items() if e in expected.signoff}
    assert signoffs == expected.signoff
    tags = {e: _tags(c.id) for e, (c, _) in people.items()}
    assert {e: t for e, t in tags.items() if t} == expected.tags


def test_the_warnings_name_line_column_and_value(account, group, tmp_path):
    export = tool_exports.brevo()
    job = _import_with_the_defaults(account, group, tmp_path, export)
    [warning] = [p for p in queries.problems(job) if p.kind == "warning"]
    [unreadable] = export.expected.unreadable
    assert (warning.line, warning.params["column"], warning.params["value"]) == (
        unreadable.line,
        unreadable.header,
        unreadable.value,
    )
