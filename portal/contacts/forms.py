"""Forms of the contacts area. Labels are lazy; the values are checked again (and
finally) by the service, whose messages the views attach to the fields."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.contacts.models import ActivityKind, CustomField, FieldType, OptoutReason
from portal.contacts.queries import ContactFilter

STATUS_LABELS = {
    "active": _l("Active"),
    "unsubscribed": _l("Unsubscribed"),
    "deleted": _l("To be deleted"),
}

OPTOUT_LABELS = {
    OptoutReason.UNSUBSCRIBED.value: _l("Unsubscribed by the recipient"),
    OptoutReason.BOUNCED.value: _l("Bounced"),
    OptoutReason.COMPLAINED.value: _l("Complaint (marked as spam)"),
    OptoutReason.MANUAL.value: _l("Signed off manually"),
    OptoutReason.BLOCKED.value: _l("Blocked (in the previous tool)"),
    OptoutReason.UNCONFIRMED.value: _l("Never confirmed the sign-up"),
    OptoutReason.IMPORTED.value: _l("Imported as signed off"),
}

ACTIVITY_LABELS = {
    ActivityKind.OPEN.value: _l("Opened"),
    ActivityKind.CLICK.value: _l("Clicked"),
    ActivityKind.BOUNCE.value: _l("Bounced"),
}

FIELD_TYPE_LABELS = {
    FieldType.TEXT.value: _l("Text"),
    FieldType.NUMBER.value: _l("Number"),
    FieldType.DATE.value: _l("Date"),
    FieldType.CHOICE.value: _l("Choice"),
}


def _iso_date(form, field):
    if field.data:
        try:
            date.fromisoformat(field.data.strip())
        except ValueError:
            raise ValidationError(_l("Please enter a date as YYYY-MM-DD.")) from None


class ContactFilterForm(FlaskForm):
    """The list filters, sent by GET (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=200)])
    group = SelectField(_l("Group"), choices=[], validate_choice=False, default="")
    status = SelectField(_l("Status"), choices=[], default="")
    tag = SelectField(_l("Tag"), choices=[], validate_choice=False, default="")
    signup_from = StringField(
        _l("Signed up from"), validators=[_iso_date], render_kw={"type": "date"}
    )
    signup_to = StringField(
        _l("Signed up until"), validators=[_iso_date], render_kw={"type": "date"}
    )

    def set_choices(self, groups, tags) -> None:
        self.status.choices = [SelectChoice("", _l("All"))] + [
            SelectChoice(value, label) for value, label in STATUS_LABELS.items()
        ]
        self.group.choices = [SelectChoice("", _l("All groups"))] + [
            SelectChoice(str(g.id), g.name) for g in groups
        ]
        self.tag.choices = [SelectChoice("", _l("All tags"))] + [
            SelectChoice(str(t.id), t.name) for t in tags
        ]

    def validate_signup_to(self, field):
        try:
            start = date.fromisoformat((self.signup_from.data or "").strip())
            end = date.fromisoformat((field.data or "").strip())
        except ValueError:
            return
        if end < start:
            raise ValidationError(_l("The end date is before the start date."))

    def to_filter(self) -> ContactFilter:
        """The filter of the submitted, validated values."""
        return ContactFilter.from_args(
            {
                "q": self.q.data or "",
                "group": self.group.data or "",
                "status": self.status.data or "",
                "tag": self.tag.data or "",
                "signup_from": (self.signup_from.data or "").strip(),
                "signup_to": (self.signup_to.data or "").strip(),
            }
        )


class ContactForm(FlaskForm):
    email = StringField(
        _l("Email"), validators=[DataRequired(message=_l("Please enter an email address."))]
    )
    first_name = StringField(_l("First name"), validators=[Length(max=200)])
    last_name = StringField(_l("Last name"), validators=[Length(max=200)])

    custom_field_names: list[tuple[str, str]] = []  # (form field name, custom field key)

    def custom_values(self) -> dict[str, str]:
        return {key: self[name].data for name, key in self.custom_field_names}

    def field_for(self, error_key: str):
        """The form field a service error key ("email", "field:<key>") belongs to."""
        if error_key.startswith("field:"):
            key = error_key.removeprefix("field:")
            for name, field_key in self.custom_field_names:
                if field_key == key:
                    return self[name]
            return None
        return getattr(self, error_key, None)


def contact_form(definitions: list[CustomField], contact=None, **kwargs) -> ContactForm:
    """A ContactForm with one field per custom field definition of the account."""

    class Form(ContactForm):
        pass

    names = []
    for d in definitions:
        name = f"cf_{d.key}"  # keys are [a-z0-9_]: safe as form field names
        if d.type_enum is FieldType.CHOICE:
            field = SelectField(
                d.label,
                choices=[SelectChoice("", "—")] + [SelectChoice(c, c) for c in d.choices],
                validate_choice=False,
            )
        elif d.type_enum is FieldType.DATE:
            field = StringField(d.label, render_kw={"type": "date"})
        elif d.type_enum is FieldType.NUMBER:
            field = StringField(d.label, render_kw={"inputmode": "decimal"})
        else:
            field = StringField(d.label)
        setattr(Form, name, field)
        names.append((name, d.key))
    Form.custom_field_names = names
    form = Form(**kwargs)
    if contact is not None and not form.is_submitted():
        form.email.data = contact.email
        form.first_name.data = contact.first_name
        form.last_name.data = contact.last_name
        values = contact.fields or {}
        for name, key in names:
            value = values.get(key)
            form[name].data = "" if value is None else str(value)
    return form


class TagForm(FlaskForm):
    name = StringField(
        _l("Tag"),
        validators=[DataRequired(message=_l("Please enter a tag.")), Length(max=100)],
    )


class GroupNameForm(FlaskForm):
    name = StringField(
        _l("Name of the group"),
        validators=[
            DataRequired(message=_l("Please enter a name for the group.")),
            Length(max=200),
        ],
    )


class GroupSettingsForm(FlaskForm):
    automatic_backups = BooleanField(_l("Automatic backups"))


class DeleteGroupForm(FlaskForm):
    confirm = BooleanField(
        _l("Yes, delete this group"),
        validators=[DataRequired(message=_l("Please confirm that the group shall be deleted."))],
    )
