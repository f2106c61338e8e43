"""Operations on contacts, groups, tags and subscriptions, and the activities recorded.

Every write takes explicit arguments (account or object, actor, source) and flushes;
the caller commits. Messages of refusals are lazy strings in the user's language.
Reading lives in queries.py (the contact list's filters, pages, counts and selections)
and counts.py; custom fields in fields.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from portal import clock, events
from portal.accounts.models import Account
from portal.accounts.service import has_control_characters
from portal.contacts.fields import clean_field_value, custom_fields
from portal.contacts.models import (
    Activity,
    ActivityKind,
    Contact,
    CustomField,
    Group,
    OptoutReason,
    Source,
    Subscription,
    Tag,
    checked_source,
)
from portal.contacts.queries import tags_of
from portal.core import audit, privacy, signals
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db

if TYPE_CHECKING:
    from portal.accounts.models import User

__all__ = ["ServiceError", "ContactInvalid", "ContactForgotten"]


class ContactInvalid(ServiceError):
    """Validation of a contact failed; `errors` maps a field ("email", "first_name",
    "field:<key>") to its translated message."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__(next(iter(errors.values())))
        self.errors = errors


T = TypeVar("T")


class EmailTaken(ContactInvalid):
    """Another contact of the account already has the address. A caller that looked the
    address up a moment before and found nobody lost a race with a concurrent writer
    (see run_again_on_lost_race)."""


def run_again_on_lost_race(work: Callable[[], T], *, attempts: int) -> T:
    """Run `work` — look up, create or update, commit — and, when a concurrent writer
    created the same address, tag or subscription first, roll it back (its events with
    it) and run it again: the next run finds the winner's rows and updates them. The
    winner is met either at a unique index (IntegrityError) or, when it committed between
    the look-up and the insert, in the "address taken" check (EmailTaken). The last
    attempt's error is raised."""
    for attempt in range(attempts):
        try:
            return work()
        except (IntegrityError, EmailTaken):
            db.session.rollback()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


FORGOTTEN = _l(
    "This address was erased at the person's request (“forget me”). It can only sign up "
    "again through a sign-up form."
)


class ContactForgotten(ContactInvalid):
    """The address is on the suppression list: no import, restore, API call or edit may
    bring the person back; only their own sign-up through a form lifts it."""

    def __init__(self):
        super().__init__({"email": FORGOTTEN})


# --- groups -----------------------------------------------------------------


def _clean_group_name(account: Account, name: str, *, exclude_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_l("Please enter a name for the group."))
    if has_control_characters(name):  # a NUL: PostgreSQL cannot store it (a 500 later)
        raise ServiceError(_l("The name must not contain control characters."))
    if len(name) > 200:
        raise ServiceError(_l("The name may have at most %(num)d characters.", num=200))
    query = select(Group.id).where(
        Group.account_id == account.id,
        or_(Group.name == name, func.lower(Group.name) == name.lower()),
    )
    if exclude_id is not None:
        query = query.where(Group.id != exclude_id)
    if db.session.scalar(query.limit(1)):
        raise ServiceError(_l("A group with this name already exists."))
    return name


def create_group(
    account: Account,
    name: str,
    *,
    actor: User | None,
    source: Source,
    automatic_backups: bool = True,
    ip: str | None = None,
) -> Group:
    group = Group(
        account_id=account.id,
        name=_clean_group_name(account, name),
        automatic_backups=automatic_backups,
    )
    db.session.add(group)
    db.session.flush()
    audit.record(
        "group.created",
        account=account,
        actor=actor,
        object_type="group",
        object_id=group.id,
        details={"name": group.name, "source": checked_source(source)},
        ip=ip,
    )
    return group


def rename_group(
    group: Group, name: str, *, actor: User | None, source: Source, ip: str | None = None
) -> bool:
    account = _account_of(group)
    new = _clean_group_name(account, name, exclude_id=group.id)
    if new == group.name:
        return False
    old, group.name = group.name, new
    db.session.flush()
    audit.record(
        "group.renamed",
        account=account,
        actor=actor,
        object_type="group",
        object_id=group.id,
        details={"old": old, "new": new, "source": checked_source(source)},
        ip=ip,
    )
    return True


def update_group_settings(
    group: Group,
    *,
    actor: User | None,
    source: Source,
    ip: str | None = None,
    automatic_backups: bool,
) -> dict:
    """Change the group's own settings; each change is audited with old and new value."""
    applied = {}
    if group.automatic_backups != automatic_backups:
        applied["automatic_backups"] = {"old": group.automatic_backups, "new": automatic_backups}
        group.automatic_backups = automatic_backups
    if applied:
        db.session.flush()
        audit.record(
            "group.settings_changed",
            account=_account_of(group),
            actor=actor,
            object_type="group",
            object_id=group.id,
            details={"name": group.name, "changes": applied, "source": checked_source(source)},
            ip=ip,
        )
    return applied


