"""Custom fields of an account: their definitions, the creation of a new one, and the
cleaning of a value to the field's type (numbers, dates in the reader's forms)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.accounts.service import has_control_characters
from portal.contacts.models import CustomField, FieldType, Source, checked_source
from portal.core import audit
from portal.core.errors import ServiceError
from portal.extensions import db

if TYPE_CHECKING:
    from portal.accounts.models import Account, User


_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def create_custom_field(
    account: Account,
    key: str,
    label: str,
    type: FieldType | str = FieldType.TEXT,
    *,
    choices: list[str] | None = None,
    actor: User | None = None,
    source: Source,
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
            "source": checked_source(source),
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


def custom_fields(account: Account) -> list[CustomField]:
    return list(
        db.session.scalars(
            select(CustomField)
            .where(CustomField.account_id == account.id)
            .order_by(CustomField.position, CustomField.id)
        )
    )
