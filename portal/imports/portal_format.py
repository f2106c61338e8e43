"""The portal's own CSV format: what backups store, the export writes and the import
recognises without a mapping step. One place for the header, the way a cell is
written and read back, and the order of tags, so that a backup, an export and an
import of either can never drift apart (issue 19, point 3).

Header: PORTAL_HEADER, then one "field:<key>" column per custom field. Times are ISO
8601 in UTC with offset; custom fields are their text (numbers as digits, anything
else as JSON, as PostgreSQL's ->> writes it); tags are joined by ";" in tag_order.
Cells that look like formulas are guarded by safe_csv when written and unguarded
when read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from portal.safe_csv import TRIGGERS

CUSTOM_PREFIX = "field:"

# The header of the portal's own CSV exports and backups, in this order.
PORTAL_HEADER = (
    "email",
    "first_name",
    "last_name",
    "tags",
    "active",
    "signup_at",
    "signoff_at",
    "optout_reason",
)


def header_for(field_keys: list[str]) -> list[str]:
    return [*PORTAL_HEADER, *(f"{CUSTOM_PREFIX}{key}" for key in field_keys)]


def iso_time(value: datetime | None) -> str:
    """ISO 8601 in UTC with offset (microseconds only when there are some)."""
    return value.astimezone(UTC).isoformat() if value is not None else ""


def field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # as PostgreSQL's ->> writes it


def tag_order(name: str) -> tuple[str, str]:
    return (name.lower(), name)


def unguard(cell: str) -> str:
    """Undo the formula guard of safe_csv (as the importer does)."""
    if cell[:1] == "'" and cell[1:2] in TRIGGERS:
        return cell[1:]
    return cell


def parse_time(cell: str) -> datetime | None:
    cell = cell.strip()
    if not cell:
        return None
    value = datetime.fromisoformat(cell.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
