"""/api/v1/contacts: list with the portal's filters and a cursor, get by id or by email,
upsert by email, update, delete (soft), restore, forget; subscriptions and tags.

Every write goes through the same services as the portal, with source "api"."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import g, jsonify
from flask_babel import lazy_gettext as _l

from portal.api import schemas as s
from portal.api.core import ApiError, Param, actor, client_ip, operation, parse_datetime
from portal.api.serialize import (
    MAX_ID,
    contact_json,
    contacts_json,
    owned_or_404,
    subscription_json,
    tag_json,
)
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group, Tag
from portal.contacts.queries import ContactFilter
from portal.contacts.service import ContactInvalid, EmailTaken
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.lifecycle import service as lifecycle

SOURCE = "api"
BIG_ID = s.ID


def _one(status: int, description: str, component: str) -> dict:
    return {status: (description, s.ref(component))}


def _field_errors(exc: ContactInvalid) -> dict[str, str]:
    return {key.replace("field:", "fields."): str(msg) for key, msg in exc.errors.items()}


def _invalid(exc: ServiceError, field: str | None = None) -> ApiError:
    if isinstance(exc, ContactInvalid):
        return ApiError(422, exc.args[0], fields=_field_errors(exc))
    return ApiError(422, exc.args[0], fields={field: str(exc.args[0])} if field else None)


def _refuse_forgotten(exc: Exception) -> None:
    """A forgotten address (lifecycle.service.ContactForgotten) is a 409 "forgotten"."""
    if isinstance(exc, lifecycle.ContactForgotten):
        raise ApiError(409, exc.args[0], code="forgotten") from exc


def _not_pending(contact: Contact) -> None:
    if contact.is_deleted:
        raise ApiError(
            409,
            _l(
                "The contact is to be deleted. Restore it first, or send it again "
                "with POST /contacts."
            ),
            code="deleted",
        )


def _tz() -> ZoneInfo:
    try:
        return ZoneInfo(g.account.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


# --- reading ------------------------------------------------------------------------------


LIST_PARAMS = [
    Param("group", BIG_ID, "Only contacts in this group (id)."),
    Param(
        "status",
        {"type": "string", "enum": list(queries.STATUS_FILTERS)},
        "active, unsubscribed, or deleted (= to be deleted).",
    ),
    Param("tag", BIG_ID, "Only contacts with this tag (id)."),
    Param(
        "signup_from",
        {"type": "string", "format": "date"},
        "Signed up on or after this day (in the account's timezone).",
    ),
    Param(
        "signup_to",
        {"type": "string", "format": "date"},
        "Signed up on or before this day (in the account's timezone).",
    ),
    Param(
        "q",
        {"type": "string", "maxLength": 200},
        "Search: the start of the email address, the first or the last name.",
    ),
    Param(
        "cursor",
        {"type": "string", "maxLength": 40, "pattern": "^[0-9]+$"},
        "The `next_cursor` of the previous page.",
    ),
    Param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        "Contacts per page (1–200, default 50).",
    ),
]


@operation(
    "GET",
    "/contacts",
    tag="contacts",
    summary="List contacts",
    description=(
        "Newest first, with the filters of the portal's contact list. Pages are cut by a "
        "cursor (keyset), so contacts added meanwhile do not shift the pages."
    ),
    query=LIST_PARAMS,
    responses=_one(200, "A page of contacts.", "ContactPage"),
    errors=(400, 404),
)
def list_contacts(query: dict[str, Any]):
    if query["group"] is not None:
        owned_or_404(Group, query["group"])
    if query["tag"] is not None:
        owned_or_404(Tag, query["tag"])
    start, end = query["signup_from"], query["signup_to"]
    if start and end and start > end:
        message = _l("“signup_from” must not be after “signup_to”.")
        raise ApiError(400, message, fields={"signup_from": str(message)})
    after = None
    if query["cursor"]:
        after = int(query["cursor"])
        if after > MAX_ID:
            raise ApiError(400, _l("This cursor is not valid."), fields={"cursor": ""})
    f = ContactFilter(
        group_id=query["group"],
        status=query["status"] or "",
        tag_id=query["tag"],
        signup_from=start,
        signup_to=end,
        q=(query["q"] or "").strip(),
        search="prefix",  # the documented contract: the start of the address or name
    )
    page = queries.page_contacts(g.account, f, after=after, size=query["limit"], tz=_tz())
    return jsonify(
        data=contacts_json(page.contacts, page.tags),
        next_cursor=str(page.next_after) if page.next_after else None,
    )


CONTACT_ID = "/contacts/<int:contact_id>"


@operation(
    "GET",
    CONTACT_ID,
    tag="contacts",
    summary="Get a contact",
    responses=_one(200, "The contact.", "Contact"),
    errors=(404,),
)
def get_contact(contact_id: int):
    return jsonify(contact_json(owned_or_404(Contact, contact_id)))


@operation(
    "GET",
    "/contacts/by-email",
    tag="contacts",
    summary="Find a contact by email address",
    query=[
        Param(
            "email",
            {"type": "string", "minLength": 1, "maxLength": 320},
            "The address.",
            required=True,
        )
    ],
    responses=_one(200, "The contact.", "Contact"),
    errors=(400, 404),
)
def get_contact_by_email(query: dict[str, Any]):
    contact = queries.find_contact(g.account, query["email"])
    if contact is None:
        raise ApiError(404, _l("There is no contact with this email address."))
    return jsonify(contact_json(contact))


# --- writing ------------------------------------------------------------------------------


def _restore(contact: Contact) -> None:
    lifecycle.undelete_contacts(
        g.account, [contact.id], actor=actor(), source=SOURCE, ip=client_ip()
    )
    db.session.refresh(contact)


def _add_tags(contact: Contact, names: list[str]) -> bool:
    changed = False
    for i, name in enumerate(names):
        before = {t.id for t in contact.tags}
        try:
            tag = contacts.add_tag(contact, name, actor=actor(), source=SOURCE)
        except ServiceError as exc:
            raise ApiError(422, exc.args[0], fields={f"tags[{i}]": str(exc.args[0])}) from exc
        changed = changed or tag.id not in before
    return changed


def _subscribe_all(contact: Contact, group_ids: list[int]) -> bool:
    changed = False
    for group_id in group_ids:
        group = owned_or_404(Group, group_id)
        before = contacts.subscription(contact, group)
        was_active = before is not None and before.active
        contacts.subscribe(contact, group, actor=actor(), source=SOURCE)
        changed = changed or not was_active
    return changed


@operation(
    "POST",
    "/contacts",
    tag="contacts",
    summary="Create or update a contact by email address (upsert)",
    description=(
        "A new address is added; an existing contact is updated with the values sent "
        "(values not sent stay as they are). A contact that is to be deleted is restored "
        "and then updated. A forgotten address is refused with 409 and the code "
        "“forgotten”: it can only come back when the person signs up again through a form."
    ),
    body=s.CONTACT_UPSERT,
    responses={
        200: ("Updated, restored or unchanged.", s.ref("UpsertResult")),
        201: ("Created.", s.ref("UpsertResult")),
    },
    errors=(404, 409, 415, 422),
)
def upsert_contact(body: dict[str, Any]):
    """Two clients sending the same new address at once: the loser runs again and
    updates the winner's contact — never a 422, a 500 or a second contact."""
    try:
        return contacts.run_again_on_lost_race(lambda: _upsert(body), attempts=UPSERT_ATTEMPTS)
    except EmailTaken as exc:
        raise _invalid(exc) from exc


