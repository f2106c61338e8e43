"""Operations on contacts, groups, tags, subscriptions, custom fields and activities,
and the contact list query (filters, keyset pages, capped counts).

Every write takes explicit arguments (account or object, actor, source) and flushes;
the caller commits. Messages of refusals are lazy strings in the user's language."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, delete, exists, func, literal, not_, or_, select, tuple_
from sqlalchemy.exc import IntegrityError

from portal import clock, events
from portal.accounts.models import Account
from portal.accounts.service import has_control_characters
from portal.contacts.models import (
    Activity,
    ActivityKind,
    Contact,
    ContactStatus,
    CustomField,
    FieldType,
    Group,
    OptoutReason,
    Subscription,
    Tag,
    contact_tags,
    fold,
)
from portal.core import audit, privacy, signals, sql
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.tenancy import id_or_none

if TYPE_CHECKING:
    from portal.accounts.models import User

__all__ = ["ServiceError", "ContactInvalid", "ContactForgotten"]

PAGE_SIZE = 50
COUNT_CAP = 10_000
SOURCES = ("ui", "api", "job", "form")


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


# Called with (group, actor, source) before a group is deleted; the backups area
# registers its snapshot here. A hook that raises stops the deletion.


def _source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return source


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
    source: str = "ui",
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
        details={"name": group.name, "source": _source(source)},
        ip=ip,
    )
    return group


def rename_group(
    group: Group, name: str, *, actor: User | None, source: str = "ui", ip: str | None = None
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
        details={"old": old, "new": new, "source": _source(source)},
        ip=ip,
    )
    return True


def update_group_settings(
    group: Group,
    *,
    actor: User | None,
    source: str = "ui",
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
            details={"name": group.name, "changes": applied, "source": _source(source)},
            ip=ip,
        )
    return applied


def delete_group(
    group: Group, *, actor: User | None, source: str = "ui", ip: str | None = None
) -> int:
    """Delete a group and its subscriptions (the contacts stay). The receivers of
    signals.before_group_delete run first (the backup snapshot; an error refuses).
    Returns the number of subscriptions removed."""
    _source(source)
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


def groups_of(account: Account) -> list[Group]:
    return list(
        db.session.scalars(
            select(Group).where(Group.account_id == account.id).order_by(Group.name, Group.id)
        )
    )


@dataclass
class GroupCounts:
    active: int = 0
    inactive: int = 0
    to_be_deleted: int = 0

    @property
    def total(self) -> int:
        return self.active + self.inactive + self.to_be_deleted


def group_counts(account: Account, group_ids: list[int] | None = None) -> dict[int, GroupCounts]:
    """Active / inactive (unsubscribed) contacts per group, without the contacts pending
    deletion, which are counted apart. Exact: the subscriptions are counted index-only
    on (group_id, active); the pending deletions are few (purged nightly) and found
    through (account_id, status)."""
    if group_ids is None:
        group_ids = list(db.session.scalars(select(Group.id).where(Group.account_id == account.id)))
    counts = {gid: GroupCounts() for gid in group_ids}
    if not group_ids:
        return counts
    rows = db.session.execute(
        select(Subscription.group_id, Subscription.active, func.count())
        .where(Subscription.group_id.in_(group_ids))
        .group_by(Subscription.group_id, Subscription.active)
    )
    for gid, active, n in rows:
        if active:
            counts[gid].active += n
        else:
            counts[gid].inactive += n
    any_pending = db.session.scalar(
        select(Contact.id)
        .where(Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value)
        .limit(1)
    )
    if any_pending is None:
        return counts
    pending = db.session.execute(
        select(Subscription.group_id, Subscription.active, func.count())
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(
            Contact.account_id == account.id,
            Contact.status == ContactStatus.DELETED.value,
            Subscription.group_id.in_(group_ids),
        )
        .group_by(Subscription.group_id, Subscription.active)
    )
    for gid, active, n in pending:
        if active:
            counts[gid].active -= n
        else:
            counts[gid].inactive -= n
        counts[gid].to_be_deleted += n
    return counts


@dataclass
class StatusCounts:
    """The account's contacts in the three states of the list's status filter."""

    active: int = 0
    unsubscribed: int = 0
    to_be_deleted: int = 0

    @property
    def total(self) -> int:
        return self.active + self.unsubscribed + self.to_be_deleted


def status_counts(account: Account) -> StatusCounts:
    """Exact counts by status, set-based, in the partition of filter_conditions:
    all contacts, index-only on (account_id, id); those to be deleted, few (purged
    nightly), on (account_id, status, id); and the unsubscribed - not to be deleted,
    with an inactive and no active subscription - as the contacts of the account's
    groups' inactive subscriptions EXCEPT those of their active ones, both read
    index-only from (group_id, active, contact_id). (An anti-join probing every
    signed-off contact for an active subscription took 1.7-2.7 s at a million contacts,
    the EXCEPT 1 s on the loaded bench machine; docs/decisions/home-page.md.)"""
    total = db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.account_id == account.id)
    )
    deleted = db.session.scalar(
        select(func.count())
        .select_from(Contact)
        .where(Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value)
    )
    groups = select(Group.id).where(Group.account_id == account.id)

    def contacts_of(active: bool):
        return select(Subscription.contact_id).where(
            Subscription.group_id.in_(groups), Subscription.active.is_(active)
        )

    signed_off_only = contacts_of(False).except_(contacts_of(True)).subquery()
    unsubscribed = db.session.scalar(
        select(func.count())
        .select_from(signed_off_only)
        .join(Contact, Contact.id == signed_off_only.c.contact_id)
        .where(Contact.status == ContactStatus.ACTIVE.value)
    )
    total, deleted, unsubscribed = total or 0, deleted or 0, unsubscribed or 0
    return StatusCounts(
        active=total - deleted - unsubscribed, unsubscribed=unsubscribed, to_be_deleted=deleted
    )


def group_events(group: Group, limit: int = 10):
    """The latest audit events about this group."""

    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.account_id == group.account_id,
                AuditEvent.object_type == "group",
                AuditEvent.object_id == group.id,
            )
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def _account_of(obj) -> Account:
    return db.session.get(Account, obj.account_id)


# --- custom fields ------------------------------------------------------------

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def custom_fields(account: Account) -> list[CustomField]:
    return list(
        db.session.scalars(
            select(CustomField)
            .where(CustomField.account_id == account.id)
            .order_by(CustomField.position, CustomField.id)
        )
    )


def create_custom_field(
    account: Account,
    key: str,
    label: str,
    type: FieldType | str = FieldType.TEXT,
    *,
    choices: list[str] | None = None,
    actor: User | None = None,
    source: str = "ui",
) -> CustomField:
    key = key.strip().lower()
    if not _KEY_RE.match(key):
        raise ServiceError(
            _l("Use lowercase letters, digits and underscores for the key, starting with a letter.")
        )
    if db.session.scalar(
        select(CustomField.id).where(CustomField.account_id == account.id, CustomField.key == key)
    ):
        raise ServiceError(_l("A custom field with this key already exists."))
    type = FieldType(type)
    choices = [c.strip() for c in (choices or []) if c.strip()]
    if type is FieldType.CHOICE and not choices:
        raise ServiceError(_l("A choice field needs at least one choice."))
    position = db.session.scalar(
        select(func.coalesce(func.max(CustomField.position), 0)).where(
            CustomField.account_id == account.id
        )
    )
    definition = CustomField(
        account_id=account.id,
        key=key,
        label=label.strip() or key,
        type=type.value,
        choices=choices if type is FieldType.CHOICE else [],
        position=position + 1,
    )
    db.session.add(definition)
    db.session.flush()
    audit.record(
        "custom_field.created",
        account=account,
        actor=actor,
        object_type="custom_field",
        object_id=definition.id,
        details={
            "key": key,
            "label": definition.label,
            "type": type.value,
            "source": _source(source),
        },
    )
    return definition


_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")


def clean_field_value(definition: CustomField, raw: Any) -> Any:
    """The stored form of a custom field value (None = empty); ServiceError if invalid.
    Numbers are int or float, dates ISO strings (YYYY-MM-DD), choices one of the list."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raw = str(raw)
    if isinstance(raw, int | float | Decimal) and definition.type_enum is FieldType.NUMBER:
        text = str(raw)
    elif isinstance(raw, date) and definition.type_enum is FieldType.DATE:
        return raw.isoformat()
    else:
        text = str(raw).strip()
    if not text:
        return None
    kind = definition.type_enum
    if kind is FieldType.TEXT:
        if len(text) > 1000:
            raise ServiceError(_l("The text may have at most %(num)d characters.", num=1000))
        if has_control_characters(text.replace("\n", "").replace("\r", "").replace("\t", "")):
            raise ServiceError(_l("The text must not contain control characters."))
        return text
    if kind is FieldType.NUMBER:
        normalized = text.replace(" ", "").replace("\u00a0", "")
        if "," in normalized and "." not in normalized:
            normalized = normalized.replace(",", ".")
        try:
            number = Decimal(normalized)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ServiceError(_l("“%(value)s” is not a number.", value=text[:40]))
        return int(number) if number == number.to_integral_value() else float(number)
    if kind is FieldType.DATE:
        try:
            if m := _DMY.match(text):
                day, month, year = (int(x) for x in m.groups())
                return date(year, month, day).isoformat()
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ServiceError(_l("“%(value)s” is not a date.", value=text[:40])) from None
    if text not in definition.choices:
        raise ServiceError(_l("Please choose one of the offered values."))
    return text


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
    source: str = "ui",
) -> Contact:
    _source(source)
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
    source: str = "ui",
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> list[str]:
    """Change master data and custom fields (None = leave as is; an empty custom field
    value removes it). Raises ContactInvalid with one message per field. Returns the
    names of the changed fields (audited without their values)."""
    _source(source)
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


