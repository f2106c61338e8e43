"""Forms of the import pages; column targets are read per column from the mapping page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from portal.imports import mapping as m
from portal.imports.models import ImportMode


def label(labels: dict, value: str) -> str:
    """The translated label of `value`; the value itself where there is none."""
    return str(labels.get(value, value))


MODE_LABELS = {
    ImportMode.UPDATE_ADD.value: _l("Update and add"),
    ImportMode.ADD.value: _l("Add only"),
    ImportMode.UPDATE.value: _l("Update only"),
}

STATUS_LABELS = {
    "uploaded": _l("Waiting for the mapping"),
    "checking": _l("Checking the file"),
    "ready": _l("Checked, waiting for confirmation"),
    "queued": _l("Queued"),
    "waiting": _l("Waiting for another import into this group"),
    "running": _l("Importing"),
    "finished": _l("Finished"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
}

# where an import came from (the history's badge); "ui" has none
SOURCE_LABELS = {
    "api": _l("API"),
    "restore": lazy_pgettext("import source", "restore"),
    "job": _l("system"),
}

PHASE_LABELS = {
    "check": _l("Checking the file"),
    "queued": _l("Waiting for a worker"),
    "backup": _l("Backup of the group before the import"),
    "import": _l("Importing"),
}

TARGET_LABELS = {
    m.IGNORE: _l("— ignore —"),
    m.EMAIL: _l("Email"),
    m.FIRST_NAME: _l("First name"),
    m.LAST_NAME_PREFIX: _l("Prefix of the last name (van, de, von)"),
    m.LAST_NAME: _l("Last name"),
    m.FULL_NAME: _l("Full name (split into first and last name)"),
    m.TAGS: _l("Tags"),
    m.STATUS: _l("Status (subscribed, unsubscribed, bounced, blocked …)"),
    m.ACTIVE: _l("Active (yes/no)"),
    m.BLOCKED: _l("Blocked (yes = signed off as blocked)"),
    m.OPTED_OUT: _l("Opted out (yes = signed off)"),
    m.OPTOUT_REASON: _l("Opt-out reason"),
    m.SIGNUP_AT: _l("Sign-up date"),
    m.CONFIRMED_AT: _l("Confirmation date (double opt-in)"),
    m.ADDED_AT: _l("Date added"),
    m.SIGNOFF_AT: _l("Sign-off date"),
    m.BOUNCED_AT: _l("Bounce date (signed off as bounced)"),
}

NEW_FIELD_LABELS = {
    "text": _l("New text field “%(name)s”"),
    "number": _l("New number field “%(name)s”"),
    "date": _l("New date field “%(name)s”"),
}


class UploadForm(FlaskForm):
    file = FileField(_l("File (CSV, TXT or XLSX)"), validators=[FileRequired()])
    group = SelectField(_l("Group"), coerce=str, validators=[Optional()])
    new_group = StringField(_l("or a new group"), validators=[Optional(), Length(max=200)])


class MappingForm(FlaskForm):
    mode = RadioField(
        _l("Mode"),
        choices=[SelectChoice(value, label) for value, label in MODE_LABELS.items()],
        default=ImportMode.UPDATE_ADD.value,
    )
    # the field keeps its name (API option `import_consent`); what restricts is applied
    # without it, see consent.CONSENT_CASE
    import_consent = BooleanField(
        _l("Re-activate contacts who signed off here when the file has a newer sign-up")
    )
    restore_deleted = BooleanField(_l("Restore deleted contacts"))
