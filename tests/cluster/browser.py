"""A person at a browser, without the browser: a requests session that reads the forms
of a page (hidden fields, chosen options, buttons) and sends them back with their CSRF
token, as the browser would."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str  # as the page has it; "" posts back to the page
    id: str
    page: str = ""  # the URL of the page the form is on
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs, selects
    buttons: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, value)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), id=a.get("id", "")))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("hidden", "text", "email", "password") or (
                kind in ("radio", "checkbox") and "checked" in a
            ):
                form.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            form.fields[self._select] = a.get("value", "")
        elif tag == "button" and a.get("id"):
            form.buttons[a["id"]] = (a.get("name", ""), a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def forms_of(html: str, page: str = "") -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        form.page = page
    return parser.forms


class Person:
    """One signed-in person talking to one web node."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url(path), timeout=60, **kwargs)

    def form(self, path: str, *, action: str = "", form_id: str = "") -> Form:
        """The form of the page at `path` whose action ends with `action` (or with that id)."""
        page = self.get(path)
        assert page.ok, f"GET {path}: {page.status_code}"
        for form in forms_of(page.text, page.url):
            if (form_id and form.id == form_id) or (action and form.action.endswith(action)):
                return form
        raise AssertionError(f"no form {form_id or action!r} on {path}")

    def submit(
        self, form: Form, *, button: str = "", files=None, **values: str
    ) -> requests.Response:
        """Send the form back as it is, with `values` filled in and `button` pressed."""
        data = dict(form.fields)
        if button:
            name, value = form.buttons[button]
            data[name] = value
        data.update(values)
        target = urljoin(form.page or self.base, form.action)
        return self.http.post(target, data=data, files=files, timeout=120)

    def sign_in(self, email: str, password: str) -> None:
        """Through the sign-in form (the page's only form that posts back to itself)."""
        page = self.get("/login")
        form = next(f for f in forms_of(page.text, page.url) if f.action == "")
        answer = self.submit(form, email=email, password=password)
        assert answer.ok and "/login" not in answer.url, f"sign-in failed: {answer.url}"