def find_contact(account: Account, email: str) -> Contact | None:
    try:
        email = normalize_email(email)
    except ServiceError:
        return None
    return db.session.scalar(
        select(Contact).where(Contact.account_id == account.id, Contact.email == email)
    )


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


def tags_of(account: Account) -> list[Tag]:
    return list(
        db.session.scalars(select(Tag).where(Tag.account_id == account.id).order_by(Tag.name))
    )


def add_tag(contact: Contact, name: str, *, actor: User | None, source: str = "ui") -> Tag:
    _source(source)
    tag = get_or_create_tag(_account_of(contact), name)
    if tag not in contact.tags:
        contact.tags.append(tag)
        db.session.flush()
        events.emit(contact.account_id, events.TAG_ADDED, [contact.id], tag=tag.name, source=source)
    return tag


def remove_tag(contact: Contact, tag: Tag, *, actor: User | None, source: str = "ui") -> bool:
    _source(source)
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
    source: str = "ui",
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
            source=_source(source),
            active=True,
            activated_at=at or clock.now(),
        )
        db.session.add(sub)
    elif not sub.active:
        sub.active = True
        sub.activated_at = at or clock.now()
        sub.deactivated_at = None
        sub.optout_reason = None
        sub.source = _source(source)
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
    source: str = "ui",
    at: datetime | None = None,
) -> Subscription | None:
    """Sign the contact off from the group, keeping the sign-up data."""
    sub = subscription(contact, group)
    if sub is None or not sub.active:
        return sub
    sub.active = False
    sub.deactivated_at = at or clock.now()
    sub.optout_reason = OptoutReason(reason).value
    sub.source = _source(source)
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


