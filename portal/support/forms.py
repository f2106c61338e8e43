"""Forms of the support console; labels are lazy so they follow the request's language."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Length

from portal.support.console import REASON_MAX


def _strip(value):
    return value.strip() if isinstance(value, str) else value


REASON_LABEL = _l("Reason (ticket number or a few words)")
REASON_REQUIRED = _l("Please state the reason (a ticket number or a few words).")


class ReasonForm(FlaskForm):
    """Opening an account: the reason goes to the account's audit log, for its owners."""

    reason = StringField(
        REASON_LABEL,
        filters=[_strip],
        validators=[
            DataRequired(message=REASON_REQUIRED),
            Length(max=REASON_MAX, message=_l("At most %(max)d characters.")),
        ],
    )


class LookupForm(FlaskForm):
    """A contact by exact email address across all accounts (sent by POST, so that the
    address never ends up in a URL or an access log)."""

    email = EmailField(
        _l("Email address of the contact"),
        filters=[_strip],
        validators=[DataRequired(message=_l("Please enter an email address."))],
    )
    reason = StringField(
        REASON_LABEL,
        filters=[_strip],
        validators=[
            DataRequired(message=REASON_REQUIRED),
            Length(max=REASON_MAX, message=_l("At most %(max)d characters.")),
        ],
    )
