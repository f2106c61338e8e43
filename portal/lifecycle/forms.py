"""Forms of deletion, forget me, mass management and the public sign-up form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.lifecycle.models import LifecycleAction

ACTION_LABELS = {
    LifecycleAction.DELETE.value: _l("Delete"),
    LifecycleAction.RESTORE.value: _l("Restore"),
    LifecycleAction.FORGET.value: _l("Forget me"),
}

ACTION_CHOICES = [
    SelectChoice(LifecycleAction.DELETE.value, _l("Delete (restorable until the nightly purge)")),
    SelectChoice(LifecycleAction.RESTORE.value, _l("Restore deleted contacts")),
    SelectChoice(LifecycleAction.FORGET.value, _l("Forget me (erase for good, cannot be undone)")),
]


class ForgetForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that this erases the contact for good and cannot be undone."),
        validators=[DataRequired(message=_l("Please confirm that the contact shall be erased."))],
    )


class MassFilterForm(FlaskForm):
    """Mass management by filter: the filter travels as the list's query string."""

    action = RadioField(_l("Action"), choices=ACTION_CHOICES, default=LifecycleAction.DELETE.value)
    filter = StringField(validators=[Optional(), Length(max=2000)])


class MassListForm(FlaskForm):
    action = RadioField(_l("Action"), choices=ACTION_CHOICES, default=LifecycleAction.DELETE.value)
    emails = TextAreaField(
        _l("Email addresses"),
        description=_l("One per line, or separated by commas or semicolons."),
        validators=[Optional(), Length(max=20_000_000)],
    )
    file = FileField(
        _l("…or a file (CSV, TXT or XLSX)"),
        description=_l("Every cell that holds an email address is used."),
    )


class ConfirmMassForm(FlaskForm):
    """For forget me the box must be ticked; for the other actions it is not shown."""

    understood = BooleanField(_l("I understand that this erases these contacts for good."))


class SignupForm(FlaskForm):
    """The public form. CSRF comes from a signed, time-limited token in the page (see
    views.py): it must work inside the customer's iframe, where our session cookie
    is not sent."""

    class Meta:
        csrf = False

    email = EmailField(
        _l("Email"),
        validators=[DataRequired(message=_l("Please enter your email address.")), Length(max=320)],
    )
    first_name = StringField(_l("First name"), validators=[Optional(), Length(max=200)])
    last_name = StringField(_l("Last name"), validators=[Optional(), Length(max=200)])
    # the honeypot: hidden from people by CSS, filled in by bots
    website = StringField(_l("Leave this field empty"), validators=[Optional()])
    form_key = StringField(validators=[Optional(), Length(max=500)])