def contact_subscriptions(contact: Contact) -> list[tuple[Subscription, Group]]:
    return list(
        db.session.execute(
            select(Subscription, Group)
            .join(Group, Group.id == Subscription.group_id)
            .where(Subscription.contact_id == contact.id)
            .order_by(Group.name)
        )
    )


def activities_of(contact: Contact, limit: int = 100) -> list[Activity]:
    return list(
        db.session.scalars(
            select(Activity)
            .where(Activity.contact_id == contact.id)
            .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            .limit(limit)
        )
    )


# --- the contact list: filters, keyset pages, capped counts ------------------------------

STATUS_FILTERS = ("active", "unsubscribed", "deleted")


@dataclass(frozen=True)
class ContactFilter:
    """What the list shows; its query string re-runs the same filter server-side
    ("select all N matching")."""

    group_id: int | None = None
    status: str = ""  # "" (all) | active | unsubscribed | deleted (= to be deleted)
    tag_id: int | None = None
    signup_from: date | None = None
    signup_to: date | None = None
    q: str = ""
    # "anywhere": a part of the address or name (the list, its bulk actions, mass
    # management); "prefix": the start of them (the API's documented contract)
    search: str = "anywhere"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContactFilter:
        """Lenient parsing of a query string; unusable values are dropped."""

        def as_int(name, model):

            return id_or_none(model, args.get(name))

        def as_date(name):
            try:
                return date.fromisoformat(args.get(name) or "")
            except ValueError:
                return None

        status = args.get("status") or ""
        return cls(
            group_id=as_int("group", Group),
            status=status if status in STATUS_FILTERS else "",
            tag_id=as_int("tag", Tag),
            signup_from=as_date("signup_from"),
            signup_to=as_date("signup_to"),
            q=(args.get("q") or "").strip()[:200],
        )

    def to_args(self) -> dict[str, str]:
        args = {
            "group": str(self.group_id) if self.group_id else "",
            "status": self.status,
            "tag": str(self.tag_id) if self.tag_id else "",
            "signup_from": self.signup_from.isoformat() if self.signup_from else "",
            "signup_to": self.signup_to.isoformat() if self.signup_to else "",
            "q": self.q,
        }
        return {k: v for k, v in args.items() if v}

    def query_string(self) -> str:
        return urlencode(self.to_args())

    @property
    def is_empty(self) -> bool:
        return not self.to_args()

    def with_(self, **changes) -> ContactFilter:
        return replace(self, **changes)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column, term: str):
    """`column` starts with `term`, in a form the database serves from an index:
    LIKE with the pattern opclass on PostgreSQL, a range on SQLite (whose LIKE is
    case-insensitive and skips a binary index). The stored values are already
    lower-cased / folded, and so is `term`."""
    if sql.is_postgres():
        return column.like(_escape_like(term) + "%", escape="\\")
    if ord(term[-1]) >= 0x10FFFF:
        return column >= term
    upper = term[:-1] + chr(ord(term[-1]) + 1)
    return and_(column >= term, column < upper)


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def filter_conditions(account: Account, f: ContactFilter, tz: ZoneInfo | None = None) -> list:
    """WHERE clauses on Contact for the filter. The sign-up dates are days in `tz`.

    Status: a contact is "to be deleted" (status deleted), otherwise "unsubscribed"
    when it has no active but at least one inactive subscription (within the filtered
    group, when a group is chosen), otherwise "active". The three partition all contacts."""
    tz = tz or ZoneInfo("UTC")
    conds: list = [Contact.account_id == account.id]
    sub = Subscription

    signup = []
    if f.signup_from:
        signup.append(sub.activated_at >= _local_midnight_utc(f.signup_from, tz))
    if f.signup_to:
        signup.append(sub.activated_at < _local_midnight_utc(f.signup_to + timedelta(days=1), tz))

    def subs(*where):
        return exists().where(sub.contact_id == Contact.id, *where)

    if f.group_id:
        in_group = (sub.group_id == f.group_id, sub.account_id == account.id)
        if f.status == "active":
            conds += [
                Contact.status == ContactStatus.ACTIVE.value,
                subs(*in_group, sub.active.is_(True), *signup),
            ]
        elif f.status == "unsubscribed":
            conds += [
                Contact.status == ContactStatus.ACTIVE.value,
                subs(*in_group, sub.active.is_(False), *signup),
            ]
        else:
            if f.status == "deleted":
                conds.append(Contact.status == ContactStatus.DELETED.value)
            conds.append(subs(*in_group, *signup))
    else:
        if f.status == "deleted":
            conds.append(Contact.status == ContactStatus.DELETED.value)
        elif f.status == "active":
            # "has an active subscription, or none at all": one probe of the contact's few
            # subscriptions per row. (An OR of two EXISTS makes PostgreSQL hash every
            # inactive subscription of the table first: 150 ms instead of 5 at 1M rows.)
            any_active = (
                select(func.max(case((sub.active.is_(True), 1), else_=0)))
                .where(sub.contact_id == Contact.id)
                .scalar_subquery()
            )
            conds += [
                Contact.status == ContactStatus.ACTIVE.value,
                func.coalesce(any_active, 1) == 1,
            ]
        elif f.status == "unsubscribed":
            conds += [
                Contact.status == ContactStatus.ACTIVE.value,
                not_(subs(sub.active.is_(True))),
                subs(sub.active.is_(False)),
            ]
        if signup:
            # PostgreSQL drives a narrow date range from (account_id, activated_at); SQLite,
            # without statistics, would take that index for every probe, so it gets the
            # contact_id probe alone there.
            if sql.is_postgres():
                conds.append(subs(sub.account_id == account.id, *signup))
            else:
                conds.append(subs(*signup))

    if f.tag_id:
        conds.append(
            exists().where(
                contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id == f.tag_id
            )
        )

    if f.q:
        conds.append(search_condition(f.q, anywhere=f.search != "prefix"))
    return conds


