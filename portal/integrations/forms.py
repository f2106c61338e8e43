"""Forms of the integrations area."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectField, StringField, URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from portal.integrations.profiles import PROFILES


class LinkForm(FlaskForm):
    profile = SelectField(
        _l("Provider"),
        choices=[SelectChoice(key, p.label) for key, p in PROFILES.items()],
    )
    url = URLField(
        _l("Address of the endpoint"),
        validators=[DataRequired(message=_l("Please enter the address.")), Length(max=2000)],
        description=_l("Events are sent there as signed JSON (POST)."),
    )


class ExportForm(FlaskForm):
    format = RadioField(
        _l("Format"),
        choices=[
            SelectChoice(
                "csv", _l("CSV in the import format (all contacts: a ZIP with one file per group)")
            ),
            SelectChoice("jsonl", _l("JSON Lines (one contact per line, with all groups)")),
        ],
        default="csv",
    )
    group = SelectField(_l("Contacts"), choices=[], validate_choice=False, default="")


class PackageForm(FlaskForm):
    file = FileField(
        _l("Export file (ZIP)"),
        description=_l("An export of all contacts from a recipient portal account."),
    )


class TagNameField(StringField):
    pass


def mapping_form(rows):
    """One text field per tag (tag_<id>), filled with the suggested name."""

    class Form(FlaskForm):
        pass

    for row in rows:
        setattr(Form, f"tag_{row.tag_id}", TagNameField(row.name, validators=[Length(max=200)]))
    form = Form()
    if not form.is_submitted():
        for row in rows:
            form[f"tag_{row.tag_id}"].data = row.suggested
    return form
