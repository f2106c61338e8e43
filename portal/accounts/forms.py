"""Forms of the accounts area; labels are lazy so they follow the request's language."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from portal.accounts.models import Role
from portal.i18n import COMMON_TIMEZONES, LANGUAGE_NAMES, is_valid_timezone

ROLE_LABELS = {
    Role.OWNER.value: _l("Owner"),
    Role.ADMIN.value: _l("Admin"),
    Role.EDITOR.value: _l("Editor"),
    Role.VIEWER.value: _l("Viewer"),
}


def role_choices():
    return [(value, label) for value, label in ROLE_LABELS.items()]


def language_choices(blank: bool = False):
    choices = [(code, name) for code, name in LANGUAGE_NAMES.items()]
    return ([("", _l("Automatic"))] + choices) if blank else choices


def timezone_choices(blank: bool = False):
    choices = [(tz, tz) for tz in COMMON_TIMEZONES]
    return ([("", _l("Same as the account"))] + choices) if blank else choices


def _timezone(form, field):
    if field.data and not is_valid_timezone(field.data):
        raise ValidationError(_l("Unknown timezone."))


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Stay signed in"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=10)])
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class ChangePasswordForm(NewPasswordForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])


class AcceptInvitationForm(NewPasswordForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])


class InviteForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    role = SelectField(_l("Role"), choices=role_choices, default=Role.EDITOR.value)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)


class GeneralSettingsForm(FlaskForm):
    name = StringField(_l("Account name"), validators=[DataRequired(), Length(max=200)])
    timezone = SelectField(_l("Timezone"), choices=timezone_choices, validators=[_timezone])
    default_locale = SelectField(_l("Default language"), choices=language_choices)
    automatic_backups = BooleanField(_l("Automatic backups"))


class SenderAddressForm(FlaskForm):
    email = EmailField(_l("Sender address"), validators=[DataRequired(), Length(max=320)])


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])
    locale = SelectField(_l("Language"), choices=lambda: language_choices(blank=True))
    timezone = SelectField(
        _l("Timezone"), choices=lambda: timezone_choices(blank=True), validators=[_timezone]
    )