SEARCH_ANYWHERE_FROM = 3  # characters; shorter terms match the start (see below)


def _contains(column, term: str):
    """`column` contains `term` literally (% and _ typed by the user are no wildcards).
    PostgreSQL serves it from the trigram (GIN) index of the column; SQLite scans."""
    return column.like("%" + _escape_like(term) + "%", escape="\\")


def search_condition(q: str, *, anywhere: bool = True):
    """The free search: the lower-cased term against the address, the folded term
    against the name ("first last"), each word of it anywhere in the name, so that
    "neu" finds bernd.neu02@... and "Neu Bernd" finds Bernd Neu.

    A term of one or two characters matches the start of the address or of the first
    or last name only: a trigram index cannot serve it, and on a million contacts a
    two-letter substring would read every row. A term with "@" searches the address
    only. With anywhere=False (the API) every term matches by prefix, as before."""
    term = q.strip()
    email_term = term.lower()
    name_term = fold(term)
    words = name_term.split()
    if anywhere and len(email_term) >= SEARCH_ANYWHERE_FROM:
        matches = [_contains(Contact.email, email_term)]
        if words and "@" not in term:
            if max(len(w) for w in words) >= SEARCH_ANYWHERE_FROM:
                matches.append(and_(*(_contains(Contact.search_name, w) for w in words)))
            else:
                matches += [
                    _prefix(Contact.search_name, name_term),
                    _prefix(Contact.search_name_rev, name_term),
                ]
        return or_(*matches)
    matches = [_prefix(Contact.email, email_term)]
    if name_term and "@" not in term:
        matches += [
            _prefix(Contact.search_name, name_term),
            _prefix(Contact.search_name_rev, name_term),
        ]
    return or_(*matches)


