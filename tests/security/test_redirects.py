"""No open redirect: the `next` address of the sign-in page may only lead to a page of
the portal, also when it is written the way browsers "repair" (a backslash is read as a
slash; tabs and newlines inside a URL are dropped)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from tests.helpers.auth import PASSWORD

HOSTILE = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    " //evil.example",
    "/%2F/evil.example",
]


def as_browser_reads(location: str) -> str:
    """What a browser makes of a Location (WHATWG URL parsing of a special scheme)."""
    return "".join(ch for ch in location if ch not in "\t\n\r").replace("\\", "/")


def _stays_home(location: str) -> bool:
    parts = urlsplit(as_browser_reads(location))
    return parts.netloc in ("", "localhost") and parts.scheme in ("", "http")


@pytest.mark.parametrize("target", HOSTILE)
def test_sign_in_never_sends_you_to_another_site(app, make_account, make_user, target):
    make_user("owner@acme.example", make_account("acme"))
    client = app.test_client()
    response = client.post(
        f"/login?next={quote(target, safe='')}",
        data={"email": "owner@acme.example", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert _stays_home(response.headers["Location"]), response.headers["Location"]
    # and when already signed in
    response = client.get(f"/login?next={quote(target, safe='')}")
    assert _stays_home(response.headers["Location"]), response.headers["Location"]


def test_a_page_of_the_portal_is_still_a_fine_next(app, make_account, make_user):
    make_user("owner@acme.example", make_account("acme"))
    response = app.test_client().post(
        "/login?next=/a/acme/contacts%3Fq%3Danna",
        data={"email": "owner@acme.example", "password": PASSWORD},
    )
    assert response.headers["Location"].endswith("/a/acme/contacts?q=anna")
