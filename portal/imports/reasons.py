"""Why a row was not imported, as stable codes with parameters. The code is stored;
the sentence is made in the reader's language when the summary or the failed-rows
report is shown, so one report reads right in German and in Polish."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

MESSAGES = {
    # invalid rows
    "email_missing": _l("The email address is missing."),
    "email_invalid": _l("The email address is not valid."),
    "bad_date": _l("“%(value)s” is not a date."),
    "bad_bool": _l("“%(value)s” is neither yes nor no."),
    "bad_reason": _l("Unknown opt-out reason “%(value)s”."),
    "bad_number": _l("“%(value)s” is not a number (field %(field)s)."),
    "bad_choice": _l("“%(value)s” is not one of the choices of the field %(field)s."),
    "line_broken": _l("The line is too long or badly quoted."),
    # skipped rows
    "duplicate": _l("The address appears earlier in the file, in line %(line)s."),
    "forgotten": _l("Forgotten — can only sign up again through a form."),
    "deleted": _l(
        "The contact is to be deleted; choose “Restore deleted contacts” to bring it back."
    ),
    "not_found": _l("No such contact; “Update only” adds no new contacts."),
}

SKIP_CODES = ("duplicate", "forgotten", "deleted", "not_found")

# The skipped rows counted by reason (the summary's list): no line numbers to fill in.
SKIP_LABELS = {
    "duplicate": _l("Appears earlier in the file"),
    "forgotten": _l("Forgotten — can only sign up again through a form"),
    "deleted": _l("To be deleted (“Restore deleted contacts” not chosen)"),
    "not_found": _l("No such contact (“Update only”)"),
}


# A restore of a backup has no "Restore deleted contacts" option: its texts never name it.
RESTORE_MESSAGES = {
    "deleted": _l(
        "The contact is to be deleted and was left as it is; restore it from the deleted "
        "contacts first if you want it back."
    ),
}
RESTORE_SKIP_LABELS = {"deleted": _l("To be deleted — left as it is")}


def skip_label(code: str, source: str = "ui") -> str:
    if source == "restore" and code in RESTORE_SKIP_LABELS:
        return str(RESTORE_SKIP_LABELS[code])
    return str(SKIP_LABELS.get(code, code))


def message(code: str, params: dict | None = None, source: str = "ui") -> str:
    template = MESSAGES.get(code)
    if source == "restore" and code in RESTORE_MESSAGES:
        template = RESTORE_MESSAGES[code]
    if template is None:
        return code
    text = str(template)
    return text % params if params and "%(" in text else text