SORT_KEYS = ("added", "email", "name", "status")
# A search matching up to this many contacts is read from its trigram indexes and sorted
# (tens of ms); one matching more is read along the sort order's index, which finds a
# page quickly because matches are that dense (see _Segment.ordered). In address and
# name order the matches of a search cluster ("nthe": every Günther under "g"), so
# those orders sort more matches rather than walk.
FEW_MATCHES = 20_000
FEW_MATCHES_CLUSTERED = 50_000


def few_matches(sort: ContactSort | None) -> int:
    """Up to how many matches a search is read from its trigram indexes in `sort`."""
    if sort is not None and sort.key in ("email", "name"):
        return FEW_MATCHES_CLUSTERED
    return FEW_MATCHES


STATUS_ORDER = ("active", "unsubscribed", "deleted")


@dataclass(frozen=True)
class ContactSort:
    """The list's order: by date added (the default, newest first), address, name or
    status, either way; ties (and the rows of one status) by id in the same direction,
    so that every page is stable. Unknown values fall back to the default."""

    key: str = "added"
    descending: bool = True

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContactSort:
        key = args.get("sort") or ""
        if key not in SORT_KEYS:
            return cls()
        direction = args.get("dir") or ""
        if direction not in ("asc", "desc"):
            direction = "desc" if key == "added" else "asc"
        return cls(key=key, descending=direction == "desc")

    @property
    def is_default(self) -> bool:
        return self == ContactSort()

    def to_args(self) -> dict[str, str]:
        """Query-string values; none for the default order."""
        if self.is_default:
            return {}
        return {"sort": self.key, "dir": "desc" if self.descending else "asc"}

    def toggled(self, key: str) -> ContactSort:
        """The order a column header links to: the other direction when the list is
        already sorted by it, otherwise its natural first direction."""
        if key == self.key:
            return ContactSort(key=key, descending=not self.descending)
        return ContactSort(key=key, descending=key == "added")


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_after: int | None = None  # ?after= (the contact before the next page)
    prev_before: int | None = None  # ?before= (the contact after the previous page)
    states: dict[int, str] = field(default_factory=dict)  # active|unsubscribed|deleted
    tags: dict[int, list[Tag]] = field(default_factory=dict)
    at_start: bool = True  # nothing comes before this page: it is the first one