UPSERT_ATTEMPTS = 3


def _upsert(body: dict[str, Any]):
    try:
        upserted = lifecycle.upsert_contact(
            g.account,
            body["email"],
            first_name=body.get("first_name"),
            last_name=body.get("last_name"),
            fields=body.get("fields"),
            actor=actor(),
            source=SOURCE,
            ip=client_ip(),
        )
    except EmailTaken:
        raise
    except ServiceError as exc:
        _refuse_forgotten(exc)
        raise _invalid(exc) from exc
    contact = upserted.contact
    if upserted.created:
        result = "created"
    elif upserted.restored:
        result = "restored"
    else:
        result = "updated" if upserted.changed else "unchanged"
    tagged = _add_tags(contact, body.get("tags") or [])
    subscribed = _subscribe_all(contact, body.get("group_ids") or [])
    if (tagged or subscribed) and result == "unchanged":
        result = "updated"
    db.session.commit()
    response = jsonify(result=result, contact=contact_json(contact))
    response.status_code = 201 if result == "created" else 200
    return response


@operation(
    "PATCH",
    CONTACT_ID,
    tag="contacts",
    summary="Change a contact's master data",
    description='Only the values sent change; a custom field sent as null or "" is removed.',
    body=s.CONTACT_UPDATE,
    responses=_one(200, "The changed contact.", "Contact"),
    errors=(404, 409, 415, 422),
)
def update_contact(contact_id: int, body: dict[str, Any]):
    contact = owned_or_404(Contact, contact_id)
    _not_pending(contact)
    try:
        contacts.update_contact(
            contact,
            actor=actor(),
            source=SOURCE,
            email=body.get("email"),
            first_name=body.get("first_name"),
            last_name=body.get("last_name"),
            fields=body.get("fields"),
            ip=client_ip(),
        )
    except ServiceError as exc:
        _refuse_forgotten(exc)
        raise _invalid(exc) from exc
    db.session.commit()
    return jsonify(contact_json(contact))


