"""The OpenAPI 3.1 document, built from the declared operations (core.operation) and
served at /api/v1/openapi.json. Nothing here is written twice: paths, parameters and
bodies come from the declarations the requests are checked against."""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import jsonify

from portal.api import schemas as s
from portal.api.core import OPERATIONS, PREFIX, Operation, operation

TITLE = "Recipient portal API"
VERSION = "1.0.0"

DESCRIPTION = """\
The JSON API of the recipient portal: contacts, groups, subscriptions, tags, imports
and backups of one account.

**Keys.** Owners and admins create API keys on the account's settings page
(*Settings → API*); operators with `flask --app app portal create-api-key`. A key is
shown once. Send it as `Authorization: Bearer <key>`. A key with the scope `read` may
only read (GET); a key with the scope `write` may also change data. Session cookies of
the portal are never accepted here.

**Errors** are JSON: `{"error": {"code": "...", "message": "..."}}`, with a `fields`
object for wrong values. The message is in the language of the `Accept-Language`
header (en, de, it, nl, pl); the code is stable.

**Rate limits** count per key; over the limit the answer is 429 with `Retry-After`.

**Pages.** Lists of contacts are cut by a cursor: pass `next_cursor` as `cursor`.

**Deletion** is soft: a deleted contact is "to be deleted" and can be restored until
the nightly purge. *Forget* erases a contact at once and for good; the address is then
refused (409, code `forgotten`) until the person signs up again through a form.
Imports and deletions through the API make no backup.
"""

TAGS = [
    ("contacts", "Contacts (recipients): master data, deletion, restore, forget me."),
    ("subscriptions", "A contact's sign-up and sign-off in a group."),
    ("tags", "Tags of contacts."),
    ("groups", "Groups (recipient lists)."),
    ("fields", "The account's custom fields."),
    ("imports", "Imports of lists, from a file or JSON rows."),
    ("backups", "Automatic backups of a group's master data."),
    ("account", "The account and key of the request."),
    ("meta", "This document."),
]

ERROR_DESCRIPTIONS = {
    400: "The request is malformed (a parameter, or the JSON itself).",
    401: "No key, or the key is unknown or revoked.",
    403: "The key may not do this (a read key cannot write).",
    404: "No such object in this key's account.",
    409: "Conflicts with the object's state (e.g. a forgotten address, a duplicate name).",
    413: "The upload is too large.",
    415: "The body must be application/json.",
    422: "Some values are not valid; `fields` says which.",
    429: "Too many requests with this key; wait for Retry-After seconds.",
}

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> tuple[str, list[tuple[str, str]]]:
    """Flask rule → OpenAPI path, and its (name, converter) parameters."""
    params = [(name, conv or "string") for conv, name in _CONVERTER.findall(rule)]
    return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": s.ref("Error")}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds until the key may send again.",
                "schema": {"type": "integer"},
            }
        }
    return response


def _response(description: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    schema = dict(schema)
    media = schema.pop("x-media", "application/json")
    return {"description": description, "content": {media: {"schema": schema}}}


def _operation_doc(op: Operation) -> dict[str, Any]:
    _, path_params = openapi_path(op.rule)
    doc: dict[str, Any] = {
        "operationId": op.endpoint.removeprefix("api."),
        "tags": [op.tag],
        "summary": op.summary,
    }
    if op.description:
        doc["description"] = op.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": copy.deepcopy(s.ID) if conv == "int" else {"type": "string"},
        }
        for name, conv in path_params
    ]
    for param in op.query:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "schema": copy.deepcopy(param.schema),
        }
        if param.description:
            entry["description"] = param.description
        parameters.append(entry)
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        content = {"application/json": {"schema": copy.deepcopy(op.body)}}
        if op.multipart is not None:
            content["multipart/form-data"] = {"schema": copy.deepcopy(op.multipart)}
        doc["requestBody"] = {"required": op.body_required, "content": content}
    responses = {str(code): _response(*spec) for code, spec in sorted(op.responses.items())}
    errors = set(op.errors)
    if not op.public:
        errors |= {401, 429}
        if op.writes:
            errors.add(403)
    if path_params:
        errors.add(404)
    if op.query:
        errors.add(400)
    if op.body is not None:
        errors |= {400, 415, 422}
    for status in sorted(errors):
        responses[str(status)] = _error_response(status)
    doc["responses"] = responses
    if op.public:
        doc["security"] = []
    return doc


def build_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS.values():
        path, _ = openapi_path(op.rule)
        paths.setdefault(PREFIX + path, {})[op.method.lower()] = _operation_doc(op)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": copy.deepcopy(s.COMPONENTS),
            "securitySchemes": {
                "bearerKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key of the account: `Authorization: Bearer rpk_…`",
                }
            },
        },
        "security": [{"bearerKey": []}],
    }


@operation(
    "GET",
    "/openapi.json",
    tag="meta",
    summary="This OpenAPI 3.1 document",
    responses={200: ("The document.", {"type": "object"})},
    public=True,
)
def openapi_document():
    return jsonify(build_document())