@dataclass
class _Segment:
    """A run of the list in one index order: WHERE `conds` ORDER BY `keys`. Most orders
    are one segment; by status, each status is one (its filter, ordered by id), so the
    list is "active, then unsubscribed, then to be deleted" without computing the
    status of every contact."""

    conds: list
    keys: list
    descending: bool

    def after(self, values: tuple, forward: bool):
        """Rows after `values` in this order (forward) or before them (backward)."""
        row = tuple_(*self.keys) if len(self.keys) > 1 else self.keys[0]
        value = values if len(self.keys) > 1 else values[0]
        later = row < value if self.descending else row > value
        earlier = row > value if self.descending else row < value
        return later if forward else earlier

    def ordered(self, forward: bool, few: bool = False) -> list:
        """ORDER BY of this segment. With `few` (the search is known to match at most
        few_matches() rows) the keys are wrapped so that no index provides the order: the
        planner then collects the matches from the search's trigram indexes and sorts
        them, instead of walking the id or address index and filtering - which it
        prefers because it cannot estimate `LIKE '%...%'`, and which reads 800,000 rows
        of a million for a term that matches 279 (560 ms instead of 7)."""
        down = self.descending == forward
        keys = [_unindexed(k) for k in self.keys] if few else self.keys
        return [k.desc() if down else k.asc() for k in keys]


def _unindexed(column):
    """The same order as `column`, from an expression no index holds."""
    if column.key == "id":
        return column + 0
    return column.concat("")


def _sort_keys(key: str) -> list:
    if key == "email":
        return [Contact.email, Contact.id]
    if key == "name":
        return [Contact.search_name, Contact.id]
    return [Contact.id]