def delete_group(group: Group, *, actor: User | None, source: Source, ip: str | None = None) -> int:
    """Delete a group and its subscriptions (the contacts stay). The receivers of
    signals.before_group_delete run first (the backup snapshot; an error refuses).
    Returns the number of subscriptions removed."""
    checked_source(source)
    signals.before_group_delete.send(group, actor=actor, source=source)
    account = _account_of(group)
    events.emit_select(
        account.id,
        events.SUBSCRIPTION_CHANGED,
        select(Subscription.contact_id).where(Subscription.group_id == group.id),
        group=group.name,
        change="group_deleted",
        source=source,
    )
    removed = db.session.execute(
        delete(Subscription).where(Subscription.group_id == group.id),
        execution_options={"synchronize_session": False},
    ).rowcount
    details = {"name": group.name, "subscriptions": removed, "source": source}
    group_id = group.id
    db.session.delete(group)
    db.session.flush()
    db.session.expire_all()  # loaded contacts may hold the removed subscriptions
    audit.record(
        "group.deleted",
        account=account,
        actor=actor,
        object_type="group",
        object_id=group_id,
        details=details,
        ip=ip,
    )
    return removed


def _account_of(obj) -> Account:
    return db.session.get(Account, obj.account_id)


# --- custom fields ------------------------------------------------------------


# --- contacts -------------------------------------------------------------------


def _email_taken(account_id: int, email: str, exclude_id: int | None = None) -> bool:
    query = select(Contact.id).where(Contact.account_id == account_id, Contact.email == email)
    if exclude_id is not None:
        query = query.where(Contact.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def _validate_contact(
    account_id: int,
    *,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    fields: Mapping[str, Any] | None,
    definitions: list[CustomField],
    exclude_id: int | None = None,
) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    taken = False
    if email is not None:
        try:
            clean["email"] = normalize_email(email)
        except ServiceError as exc:
            errors["email"] = exc.args[0]
        else:
            if _email_taken(account_id, clean["email"], exclude_id):
                taken = True
                errors["email"] = _l("Another contact already has this email address.")
            elif privacy.is_suppressed(account_id, clean["email"]):
                raise ContactForgotten()
    for key, value in (("first_name", first_name), ("last_name", last_name)):
        if value is not None:
            value = " ".join(value.split())
            if len(value) > 200:
                errors[key] = _l("The name may have at most %(num)d characters.", num=200)
            elif has_control_characters(value):
                errors[key] = _l("The name must not contain control characters.")
            clean[key] = value
    if fields is not None:
        by_key = {d.key: d for d in definitions}
        values = {}
        for key, raw in fields.items():
            definition = by_key.get(key)
            if definition is None:
                errors[f"field:{key}"] = _l("There is no custom field “%(key)s”.", key=key)
                continue
            try:
                values[key] = clean_field_value(definition, raw)
            except ServiceError as exc:
                errors[f"field:{key}"] = exc.args[0]
        clean["fields"] = values
    if errors:
        raise (EmailTaken if taken else ContactInvalid)(errors)
    return clean


def create_contact(
    account: Account,
    email: str,
    *,
    first_name: str = "",
    last_name: str = "",
    fields: Mapping[str, Any] | None = None,
    actor: User | None = None,
    source: Source,
) -> Contact:
    checked_source(source)
    clean = _validate_contact(
        account.id,
        email=email,
        first_name=first_name,
        last_name=last_name,
        fields=fields or {},
        definitions=custom_fields(account) if fields else [],
    )
    values = {k: v for k, v in clean.pop("fields").items() if v is not None}
    contact = Contact(account_id=account.id, fields=values, **clean)
    db.session.add(contact)
    db.session.flush()
    events.emit(account.id, events.CONTACT_CREATED, [contact.id], source=source)
    return contact


def update_contact(
    contact: Contact,
    *,
    actor: User | None,
    source: Source,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> list[str]:
    """Change master data and custom fields (None = leave as is; an empty custom field
    value removes it). Raises ContactInvalid with one message per field. Returns the
    names of the changed fields (audited without their values)."""
    checked_source(source)
    clean = _validate_contact(
        contact.account_id,
        email=email,
        first_name=first_name,
        last_name=last_name,
        fields=fields,
        definitions=custom_fields(_account_of(contact)) if fields is not None else [],
        exclude_id=contact.id,
    )
    changed = []
    for key in ("email", "first_name", "last_name"):
        if key in clean and getattr(contact, key) != clean[key]:
            setattr(contact, key, clean[key])
            changed.append(key)
    if "fields" in clean:
        merged = dict(contact.fields or {})
        for key, value in clean["fields"].items():
            if value is None:
                if key in merged:
                    del merged[key]
                    changed.append(f"field:{key}")
            elif merged.get(key) != value:
                merged[key] = value
                changed.append(f"field:{key}")
        contact.fields = merged
    if changed:
        contact.updated_at = clock.now()
        db.session.flush()
        events.emit(contact.account_id, events.CONTACT_UPDATED, [contact.id], source=source)
        audit.record(
            "contact.updated",
            account=_account_of(contact),
            actor=actor,
            object_type="contact",
            object_id=contact.id,
            details={"fields": changed, "source": source},
            ip=ip,
        )
    return changed


# --- tags -------------------------------------------------------------------------


TAG_SEPARATORS = (",", ";", "|")


def clean_tag_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_l("Please enter a tag."))
    if has_control_characters(name):
        raise ServiceError(_l("A tag must not contain control characters."))
    if len(name) > 100:
        raise ServiceError(_l("A tag may have at most %(num)d characters.", num=100))
    if any(separator in name for separator in TAG_SEPARATORS):
        # imports split a cell on these, so a tag holding one could not round-trip
        raise ServiceError(
            _l("A tag may not contain a comma, a semicolon or a vertical bar (, ; |).")
        )
    return name


def get_or_create_tag(account: Account, name: str) -> Tag:
    """The account's tag of this name whatever its case ("newsletter" is the tag
    "Newsletter"), as imports match them; a new one keeps the spelling given."""
    name = clean_tag_name(name)
    tag = db.session.scalar(select(Tag).where(Tag.account_id == account.id, Tag.name == name))
    if tag is None:
        folded = name.casefold()
        tag = next((t for t in tags_of(account) if t.name.casefold() == folded), None)
    if tag is None:
        tag = Tag(account_id=account.id, name=name)
        db.session.add(tag)
        db.session.flush()
    return tag


def add_tag(contact: Contact, name: str, *, actor: User | None, source: Source) -> Tag:
    checked_source(source)
    tag = get_or_create_tag(_account_of(contact), name)
    if tag not in contact.tags:
        contact.tags.append(tag)
        db.session.flush()
        events.emit(contact.account_id, events.TAG_ADDED, [contact.id], tag=tag.name, source=source)
    return tag


def remove_tag(contact: Contact, tag: Tag, *, actor: User | None, source: Source) -> bool:
    checked_source(source)
    if tag.account_id != contact.account_id:
        raise ValueError("tag of another account")
    if tag in contact.tags:
        contact.tags.remove(tag)
        db.session.flush()
        events.emit(
            contact.account_id, events.TAG_REMOVED, [contact.id], tag=tag.name, source=source
        )
        return True
    return False


# --- subscriptions and activities -----------------------------------------------------


def subscription(contact: Contact, group: Group) -> Subscription | None:
    return db.session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.group_id == group.id
        )
    )


