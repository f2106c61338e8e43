"""The machinery of the JSON API v1: one blueprint, operations declared with their
inputs and outputs (the OpenAPI document is built from the same declarations, see
openapi.py), Bearer-key authentication, scopes, per-key rate limits and JSON errors.

Why declarations: every operation names its query parameters and its JSON body as JSON
Schema; the request is checked against exactly that schema before the view runs, and
the document shows exactly that schema. So the document cannot drift from what the
code accepts."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from jsonschema import Draft202012Validator, FormatChecker
from werkzeug.exceptions import HTTPException

from portal.api import service, views
from portal.api.models import ApiKey
from portal.extensions import csrf, db, limiter

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

DEFAULT_RATE_LIMIT = "300 per minute"

# --- errors ---------------------------------------------------------------------------

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
}

DEFAULT_MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Send a valid API key in the header “Authorization: Bearer <key>”."),
    403: _l("This API key may not do this."),
    404: _l("There is nothing at this address."),
    405: _l("This method is not allowed here."),
    409: _l("This conflicts with the current state."),
    413: _l("The request is too large."),
    415: _l("Send the body as application/json."),
    422: _l("Some values are not valid."),
    429: _l("Too many requests with this API key. Please wait and try again."),
    500: _l("Something went wrong. The error has been logged; please try again in a moment."),
}


class ApiError(Exception):
    """A refusal the client reads: HTTP status, a stable code and a translated message;
    `fields` maps a field (or parameter) to its own message."""

    def __init__(
        self,
        status: int,
        message: Any = None,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(str(message or DEFAULT_MESSAGES.get(status, "")))
        self.status = status
        self.code = code or ERROR_CODES.get(status, str(status))
        self.message = message or DEFAULT_MESSAGES.get(status, "")
        self.fields = fields or {}


def error_response(status: int, message: Any = None, *, code: str | None = None, fields=None):
    """The one shape of every API error: {"error": {"code", "message"[, "fields"]}}."""
    body: dict[str, Any] = {
        "code": code or ERROR_CODES.get(status, str(status)),
        "message": str(message or DEFAULT_MESSAGES.get(status, "")),
    }
    if fields:
        body["fields"] = {k: str(v) for k, v in fields.items()}
    response = jsonify(error=body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()
    return error_response(exc.status, exc.message, code=exc.code, fields=exc.fields)


def _http_error(exc: HTTPException):
    db.session.rollback()
    status = exc.code or 500
    response = error_response(status, DEFAULT_MESSAGES.get(status) or exc.description)
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _server_error(exc: Exception):
    log.exception("API request %s %s failed", request.method, request.path)
    db.session.rollback()
    return error_response(500)


# Flask looks for a handler of the status code (the app's included) before one of the
# exception class, so the blueprint names every code; the app's pages keep theirs.
for _status in ERROR_CODES:
    if _status != 500:
        bp.register_error_handler(_status, _http_error)
bp.register_error_handler(HTTPException, _http_error)
bp.register_error_handler(Exception, _server_error)


def _method_not_allowed(exc: HTTPException):
    """App-wide 405 handler: JSON under /api/, the unchanged default everywhere else
    (a wrong method never reaches a blueprint, so the blueprint's handler cannot see it)."""
    if not request.path.startswith("/api/"):
        return exc
    response = error_response(405)
    if getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


# --- declared operations ------------------------------------------------------------------


@dataclass
class Param:
    """A query parameter: its JSON Schema (type integer|string|boolean, enum, format
    date, minimum/maximum, maxLength) is checked before the view runs."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass
class Operation:
    method: str
    rule: str  # Flask rule below /api/v1, e.g. "/contacts/<int:contact_id>"
    endpoint: str
    tag: str
    summary: str
    description: str = ""
    query: list[Param] = field(default_factory=list)
    body: dict[str, Any] | None = None  # JSON Schema of an application/json body
    body_required: bool = True
    multipart: dict[str, Any] | None = None  # JSON Schema of a multipart/form-data body
    responses: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    public: bool = False  # no key needed (the document itself)

    @property
    def writes(self) -> bool:
        return self.method != "GET"


OPERATIONS: dict[str, Operation] = {}


def operation(
    method: str,
    rule: str,
    *,
    tag: str,
    summary: str,
    description: str = "",
    query: list[Param] | None = None,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    multipart: dict[str, Any] | None = None,
    responses: dict[int, tuple[str, dict[str, Any] | None]],
    errors: tuple[int, ...] = (),
    public: bool = False,
) -> Callable:
    """Declare and register an API operation. The view gets `query=` (the parsed
    parameters) and `body=` (the checked JSON body) when it declares them."""

    def decorator(view: Callable) -> Callable:
        op = Operation(
            method=method,
            rule=rule,
            endpoint=f"api.{view.__name__}",
            tag=tag,
            summary=summary,
            description=description,
            query=query or [],
            body=body,
            body_required=body_required,
            multipart=multipart,
            responses=responses,
            errors=errors,
            public=public,
        )
        if op.endpoint in OPERATIONS:
            raise RuntimeError(f"operation {op.endpoint} declared twice")
        OPERATIONS[op.endpoint] = op

        @wraps(view)
        def wrapped(**kwargs):
            refuse_unknown_parameters(op.query)
            if op.query:
                kwargs["query"] = parse_query(op.query)
            if op.body is not None:
                if op.multipart is not None and request.mimetype == "multipart/form-data":
                    kwargs["body"] = None  # the view reads the form
                else:
                    kwargs["body"] = parse_json_body(op.body, required=op.body_required)
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        return wrapped

    return decorator


def current_operation() -> Operation | None:
    return OPERATIONS.get(request.endpoint or "")


# --- input checking ---------------------------------------------------------------------------

# any whole number is read as one, however long: its limits are the schema's minimum and
# maximum, so "9223372036854775806" is a number (the document says so) and a longer one
# is "at most …", never "not a whole number"; beyond _INT_DIGITS it stands for ±10^100
_INT = re.compile(r"^[+-]?\d+$")
_INT_DIGITS = 100
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _check_format(kind: str, value: str) -> bool:
    try:
        if kind == "date":
            date.fromisoformat(value)
        elif kind == "date-time":
            parse_datetime(value)
        return True
    except (TypeError, ValueError):
        return False


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date", raises=())(lambda v: not isinstance(v, str) or _check_format("date", v))
_FORMATS.checks("date-time", raises=())(
    lambda v: not isinstance(v, str) or _check_format("date-time", v)
)


def parse_datetime(value: str) -> datetime:
    """RFC 3339 date-time ("2026-05-01T09:30:00Z"); without an offset it is UTC."""
    text = value.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}", text):
        raise ValueError(value)
    parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _type_word(kind: Any) -> str | None:
    """The expected type as words, for a single type; None when several are allowed."""
    words = {
        "string": _("a text"),
        "integer": _("a whole number"),
        "number": _("a number"),
        "boolean": _("true or false"),
        "array": _("a list"),
        "object": _("an object"),
    }
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
    return words.get(kinds[0]) if len(kinds) == 1 else None


def _wrong_type(field: str, kind: Any) -> str:
    word = _type_word(kind)
    if word is None:
        return _("“%(field)s” has the wrong type of value.", field=field)
    return _("“%(field)s” must be %(type)s.", field=field, type=word)


def _where(path, root: str = "") -> str:
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_message(error, root: str = "") -> tuple[str, str]:
    """(field, translated message) for one jsonschema error."""
    where = _where(error.absolute_path, root)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else ""
        where = f"{where}.{name}" if where else name
        return where, _("“%(field)s” is required.", field=where)
    if kind == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        name = extra[0] if extra else ""
        where = f"{where}.{name}" if where else name
        return where, _("There is no field “%(field)s”.", field=where)
    label = where or _("The body")
    if kind == "type":
        return where, _wrong_type(label, value)
    if kind == "enum":
        choices = ", ".join(str(v) for v in value if v is not None)
        return where, _("“%(field)s” must be one of: %(choices)s.", field=label, choices=choices)
    if kind == "maxLength":
        return where, _("“%(field)s” may have at most %(num)d characters.", field=label, num=value)
    if kind == "minLength":
        return where, _("“%(field)s” must not be empty.", field=label)
    if kind == "maxItems":
        return where, _("“%(field)s” may have at most %(num)d entries.", field=label, num=value)
    if kind == "minItems":
        return where, _("“%(field)s” needs at least %(num)d entries.", field=label, num=value)
    if kind == "minimum":
        return where, _("“%(field)s” must be at least %(num)s.", field=label, num=value)
    if kind == "maximum":
        return where, _("“%(field)s” must be at most %(num)s.", field=label, num=value)
    if kind == "minProperties":
        return where, _("“%(field)s” must name at least one field.", field=label)
    if kind == "format" and value == "date":
        return where, _("“%(field)s” must be a date such as 2026-05-01.", field=label)
    if kind == "format" and value == "date-time":
        return where, _(
            "“%(field)s” must be a date and time such as 2026-05-01T09:30:00Z.", field=label
        )
    return where, _("“%(field)s” is not valid.", field=label)


def check_schema(
    schema: dict[str, Any], instance: Any, *, status: int = 422, root: str = ""
) -> None:
    """Raise ApiError(status) with one message per wrong field (`root` names the value
    itself, for a query parameter)."""
    validator = Draft202012Validator(schema, format_checker=_FORMATS)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    fields: dict[str, str] = {}
    for error in errors[:50]:
        where, message = _schema_message(error, root)
        fields.setdefault(where or "body", message)
    raise ApiError(status, next(iter(fields.values())), fields=fields)


def parse_json_body(schema: dict[str, Any], *, required: bool = True) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip() and not required:
        return {}
    if not request.is_json:
        raise ApiError(415)
    try:
        body = request.get_json(force=True, silent=False)
    except Exception:
        raise ApiError(400, _l("The body is not valid JSON.")) from None
    check_schema(schema, body)
    refuse_nul(body)
    return body


def refuse_nul(value: Any, where: str = "") -> None:
    """A NUL character anywhere in a JSON body is a 422 before any service sees it:
    PostgreSQL cannot store it, and a name that holds one failed later (a 500)."""
    if isinstance(value, str):
        if "\x00" in value:
            field = where or "body"
            message = _("“%(field)s” must not contain control characters.", field=field)
            raise ApiError(422, message, fields={field: message})
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where)
            refuse_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            refuse_nul(item, f"{where}[{i}]")


def refuse_unknown_parameters(params: list[Param]) -> None:
    """A parameter the operation does not know is a 400, so that a typo ("staus=") is
    not silently read as "no filter". The language comes from Accept-Language."""
    known = {p.name for p in params}
    unknown = [name for name in request.args if name not in known]
    if unknown:
        fields = {name: _("There is no parameter “%(name)s”.", name=name) for name in unknown}
        raise ApiError(400, next(iter(fields.values())), fields=fields)


def _coerce(param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    if kind == "integer":
        text = raw.strip()
        if not _INT.match(text):
            raise ValueError
        if len(text.lstrip("+-")) > _INT_DIGITS:
            return -(10**_INT_DIGITS) if text.startswith("-") else 10**_INT_DIGITS
        return int(text)
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError
    return raw


def parse_query(params: list[Param], source=None, status: int = 400) -> dict[str, Any]:
    """The declared query parameters (or form fields, from `source`), typed and
    checked; wrong ones are a 400 (or `status`)."""
    source = request.args if source is None else source
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for param in params:
        raw = source.get(param.name)
        if raw is None:
            if param.required:
                fields[param.name] = _("“%(field)s” is required.", field=param.name)
            values[param.name] = param.schema.get("default")
            continue
        if "\x00" in raw:
            fields[param.name] = _(
                "“%(field)s” must not contain control characters.", field=param.name
            )
            continue
        try:
            value = _coerce(param, raw)
        except ValueError:
            fields[param.name] = _wrong_type(param.name, param.schema.get("type"))
            continue
        try:
            check_schema(param.schema, value, status=status, root=param.name)
        except ApiError as exc:
            fields[param.name] = str(exc.message)
            continue
        if param.schema.get("format") == "date":
            value = date.fromisoformat(value)
        values[param.name] = value
    if fields:
        raise ApiError(status, next(iter(fields.values())), fields=fields)
    return values


# --- authentication, scopes, rate limits ---------------------------------------------------

_UNSET = object()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_key() -> ApiKey | None:
    """The request's valid API key (looked up once per request), or None."""
    found = g.get("_api_key_lookup", _UNSET)
    if found is _UNSET:
        found = service.authenticate(bearer_token())
        g._api_key_lookup = found
    return found


def _rate_limit_key() -> str:
    key = current_key()
    return f"api-key:{key.id}" if key is not None else f"api-ip:{get_remote_address()}"


def _rate_limit_value() -> str:
    return current_app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT


@bp.before_request
def _authenticate():
    """Every operation but the document needs a valid key; writes need the write scope.
    Session cookies never count: the middleware below drops them before Flask reads them."""
    op = current_operation()
    if op is None or op.public:
        return None
    key = current_key()
    if key is None:
        if bearer_token() is None:
            raise ApiError(
                401, _l("Send your API key in the header “Authorization: Bearer <key>”.")
            )
        raise ApiError(401, _l("This API key is not valid or has been revoked."))
    g.api_key = key
    g.account = key.account
    if op.writes and not key.can_write:
        raise ApiError(
            403,
            _l("This API key may only read. Use a key with the scope “read and write”."),
            code="read_only_key",
        )
    if service.touch(key):
        db.session.commit()
    return None


def actor() -> ApiKey:
    return g.api_key


def client_ip() -> str | None:
    return request.remote_addr


@bp.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class CookielessApi:
    """WSGI middleware: below /api/ the request's cookies are removed before Flask
    sees them and no Set-Cookie goes out. So a signed-in browser's session (or
    remember-me) cookie can never authenticate an API call, and an API call can never
    change a browser session."""

    def __init__(self, wsgi_app, prefix: str = "/api/") -> None:
        self.wsgi_app = wsgi_app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(self.prefix):
            return self.wsgi_app(environ, start_response)
        environ = {k: v for k, v in environ.items() if k != "HTTP_COOKIE"}

        def start(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k.lower() != "set-cookie"]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask) -> None:
    """Register the API (its views are imported by portal.api.wiring: they import this
    module), the rate limit, CSRF exemption, cookie stripping."""
    app.config.setdefault("API_RATE_LIMIT", os.environ.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT))
    if not getattr(bp, "_limited", False):  # the limiter and the blueprint are module-wide
        limiter.shared_limit(_rate_limit_value, scope="api", key_func=_rate_limit_key)(bp)
        bp._limited = True
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(views.bp)
    app.register_error_handler(405, _method_not_allowed)
    app.wsgi_app = CookielessApi(app.wsgi_app)