def _segments(
    account: Account, f: ContactFilter, sort: ContactSort, tz: ZoneInfo | None
) -> list[_Segment]:
    if sort.key != "status":
        return [_Segment(filter_conditions(account, f, tz), _sort_keys(sort.key), sort.descending)]
    order = reversed(STATUS_ORDER) if sort.descending else STATUS_ORDER
    return [
        _Segment(
            filter_conditions(account, f.with_(status=state), tz), [Contact.id], sort.descending
        )
        for state in order
        if not f.status or f.status == state
    ]


def _locate(
    segments: list[_Segment], contact_id: int, sort: ContactSort
) -> tuple[int, tuple] | None:
    """Where a page cursor (a contact id) stands: its segment and its sort values. By
    date added the id is the position itself (the contact may be gone meanwhile); by
    the other orders the contact is read, and a cursor no longer in the list (deleted
    for good, or not matching any more) starts the list again."""
    if sort.key == "added":
        return 0, (contact_id,)
    for index, segment in enumerate(segments):
        row = db.session.execute(
            select(*segment.keys).where(*segment.conds, Contact.id == contact_id)
        ).first()
        if row is not None:
            return index, tuple(row)
    return None


def _seek(
    segments: list[_Segment],
    start: tuple[int, tuple] | None,
    forward: bool,
    limit: int,
    few: bool = False,
) -> list[Contact]:
    """Up to `limit` contacts from the cursor on (backward: before it, nearest first)."""
    order = list(enumerate(segments))
    if not forward:
        order.reverse()
    rows: list[Contact] = []
    for index, segment in order:
        if start is not None and (index < start[0] if forward else index > start[0]):
            continue
        query = select(Contact).where(*segment.conds)
        if start is not None and index == start[0]:
            query = query.where(segment.after(start[1], forward))
        query = query.order_by(*segment.ordered(forward, few)).limit(limit - len(rows))
        rows += db.session.scalars(query)
        if len(rows) >= limit:
            break
    return rows


def page_contacts(
    account: Account,
    f: ContactFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
    tz: ZoneInfo | None = None,
    sort: ContactSort | None = None,
    matches: int | None = None,
) -> ContactPage:
    """One page in `sort` order (default: newest first), keyset on the sort values and
    the id (no OFFSET: page 20,000 costs what page 1 costs). `after` pages forward,
    `before` back; both are contact ids. `matches`: the exact count when the caller
    has it (count_contacts, not capped) - a search with few matches is then read
    through its trigram indexes (see _Segment.ordered)."""
    sort = sort or ContactSort()
    few = bool(f.q) and matches is not None and matches <= few_matches(sort)
    segments = _segments(account, f, sort, tz)
    cursor = after if after is not None else before
    start = _locate(segments, cursor, sort) if cursor is not None else None
    if cursor is not None and start is None:
        after = before = None  # the cursor left the list: from the start
    if before is not None:
        rows = _seek(segments, start, False, size + 1, few)
        more_before = len(rows) > size
        contacts = list(reversed(rows[:size]))
        has_prev, has_next = more_before, bool(contacts)
    else:
        rows = _seek(segments, start, True, size + 1, few)
        contacts = rows[:size]
        has_prev, has_next = after is not None and bool(contacts), len(rows) > size
    page = ContactPage(
        contacts=contacts,
        next_after=contacts[-1].id if has_next and contacts else None,
        prev_before=contacts[0].id if has_prev and contacts else None,
        at_start=not has_prev if contacts else after is None and before is None,
    )
    _annotate(page)
    return page


def _annotate(page: ContactPage) -> None:
    """Status and tags of the page's rows in two small queries."""
    ids = [c.id for c in page.contacts]
    if not ids:
        return
    flags: dict[int, set[bool]] = {}
    for contact_id, active in db.session.execute(
        select(Subscription.contact_id, Subscription.active).where(Subscription.contact_id.in_(ids))
    ):
        flags.setdefault(contact_id, set()).add(bool(active))
    for c in page.contacts:
        seen = flags.get(c.id, set())
        if c.is_deleted:
            page.states[c.id] = "deleted"
        elif seen == {False}:
            page.states[c.id] = "unsubscribed"
        else:
            page.states[c.id] = "active"
    for contact_id, tag in db.session.execute(
        select(contact_tags.c.contact_id, Tag)
        .join(Tag, Tag.id == contact_tags.c.tag_id)
        .where(contact_tags.c.contact_id.in_(ids))
        .order_by(Tag.name)
    ):
        page.tags.setdefault(contact_id, []).append(tag)