# --- deletion, restore, forget me ------------------------------------------------------------


@operation(
    "DELETE",
    CONTACT_ID,
    tag="contacts",
    summary="Delete a contact (soft)",
    description=(
        "The contact becomes “to be deleted”: it leaves the active counts and can be "
        "restored until the nightly purge (02:00–04:00 in the account's timezone). A "
        "deletion through the API makes no backup. Deleting it again changes nothing."
    ),
    responses=_one(200, "The contact, to be deleted.", "Contact"),
    errors=(404,),
)
def delete_contact(contact_id: int):
    contact = owned_or_404(Contact, contact_id)
    lifecycle.delete_contacts(g.account, [contact.id], actor=actor(), source=SOURCE, ip=client_ip())
    db.session.commit()
    db.session.refresh(contact)
    return jsonify(contact_json(contact))


@operation(
    "POST",
    CONTACT_ID + "/restore",
    tag="contacts",
    summary="Restore a contact that is to be deleted",
    description=(
        "Before the nightly purge: the contact comes back with its groups, tags and "
        "sign-up and sign-off data. An active contact stays as it is."
    ),
    responses=_one(200, "The contact.", "Contact"),
    errors=(404,),
)
def restore_contact(contact_id: int):
    contact = owned_or_404(Contact, contact_id)
    _restore(contact)
    db.session.commit()
    return jsonify(contact_json(contact))


@operation(
    "POST",
    CONTACT_ID + "/forget",
    tag="contacts",
    summary="Forget a contact (erase at once, for good)",
    description=(
        "Erases the contact, its subscriptions, tags and activities at once; this cannot "
        "be undone. The address goes on the suppression list: imports, restores and this "
        "API refuse it until the person signs up again through a form. The answer counts "
        "what was erased; the audit log keeps the same receipt without the address."
    ),
    responses=_one(200, "What was erased.", "ForgetReceipt"),
    errors=(404,),
)
def forget_contact(contact_id: int):
    contact = owned_or_404(Contact, contact_id)
    receipt = lifecycle.forget_contact(contact, actor=actor(), source=SOURCE, ip=client_ip())
    db.session.commit()
    return jsonify(forgotten=True, contact_id=contact_id, counts=receipt.as_dict())


# --- subscriptions -----------------------------------------------------------------------------

SUBSCRIPTION = "/contacts/<int:contact_id>/subscriptions/<int:group_id>"


