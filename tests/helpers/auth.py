"""Signing in as a browser does, and reading the CSRF token out of a page."""

from __future__ import annotations

import re

PASSWORD = "correct-horse-battery"


def login(client, email: str, password: str = PASSWORD):
    """POST the login form (CSRF is off in the session app unless a test switches it on)."""
    return client.post("/login", data={"email": email, "password": password})


def csrf_token_from(html: str) -> str:
    """The hidden csrf_token of the first form in `html`; fails the test if there is none."""
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