def count_contacts(
    account: Account, f: ContactFilter, *, cap: int | None = None, tz: ZoneInfo | None = None
) -> tuple[int, bool]:
    """(count, capped): exact up to `cap` (COUNT_CAP), otherwise (cap, True) for "more
    than cap". The database stops after cap + 1 rows, so a million matches cost little."""
    cap = COUNT_CAP if cap is None else cap
    limited = (
        select(literal(1).label("one"))
        .select_from(Contact)
        .where(*filter_conditions(account, f, tz))
        .limit(cap + 1)
        .subquery()
    )
    n = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return (cap, True) if n > cap else (n, False)


def iter_matching_ids(
    account: Account, f: ContactFilter, *, batch: int = 1000, tz: ZoneInfo | None = None
) -> Iterator[list[int]]:
    """All ids matching the filter in batches, newest first, for bulk actions on
    "all N matching" (keyset, so rows changed by the caller between batches are fine)."""
    conds = filter_conditions(account, f, tz)
    after = None
    while True:
        query = select(Contact.id).where(*conds)
        if after is not None:
            query = query.where(Contact.id < after)
        ids = list(db.session.scalars(query.order_by(Contact.id.desc()).limit(batch)))
        if not ids:
            return
        yield ids
        after = ids[-1]


@dataclass(frozen=True)
class BulkSelection:
    """What a bulk action on the list acts on, from the list's form:

    - ``ids`` (repeated): the rows ticked one by one;
    - ``scope=page`` with ``page_ids`` (comma-separated): "select all on this page";
    - ``scope=matching`` with ``filter`` (the list's query string): "select all N
      matching" - the filter is run again here, on the server, at the time of the action.
    """

    scope: str = "selected"  # selected | page | matching
    ids: tuple[int, ...] = ()
    filter: ContactFilter = field(default_factory=ContactFilter)

    @classmethod
    def from_form(cls, form) -> BulkSelection:
        from urllib.parse import parse_qsl

        scopes = set(form.getlist("scope"))
        scope = "matching" if "matching" in scopes else "page" if "page" in scopes else "selected"
        raw = form.getlist("ids")
        if scope == "page":
            raw = (form.get("page_ids") or "").split(",")
        ids = []
        for value in raw:
            try:
                ids.append(int(value))
            except (TypeError, ValueError):
                continue
        filter_ = ContactFilter.from_args(dict(parse_qsl(form.get("filter") or "")))
        return cls(scope=scope, ids=tuple(dict.fromkeys(ids)), filter=filter_)

    def iter_ids(
        self, account: Account, *, batch: int = 1000, tz: ZoneInfo | None = None
    ) -> Iterator[list[int]]:
        """The selected ids of `account` in batches; ids of other accounts are dropped."""
        if self.scope == "matching":
            yield from iter_matching_ids(account, self.filter, batch=batch, tz=tz)
            return
        for start in range(0, len(self.ids), batch):
            chunk = list(self.ids[start : start + batch])
            owned = db.session.scalars(
                select(Contact.id).where(Contact.account_id == account.id, Contact.id.in_(chunk))
            )
            ids = sorted(owned, reverse=True)
            if ids:
                yield ids


def contacts_by_ids(account: Account, ids: list[int]) -> list[Contact]:
    """The account's contacts among `ids` (foreign ids are silently not found)."""
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Contact).where(Contact.account_id == account.id, Contact.id.in_(ids))
        )
    )
