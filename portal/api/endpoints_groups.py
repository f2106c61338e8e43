"""/api/v1/groups (list, get, create, rename / settings, delete), /fields and /me."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import func, select

from portal.api import schemas as s
from portal.api.core import ApiError, actor, client_ip, operation
from portal.api.serialize import group_json, iso, owned_or_404
from portal.contacts import counts as contact_counts
from portal.contacts import fields as contact_fields
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Group
from portal.core.errors import ServiceError
from portal.extensions import db

SOURCE = "api"
GROUP_ID = "/groups/<int:group_id>"


def _name_taken(name: str, exclude_id: int | None = None) -> bool:
    name = " ".join((name or "").split())
    query = select(Group.id).where(
        Group.account_id == g.account.id, func.lower(Group.name) == name.lower()
    )
    if exclude_id is not None:
        query = query.where(Group.id != exclude_id)
    return bool(name) and db.session.scalar(query.limit(1)) is not None


def _refusal(exc: ServiceError, name: str, exclude_id: int | None = None) -> ApiError:
    message = exc.args[0]
    if _name_taken(name, exclude_id):
        return ApiError(409, message, code="exists", fields={"name": str(message)})
    return ApiError(422, message, fields={"name": str(message)})


@operation(
    "GET",
    "/groups",
    tag="groups",
    summary="List groups",
    description="By name, with active, inactive (signed off) and to-be-deleted counts.",
    responses={200: ("The groups.", s.listing("Group"))},
)
def list_groups():
    groups = queries.groups_of(g.account)
    counts = contact_counts.group_counts(g.account, [grp.id for grp in groups])
    return jsonify(data=[group_json(grp, counts[grp.id]) for grp in groups])


@operation(
    "POST",
    "/groups",
    tag="groups",
    summary="Create a group",
    body=s.GROUP_CREATE,
    responses={201: ("The new group.", s.ref("Group"))},
    errors=(409, 415, 422),
)
def create_group(body: dict[str, Any]):
    try:
        group = contacts.create_group(
            g.account,
            body["name"],
            actor=actor(),
            source=SOURCE,
            automatic_backups=body.get("automatic_backups", True),
            ip=client_ip(),
        )
    except ServiceError as exc:
        raise _refusal(exc, body["name"]) from exc
    db.session.commit()
    return jsonify(group_json(group)), 201


@operation(
    "GET",
    GROUP_ID,
    tag="groups",
    summary="Get a group",
    responses={200: ("The group.", s.ref("Group"))},
    errors=(404,),
)
def get_group(group_id: int):
    return jsonify(group_json(owned_or_404(Group, group_id)))


@operation(
    "PATCH",
    GROUP_ID,
    tag="groups",
    summary="Rename a group or switch its automatic backups",
    body=s.GROUP_UPDATE,
    responses={200: ("The group.", s.ref("Group"))},
    errors=(404, 409, 415, 422),
)
def update_group(group_id: int, body: dict[str, Any]):
    group = owned_or_404(Group, group_id)
    if "name" in body:
        try:
            contacts.rename_group(group, body["name"], actor=actor(), source=SOURCE, ip=client_ip())
        except ServiceError as exc:
            raise _refusal(exc, body["name"], exclude_id=group.id) from exc
    if "automatic_backups" in body:
        contacts.update_group_settings(
            group,
            actor=actor(),
            source=SOURCE,
            ip=client_ip(),
            automatic_backups=body["automatic_backups"],
        )
    db.session.commit()
    return jsonify(group_json(group))


@operation(
    "DELETE",
    GROUP_ID,
    tag="groups",
    summary="Delete a group",
    description=(
        "Its subscriptions go, its contacts stay. A deletion through the API makes no "
        "backup of the group."
    ),
    responses={200: ("Deleted.", s.ref("GroupDeleted"))},
    errors=(404, 409),
)
def delete_group(group_id: int):
    group = owned_or_404(Group, group_id)
    try:
        removed = contacts.delete_group(group, actor=actor(), source=SOURCE, ip=client_ip())
    except ServiceError as exc:
        raise ApiError(409, exc.args[0]) from exc
    db.session.commit()
    return jsonify(deleted=True, subscriptions_removed=removed)


@operation(
    "GET",
    "/fields",
    tag="fields",
    summary="List the account's custom fields",
    description="The keys to use in a contact's `fields`.",
    responses={200: ("The custom fields.", s.listing("CustomField"))},
)
def list_fields():
    return jsonify(
        data=[
            {"key": f.key, "label": f.label, "type": f.type, "choices": list(f.choices or [])}
            for f in contact_fields.custom_fields(g.account)
        ]
    )


@operation(
    "GET",
    "/me",
    tag="account",
    summary="The account and the key of this request",
    description="A cheap way to check a key.",
    responses={200: ("Account and key.", s.ref("Me"))},
)
def me():
    key, account = g.api_key, g.account
    return jsonify(
        account={
            "slug": account.slug,
            "name": account.name,
            "timezone": account.timezone,
            "default_locale": account.default_locale,
        },
        key={
            "name": key.name,
            "scope": key.scope,
            "prefix": key.prefix,
            "created_at": iso(key.created_at),
        },
    )