def subscribe(
    contact: Contact,
    group: Group,
    *,
    actor: User | None = None,
    source: Source,
    at: datetime | None = None,
) -> Subscription:
    """Sign the contact up to the group (again); an active subscription is kept as is."""
    if contact.account_id != group.account_id:
        raise ValueError("contact and group of different accounts")
    sub = subscription(contact, group)
    if sub is None:
        sub = Subscription(
            account_id=contact.account_id,
            contact_id=contact.id,
            group_id=group.id,
            source=checked_source(source),
            active=True,
            activated_at=at or clock.now(),
        )
        db.session.add(sub)
    elif not sub.active:
        sub.active = True
        sub.activated_at = at or clock.now()
        sub.deactivated_at = None
        sub.optout_reason = None
        sub.source = checked_source(source)
    else:
        return sub
    db.session.flush()
    events.emit(
        contact.account_id,
        events.SUBSCRIPTION_CHANGED,
        [contact.id],
        group=group.name,
        change="subscribed",
        source=source,
    )
    return sub


def unsubscribe(
    contact: Contact,
    group: Group,
    *,
    reason: OptoutReason | str = OptoutReason.MANUAL,
    actor: User | None = None,
    source: Source,
    at: datetime | None = None,
) -> Subscription | None:
    """Sign the contact off from the group, keeping the sign-up data."""
    sub = subscription(contact, group)
    if sub is None or not sub.active:
        return sub
    sub.active = False
    sub.deactivated_at = at or clock.now()
    sub.optout_reason = OptoutReason(reason).value
    sub.source = checked_source(source)
    db.session.flush()
    events.emit(
        contact.account_id,
        events.SUBSCRIPTION_CHANGED,
        [contact.id],
        group=group.name,
        change="unsubscribed",
        source=source,
    )
    return sub


def record_activity(
    contact: Contact,
    kind: ActivityKind | str,
    *,
    group: Group | None = None,
    at: datetime | None = None,
    detail: str = "",
) -> Activity:
    activity = Activity(
        account_id=contact.account_id,
        contact_id=contact.id,
        group_id=group.id if group is not None else None,
        kind=ActivityKind(kind).value,
        occurred_at=at or clock.now(),
        detail=detail[:500],
    )
    db.session.add(activity)
    db.session.flush()
    return activity