@operation(
    "PUT",
    SUBSCRIPTION,
    tag="subscriptions",
    summary="Sign a contact up to a group",
    description=(
        "A new or signed-off subscription becomes active with the sign-up time given "
        "(default now); an active one is kept as it is."
    ),
    body=s.SUBSCRIBE,
    body_required=False,
    responses={
        200: ("The subscription (it existed).", s.ref("Subscription")),
        201: ("The subscription (new).", s.ref("Subscription")),
    },
    errors=(404, 409, 415, 422),
)
def subscribe(contact_id: int, group_id: int, body: dict[str, Any]):
    contact = owned_or_404(Contact, contact_id)
    group = owned_or_404(Group, group_id)
    _not_pending(contact)
    at = parse_datetime(body["activated_at"]) if body.get("activated_at") else None
    existed = contacts.subscription(contact, group) is not None
    sub = contacts.subscribe(contact, group, actor=actor(), source=SOURCE, at=at)
    db.session.commit()
    response = jsonify(subscription_json(sub, group.name))
    response.status_code = 200 if existed else 201
    return response


@operation(
    "POST",
    SUBSCRIPTION + "/unsubscribe",
    tag="subscriptions",
    summary="Sign a contact off from a group",
    description=(
        "Keeps the sign-up data and records the sign-off time (default now) and the "
        "opt-out reason (default manual). A signed-off subscription stays as it is."
    ),
    body=s.UNSUBSCRIBE,
    body_required=False,
    responses=_one(200, "The subscription.", "Subscription"),
    errors=(404, 409, 415, 422),
)
def unsubscribe(contact_id: int, group_id: int, body: dict[str, Any]):
    contact = owned_or_404(Contact, contact_id)
    group = owned_or_404(Group, group_id)
    _not_pending(contact)
    sub = contacts.subscription(contact, group)
    if sub is None:
        raise ApiError(404, _l("The contact is not in this group."))
    at = parse_datetime(body["deactivated_at"]) if body.get("deactivated_at") else None
    if sub.active and at is not None and sub.activated_at is not None and at < sub.activated_at:
        message = _l("The sign-off cannot be before the sign-up.")
        raise ApiError(422, message, fields={"deactivated_at": str(message)})
    sub = contacts.unsubscribe(
        contact,
        group,
        reason=body.get("reason") or "manual",
        actor=actor(),
        source=SOURCE,
        at=at,
    )
    db.session.commit()
    return jsonify(subscription_json(sub, group.name))


# --- tags -------------------------------------------------------------------------------------


@operation(
    "GET",
    "/tags",
    tag="tags",
    summary="List the account's tags",
    responses={200: ("The tags, by name.", s.listing("Tag"))},
)
def list_tags():
    return jsonify(data=[tag_json(t) for t in queries.tags_of(g.account)])


@operation(
    "POST",
    "/contacts/<int:contact_id>/tags",
    tag="tags",
    summary="Add a tag to a contact",
    description="The tag is created when the account does not have it yet.",
    body=s.TAG_ADD,
    responses={
        200: ("The contact had the tag already.", s.ref("Tag")),
        201: ("The tag was added.", s.ref("Tag")),
    },
    errors=(404, 409, 415, 422),
)
def add_tag(contact_id: int, body: dict[str, Any]):
    contact = owned_or_404(Contact, contact_id)
    _not_pending(contact)
    before = {t.id for t in contact.tags}
    try:
        tag = contacts.add_tag(contact, body["name"], actor=actor(), source=SOURCE)
    except ServiceError as exc:
        raise _invalid(exc, "name") from exc
    db.session.commit()
    response = jsonify(tag_json(tag))
    response.status_code = 200 if tag.id in before else 201
    return response


@operation(
    "DELETE",
    "/contacts/<int:contact_id>/tags/<int:tag_id>",
    tag="tags",
    summary="Remove a tag from a contact",
    responses={204: ("Removed.", None)},
    errors=(404, 409),
)
def remove_tag(contact_id: int, tag_id: int):
    contact = owned_or_404(Contact, contact_id)
    tag = owned_or_404(Tag, tag_id)
    _not_pending(contact)
    if not contacts.remove_tag(contact, tag, actor=actor(), source=SOURCE):
        raise ApiError(404, _l("The contact does not have this tag."))
    db.session.commit()
    return "", 204
