"""The OpenAPI document matches the routes, and schemathesis finds neither server
errors nor answers that break the document."""

from __future__ import annotations

import io
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from portal.api import endpoints  # noqa: F401 - declares the operations
from portal.api.core import OPERATIONS
from portal.api.openapi import openapi_path
from tests.api.conftest import PREFIX

# bounded: every operation gets this many generated requests per run
EXAMPLES = 30


def _document(client) -> dict:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_public_openapi_3_1(client):
    doc = _document(client)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"
    assert doc["paths"][f"{PREFIX}/openapi.json"]["get"]["security"] == []


def test_every_api_route_is_documented_and_every_documented_operation_exists(app, client):
    doc = _document(client)
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routed |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed, "no API routes"
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations without a route"


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_schema_is_valid_and_every_reference_resolves(client):
    doc = _document(client)
    for ref in set(_refs(doc)):
        name = ref.removeprefix("#/components/schemas/")
        assert name in doc["components"]["schemas"], ref
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"], (path, method)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path)), (path, method)
            if method != "get" and "security" not in op:
                assert "403" in op["responses"], "writes document the read-key refusal"


def test_documented_errors_are_what_the_api_answers(client, api):
    doc = _document(client)
    op = doc["paths"][f"{PREFIX}/contacts/{{contact_id}}"]["get"]
    assert {"401", "404", "429"} <= set(op["responses"])
    body = api.get("/contacts/12345").get_json()
    error_schema = doc["components"]["schemas"]["Error"]
    Draft202012Validator(error_schema).validate(body)


# --- schemathesis ------------------------------------------------------------------------

# negative cases only where there is input to break
CASES = sorted(
    (op.method, PREFIX + openapi_path(op.rule)[0], mode)
    for op in OPERATIONS.values()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or op.query or op.body is not None or "<" in op.rule
)


@pytest.fixture
def fuzz_key(app, acme, other):
    """Data in two accounts, so that generated ids hit real rows, rows of the other
    account (404) and nothing; a write key of the first; no rate limit in the way."""
    news = acme.group("Newsletter")
    acme.field("city", "City")
    for i in range(3):
        acme.contact(f"user{i}@example.com", "Anna", groups=(news,), tags=("VIP",))
    acme.contact("gone@example.com", deleted=True)
    other.contact("theirs@other.example", groups=(other.group("Theirs"),))
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    yield acme.key("write", name="schemathesis")
    app.config["API_RATE_LIMIT"] = "300 per minute"


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_schemathesis_finds_no_server_error_and_no_broken_answer(app, fuzz_key, method, path, mode):
    """The checks of schemathesis (server errors, status codes, content types, headers,
    response schemas, refusal of input that breaks the schema) on a bounded number of
    generated requests per operation and mode. Not "positive data acceptance": a value
    can fit the schema and still be refused with 422 for what only the service knows
    (an address that is no address, a custom field the account does not have), see
    docs/decisions/api-openapi-and-tests.md."""
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_key}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()


# --- integer limits: the document and the server draw the same line (issue 16, point 12) ---


def _integer_parameters(doc: dict) -> list[tuple[str, str, dict]]:
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["schema"].get("type") == "integer":
                    found.append((method.upper(), path, param))
    return found


def _integers_in(schema, where=""):
    """Every integer schema inside a request body schema (with where it is)."""
    if isinstance(schema, dict):
        kinds = schema.get("type")
        if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
            yield where, schema
        for key, value in schema.items():
            yield from _integers_in(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _integers_in(value, f"{where}[{i}]")


def test_every_integer_the_api_reads_has_both_limits(client):
    """No open-ended integer: what the document allows is what the server reads."""
    doc = _document(client)
    params = _integer_parameters(doc)
    assert params
    for method, path, param in params:
        schema = param["schema"]
        assert "minimum" in schema and "maximum" in schema, (method, path, param["name"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for media in op.get("requestBody", {}).get("content", {}).values():
                for where, schema in _integers_in(media["schema"]):
                    assert "minimum" in schema and "maximum" in schema, (method, path, where)


def _call(api, method: str, path: str, name: str, where: str, value) -> object:
    path = path.removeprefix(PREFIX)
    if where == "path":
        path = path.replace("{" + name + "}", str(value))
        path = re.sub(r"\{[^}]+\}", "1", path)
        return api.request(method, path)
    path = re.sub(r"\{[^}]+\}", "1", path)
    return api.request(method, f"{path}?{name}={value}")


def test_each_integer_parameter_takes_its_documented_limits_and_refuses_beyond(client, api, acme):
    """The documented maximum (and minimum) is read as a number — 9223372036854775806
    was "not a whole number" for `tag` — and one past it is refused as past the limit,
    in the reader's words; ids nobody has are 404."""
    doc = _document(client)
    for method, path, param in _integer_parameters(doc):
        name, where, schema = param["name"], param["in"], param["schema"]
        label = f"{method} {path} {where}:{name}"
        for value in (schema["maximum"] - 1, schema["maximum"], schema["minimum"]):
            response = _call(api, method, path, name, where, value)
            assert response.status_code in (200, 201, 202, 404, 409, 415, 422), (label, value)
            if response.status_code >= 400:
                message = response.get_json()["error"]["message"]
                assert "whole number" not in message, (label, value, message)
        for value in (schema["maximum"] + 1, schema["minimum"] - 1, 10**40):
            response = _call(api, method, path, name, where, value)
            if where == "path":  # no such id (a write without its body is refused first)
                allowed = (404,) if method == "GET" else (404, 415, 422)
                assert response.status_code in allowed, (label, value, response.status_code)
                continue
            assert response.status_code == 400, (label, value)
            error = response.get_json()["error"]
            assert name in error["fields"], (label, value)
            assert "must be at" in error["message"], (label, value, error["message"])


def test_the_value_schemathesis_found_is_a_number_now(api, acme):
    response = api.get("/contacts?tag=9223372036854775806")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "There is no tag with this id."
    german = api.get(
        "/contacts?tag=9223372036854775808", headers={"Accept-Language": "de"}
    ).get_json()["error"]
    assert "tag" in german["fields"]["tag"] and "höchstens" in german["fields"]["tag"]


def test_ids_in_a_body_past_the_limit_are_refused_before_the_service(api, acme):
    response = api.post("/contacts", json={"email": "anna@example.com", "group_ids": [2**63]})
    assert response.status_code == 422
    assert "group_ids[0]" in response.get_json()["error"]["fields"]
    assert acme.contact_by_email("anna@example.com") is None
    import_form = api.post(
        "/imports",
        data={
            "group_id": "9223372036854775806",
            "file": (io.BytesIO(b"email\n"), "a.csv"),
        },
        content_type="multipart/form-data",
    )
    assert import_form.status_code == 404, import_form.get_json()
