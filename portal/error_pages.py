"""The portal's answer to a refused or failed request: its own page in the user's
language, or JSON for the API and the health check; never Werkzeug's English page."""

from __future__ import annotations

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest

from portal.api.core import error_response
from portal.extensions import db

# (title, message) of the page of each HTTP error that needs nothing more than its text
TEXTS = {
    400: (
        _l("The request cannot be processed"),
        _l("Please go back, reload the page and try again."),
    ),
    403: (_l("Not allowed"), _l("Your role in this account does not allow this.")),
    404: (_l("Page not found"), _l("There is nothing at this address.")),
    429: (_l("Too many attempts"), _l("Please wait a minute and try again.")),
    500: (
        _l("Something went wrong"),
        _l("The error has been logged. Please try again in a moment."),
    ),
}


class HostileInput(BadRequest):
    """A NUL character in the path, the query string or a form: no text of ours has
    one, PostgreSQL cannot store or compare it (a 500 before), so the request is refused
    whole, before any view reads it."""


def refuse_nul_characters() -> None:
    if request.path.startswith("/api/"):
        return  # the API refuses them itself, naming the field (api.core.parse_query)
    sources = [request.args] + ([request.form] if request.method not in ("GET", "HEAD") else [])
    if "\x00" in request.path or any(
        "\x00" in key or any("\x00" in v for v in values)
        for source in sources
        for key, values in source.lists()
    ):
        raise HostileInput()


def page(code: int, title, message):
    """The answer itself: the API's error document, JSON for /healthz, else the page."""
    if request.path.startswith("/api/"):
        return error_response(code), code
    if request.path == "/healthz":
        return jsonify(error={"code": str(code), "message": str(message)}), code
    return render_template("errors/error.html", code=code, title=title, message=message), code


def _frameable_on_signup_form() -> None:
    if request.path.startswith("/f/"):  # the sign-up form's answer shows in its iframe
        g.frameable = True


def _plain(code: int):
    def handler(exc):
        if code == 500:
            db.session.rollback()
        if code == 429:
            _frameable_on_signup_form()
        return page(code, *TEXTS[code])

    return handler


def csrf_expired(exc):
    return page(
        400, _l("The form has expired"), _l("Please go back, reload the page and try again.")
    )


def hostile_input(exc):
    _frameable_on_signup_form()
    return page(
        400,
        _l("The request cannot be processed"),
        _l("It contains a character that has no place in a text (a NUL character)."),
    )


def too_large(exc):
    """Above MAX_CONTENT_LENGTH (MAX_UPLOAD_MB): the portal's page, not Werkzeug's."""
    megabytes = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
    return page(
        413,
        _l("The request is too large."),
        _l(
            "A file can be at most %(num)d MB. Please split it into smaller files.",
            num=max(megabytes, 1),
        ),
    )


def init_app(app: Flask) -> None:
    for code in TEXTS:
        app.register_error_handler(code, _plain(code))
    app.register_error_handler(CSRFError, csrf_expired)
    app.register_error_handler(HostileInput, hostile_input)
    app.register_error_handler(413, too_large)
