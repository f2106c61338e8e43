"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the API reads and writes.

Request schemas are checked on every request (core.check_schema) and shown in the
document; response schemas are shown in the document and checked by the tests
(schemathesis and tests/api/test_openapi.py)."""

from __future__ import annotations

from typing import Any

from portal.contacts.models import OptoutReason
from portal.imports.models import COUNTERS, ImportMode, ImportStatus


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [kind, "null"]}


TEXT = {"type": "string"}
# No id is larger than a signed 64-bit integer (the databases' BIGINT); the server reads
# every integer up to this bound as a number and answers 404 for an id nobody has, so the
# document and the server draw the same line (issue 16, point 12).
MAX_ID = 2**63 - 1
ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
WHEN = {"type": "string", "format": "date-time"}
OPTOUT_REASONS = [r.value for r in OptoutReason]
FIELD_VALUE = {"type": ["string", "number", "null"]}

# --- what the API answers ----------------------------------------------------------------

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable, for programs."},
                    "message": {
                        "type": "string",
                        "description": "For people, in the language of Accept-Language.",
                    },
                    "fields": {
                        "type": "object",
                        "description": "One message per wrong field or parameter.",
                        "additionalProperties": {"type": "string"},
                    },
                },
            }
        },
    },
    "Tag": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": ID, "name": TEXT},
    },
    "Subscription": {
        "type": "object",
        "description": "The contact in a group: the sign-up and sign-off data.",
        "required": [
            "group_id",
            "group_name",
            "active",
            "activated_at",
            "deactivated_at",
            "optout_reason",
            "source",
        ],
        "properties": {
            "group_id": ID,
            "group_name": TEXT,
            "active": {"type": "boolean"},
            "activated_at": nullable(WHEN),
            "deactivated_at": nullable(WHEN),
            "optout_reason": {"type": ["string", "null"], "enum": [*OPTOUT_REASONS, None]},
            "source": TEXT,
        },
    },
    "Contact": {
        "type": "object",
        "required": [
            "id",
            "email",
            "first_name",
            "last_name",
            "fields",
            "status",
            "state",
            "deleted_at",
            "created_at",
            "updated_at",
            "tags",
            "subscriptions",
        ],
        "properties": {
            "id": ID,
            "email": TEXT,
            "first_name": TEXT,
            "last_name": TEXT,
            "fields": {
                "type": "object",
                "description": "Custom field values by key (see GET /fields).",
                "additionalProperties": {"type": ["string", "number"]},
            },
            "status": {
                "type": "string",
                "enum": ["active", "deleted"],
                "description": "“deleted” = to be deleted: restorable until the nightly purge.",
            },
            "state": {
                "type": "string",
                "enum": ["active", "unsubscribed", "deleted"],
                "description": "As in the portal's list: unsubscribed = signed off everywhere.",
            },
            "deleted_at": nullable(WHEN),
            "created_at": WHEN,
            "updated_at": WHEN,
            "tags": {"type": "array", "items": ref("Tag")},
            "subscriptions": {"type": "array", "items": ref("Subscription")},
        },
    },
    "ContactPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": ref("Contact")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
    },
    "UpsertResult": {
        "type": "object",
        "required": ["result", "contact"],
        "properties": {
            "result": {"type": "string", "enum": ["created", "updated", "restored", "unchanged"]},
            "contact": ref("Contact"),
        },
    },
    "ForgetReceipt": {
        "type": "object",
        "required": ["forgotten", "contact_id"],
        "properties": {
            "forgotten": {"type": "boolean"},
            "contact_id": ID,
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "GroupCounts": {
        "type": "object",
        "required": ["active", "inactive", "to_be_deleted"],
        "properties": {
            "active": {"type": "integer"},
            "inactive": {"type": "integer"},
            "to_be_deleted": {"type": "integer"},
        },
    },
    "Group": {
        "type": "object",
        "required": ["id", "name", "automatic_backups", "created_at", "counts"],
        "properties": {
            "id": ID,
            "name": TEXT,
            "automatic_backups": {"type": "boolean"},
            "created_at": WHEN,
            "counts": ref("GroupCounts"),
        },
    },
    "GroupDeleted": {
        "type": "object",
        "required": ["deleted", "subscriptions_removed"],
        "properties": {
            "deleted": {"type": "boolean"},
            "subscriptions_removed": {"type": "integer"},
        },
    },
    "CustomField": {
        "type": "object",
        "required": ["key", "label", "type", "choices"],
        "properties": {
            "key": TEXT,
            "label": TEXT,
            "type": {"type": "string", "enum": ["text", "number", "date", "choice"]},
            "choices": {"type": "array", "items": TEXT},
        },
    },
    "ImportProblem": {
        "type": "object",
        "required": ["line", "kind", "code", "message"],
        "properties": {
            "line": {"type": "integer", "description": "Line 1 is the header."},
            "kind": {
                "type": "string",
                "enum": ["invalid", "skipped", "warning"],
                "description": (
                    "invalid: refused (address missing or invalid); skipped: not imported "
                    "(duplicate, forgotten, …); warning: imported, one cell left empty."
                ),
            },
            "code": TEXT,
            "message": TEXT,
        },
    },
    "Import": {
        "type": "object",
        "required": [
            "id",
            "status",
            "finished",
            "percent",
            "group_id",
            "group_name",
            "source",
            "mode",
            "import_consent",
            "restore_deleted",
            "filename",
            "created_at",
            "started_at",
            "finished_at",
            "counters",
            "skipped_reasons",
            "error",
            "problems",
        ],
        "properties": {
            "id": ID,
            "status": {"type": "string", "enum": [s.value for s in ImportStatus]},
            "finished": {"type": "boolean"},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "group_id": {"type": ["integer", "null"]},
            "group_name": TEXT,
            "source": TEXT,
            "mode": {"type": "string", "enum": [m.value for m in ImportMode]},
            "import_consent": {"type": "boolean"},
            "restore_deleted": {"type": "boolean"},
            "filename": TEXT,
            "created_at": WHEN,
            "started_at": nullable(WHEN),
            "finished_at": nullable(WHEN),
            "counters": {
                "type": "object",
                "required": list(COUNTERS),
                "properties": {name: {"type": "integer"} for name in COUNTERS},
            },
            "skipped_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
            "consent": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": (
                    "What the import did to consent: new_on, new_off (added as signed off), "
                    "signed_off, kept_newer (a newer sign-up here stood), reactivated, "
                    "stays_off (re-activation not chosen), signup_moved; with "
                    "'<effect>:<reason>' counts for new_off and signed_off."
                ),
            },
            "error": TEXT,
            "problems": {
                "type": "array",
                "items": ref("ImportProblem"),
                "description": "The first 100 rows not imported, or imported with a warning.",
            },
        },
    },
    "Backup": {
        "type": "object",
        "required": [
            "id",
            "group_id",
            "group_name",
            "reason",
            "created_at",
            "expires_at",
            "contact_count",
            "size",
        ],
        "properties": {
            "id": ID,
            "group_id": {"type": ["integer", "null"], "description": "null: the group is gone."},
            "group_name": TEXT,
            "reason": {"type": "string", "enum": ["import", "group_deleted", "manual"]},
            "created_at": WHEN,
            "expires_at": WHEN,
            "contact_count": {"type": "integer"},
            "size": {"type": "integer", "description": "Bytes, compressed."},
        },
    },
    "Me": {
        "type": "object",
        "required": ["account", "key"],
        "properties": {
            "account": {
                "type": "object",
                "required": ["slug", "name", "timezone", "default_locale"],
                "properties": {
                    "slug": TEXT,
                    "name": TEXT,
                    "timezone": TEXT,
                    "default_locale": TEXT,
                },
            },
            "key": {
                "type": "object",
                "required": ["name", "scope", "prefix", "created_at"],
                "properties": {
                    "name": TEXT,
                    "scope": {"type": "string", "enum": ["read", "write"]},
                    "prefix": TEXT,
                    "created_at": WHEN,
                },
            },
        },
    },
}


def listing(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": ref(item)}},
    }


# --- what the API reads --------------------------------------------------------------------

NAME_200 = {"type": "string", "minLength": 1, "maxLength": 200}
FIELDS_IN = {
    "type": "object",
    "description": 'Custom field values by key; null or "" removes a value.',
    "maxProperties": 200,
    "additionalProperties": FIELD_VALUE,
}
TAG_NAME = {"type": "string", "minLength": 1, "maxLength": 100}

CONTACT_UPSERT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": {"type": "string", "maxLength": 320},
        "first_name": {"type": "string", "maxLength": 200},
        "last_name": {"type": "string", "maxLength": 200},
        "fields": FIELDS_IN,
        "tags": {
            "type": "array",
            "maxItems": 100,
            "items": TAG_NAME,
            "description": "Tags to add (existing tags stay).",
        },
        "group_ids": {
            "type": "array",
            "maxItems": 100,
            "items": ID,
            "description": "Groups to sign the contact up to (active subscriptions stay).",
        },
    },
}

CONTACT_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "email": {"type": "string", "maxLength": 320},
        "first_name": {"type": "string", "maxLength": 200},
        "last_name": {"type": "string", "maxLength": 200},
        "fields": FIELDS_IN,
    },
}

GROUP_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": NAME_200, "automatic_backups": {"type": "boolean"}},
}

GROUP_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"name": NAME_200, "automatic_backups": {"type": "boolean"}},
}

SUBSCRIBE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "activated_at": {**WHEN, "description": "Sign-up time; default now."},
    },
}

UNSUBSCRIBE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "enum": OPTOUT_REASONS, "default": "manual"},
        "deactivated_at": {**WHEN, "description": "Sign-off time; default now."},
    },
}

TAG_ADD = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": TAG_NAME},
}

IMPORT_CELL = {"type": ["string", "number", "boolean", "null"]}
IMPORT_ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": {"type": "string"},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "tags": {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            "description": "A list, or one text separated by , ; or |.",
        },
        "active": {"type": ["boolean", "string", "null"]},
        "signup_at": {"type": ["string", "null"]},
        "signoff_at": {"type": ["string", "null"]},
        "optout_reason": {"type": ["string", "null"]},
        "fields": {"type": "object", "additionalProperties": IMPORT_CELL},
    },
}

IMPORT_OPTIONS = {
    "group_id": ID,
    "mode": {
        "type": "string",
        "enum": [m.value for m in ImportMode],
        "default": ImportMode.UPDATE_ADD.value,
        "description": "add = add only, update_add = update and add, update = update only.",
    },
    "import_consent": {
        "type": "boolean",
        "default": False,
        "description": (
            "Re-activate contacts who signed off here when a row is active with a sign-up "
            "date newer than the sign-off (and take the file's sign-up dates for contacts "
            "already in the group). What signs people off — active = no, a sign-off date, "
            "an opt-out reason, a status such as unsubscribed — always applies, with or "
            "without this option."
        ),
    },
    "restore_deleted": {
        "type": "boolean",
        "default": False,
        "description": "Bring back contacts that are to be deleted.",
    },
}

IMPORT_JSON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["group_id", "rows"],
    "properties": {
        **IMPORT_OPTIONS,
        "rows": {"type": "array", "minItems": 1, "maxItems": 100_000, "items": IMPORT_ROW},
    },
}

IMPORT_MULTIPART = {
    "type": "object",
    "required": ["file", "group_id"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV, TXT or XLSX."},
        **IMPORT_OPTIONS,
        "mapping": {
            "type": "string",
            "description": (
                "Optional JSON list with one target per column: email, first_name, "
                "last_name, tags, signup_at, signoff_at, active, optout_reason, "
                'field:<key> or "" (ignore). Without it the columns are recognised '
                "by their headers."
            ),
        },
    },
}
