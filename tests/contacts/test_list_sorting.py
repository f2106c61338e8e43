"""The contact list, issue 17 point 15: sorting by address, name, status and date added
(both ways, stable by id, kept in page and search links), "1–50 of 1,981" with next /
previous in the reader's number format, search for a part of the address or name
anywhere (with % and _ taken literally), and no bulk actions when nothing matches."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from portal.accounts.models import Account
from portal.contacts import queries, service
from portal.contacts.queries import ContactFilter, ContactSort
from portal.extensions import db
from tests.contacts.test_list import LIST, emails, listed


def _links(html: str) -> dict[str, str]:
    found = re.findall(r'href="([^"]+)"[^>]*id="(page-\w+|sort-\w+)"', html)
    return {name: html_lib.unescape(url) for url, name in found}


def _args(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


@pytest.fixture
def mixed(data):
    """Contacts whose address, name, status and date orders all differ; two share a
    name (the tie is broken by id)."""
    news = data.group("News")
    jan = datetime(2024, 1, 15, tzinfo=UTC)
    made = [
        ("carla@example.com", "Carla", "Zorn", dict(groups=(news,))),
        ("anton@example.com", "Bernd", "Neu", dict(unsubscribed=((news, "unsubscribed"),))),
        ("bernd.neu02@example.org", "Bernd", "Neu", dict(groups=(news,))),
        ("dora@example.com", "Dora", "Adler", dict(groups=(news,), deleted=True)),
        ("emil@example.com", "", "", {}),
    ]
    ids = {}
    for email, first, last, kwargs in made:
        ids[email] = data.contact(email, first, last, signup_at=jan, **kwargs)
    return ids


NEWEST_FIRST = [
    "emil@example.com",
    "dora@example.com",
    "bernd.neu02@example.org",
    "anton@example.com",
    "carla@example.com",
]


@pytest.mark.parametrize(
    "sort, direction, expected",
    [
        ("added", "desc", NEWEST_FIRST),
        ("added", "asc", NEWEST_FIRST[::-1]),
        (
            "email",
            "asc",
            [
                "anton@example.com",
                "bernd.neu02@example.org",
                "carla@example.com",
                "dora@example.com",
                "emil@example.com",
            ],
        ),
        (
            "email",
            "desc",
            [
                "emil@example.com",
                "dora@example.com",
                "carla@example.com",
                "bernd.neu02@example.org",
                "anton@example.com",
            ],
        ),
        # by the name as shown ("first last"); the two "Bernd Neu" by id; no name first
        (
            "name",
            "asc",
            [
                "emil@example.com",
                "anton@example.com",
                "bernd.neu02@example.org",
                "carla@example.com",
                "dora@example.com",
            ],
        ),
        (
            "name",
            "desc",
            [
                "dora@example.com",
                "carla@example.com",
                "bernd.neu02@example.org",
                "anton@example.com",
                "emil@example.com",
            ],
        ),
        # active (oldest first), unsubscribed, to be deleted
        (
            "status",
            "asc",
            [
                "carla@example.com",
                "bernd.neu02@example.org",
                "emil@example.com",
                "anton@example.com",
                "dora@example.com",
            ],
        ),
        (
            "status",
            "desc",
            [
                "dora@example.com",
                "anton@example.com",
                "emil@example.com",
                "bernd.neu02@example.org",
                "carla@example.com",
            ],
        ),
    ],
)
def test_each_column_sorts_both_ways(client, mixed, sort, direction, expected):
    assert listed(client, sort=sort, dir=direction) == expected


def test_the_status_column_is_in_the_order_of_the_sort(client, mixed):
    html = client.get(LIST, query_string={"sort": "status"}).get_data(as_text=True)
    states = re.findall(r'data-status="(\w+)"', html)
    assert states == ["active", "active", "active", "unsubscribed", "deleted"]


@pytest.mark.parametrize(
    "args",
    [{"sort": "bogus"}, {"sort": "email; drop table"}, {"sort": "email", "dir": "sideways"}],
)
def test_an_unknown_sort_falls_back_safely(client, mixed, args):
    response = client.get(LIST, query_string=args)
    assert response.status_code == 200
    rows = emails(response.get_data(as_text=True))
    if args["sort"] == "email":  # a known column with an unknown direction: A to Z
        assert rows == sorted(NEWEST_FIRST)
    else:
        assert rows == NEWEST_FIRST


def test_column_headers_link_to_their_sort_and_toggle(client, mixed):
    html = client.get(LIST, query_string={"q": "example", "sort": "email"}).get_data(as_text=True)
    links = _links(html)
    assert _args(links["sort-email"]) == {"q": "example", "sort": "email", "dir": "desc"}
    assert _args(links["sort-name"]) == {"q": "example", "sort": "name", "dir": "asc"}
    assert _args(links["sort-status"]) == {"q": "example", "sort": "status", "dir": "asc"}
    assert _args(links["sort-added"]) == {"q": "example"}  # the default order
    assert 'aria-sort="ascending"' in html
    # the search form keeps the sort
    assert '<input type="hidden" name="sort" value="email">' in html
    assert '<input type="hidden" name="dir" value="asc">' in html


@pytest.fixture
def many(app, owner):
    """120 contacts; every third has a name starting with "Z" (so that sorting by name
    differs from sorting by date)."""
    with app.app_context():
        account = db.session.get(Account, owner)
        for i in range(120):
            first = f"Z{i:03d}" if i % 3 == 0 else f"A{i:03d}"
            service.create_contact(
                account, f"person{i:03d}@example.com", first_name=first, source="ui"
            )
        db.session.commit()


def _walk(client, url):
    """All pages forward: rows per page, the range text of each, the links."""
    pages = []
    while url:
        html = client.get(url).get_data(as_text=True)
        links = _links(html)
        text = re.search(r'id="page-range">([^<]+)<', html).group(1)
        pages.append((emails(html), html_lib.unescape(text), links))
        url = links.get("page-next")
    return pages


def test_pages_in_a_sort_have_no_gaps_and_keep_the_sort(client, many):
    pages = _walk(client, LIST + "?sort=name&dir=desc")
    rows = [e for page in pages for e in page[0]]
    expected = [f"person{i:03d}@example.com" for i in range(120) if i % 3 == 0][::-1]
    expected += [f"person{i:03d}@example.com" for i in range(120) if i % 3][::-1]
    assert rows == expected
    assert [p[1] for p in pages] == ["1–50 of 120", "51–100 of 120", "101–120 of 120"]
    for _rows, _text, links in pages[1:]:
        assert _args(links["page-prev"])["sort"] == "name"
        assert _args(links["page-prev"])["dir"] == "desc"
    # back from the last page: the second page again, numbered as before
    html = client.get(pages[2][2]["page-prev"]).get_data(as_text=True)
    assert emails(html) == pages[1][0]
    assert "51–100 of 120" in html_lib.unescape(html)
    html = client.get(_links(html)["page-prev"]).get_data(as_text=True)
    assert emails(html) == pages[0][0] and "page-prev" not in html


def test_pages_keep_the_search_and_the_sort(client, many):
    pages = _walk(client, LIST + "?q=son1&sort=email")  # person100 - person119
    assert [p[1] for p in pages] == ["1–20 of 20"]
    assert pages[0][0] == [f"person{i}@example.com" for i in range(100, 120)]
    pages = _walk(client, LIST + "?q=person&sort=email")
    assert [p[1] for p in pages] == ["1–50 of 120", "51–100 of 120", "101–120 of 120"]
    next_args = _args(pages[0][2]["page-next"])
    assert next_args["q"] == "person" and next_args["sort"] == "email"
    assert next_args["start"] == "51"


def test_numbers_are_in_the_readers_format(client, app, owner):
    with app.app_context():
        account = db.session.get(Account, owner)
        rows = [
            {"account_id": owner, "email": f"bulk{i}@example.com", "search_name": ""}
            for i in range(1981)
        ]
        db.session.execute(db.insert(service.Contact), rows)
        db.session.commit()
        assert queries.count_contacts(account, ContactFilter()) == (1981, False)
    html = html_lib.unescape(client.get(LIST).get_data(as_text=True))
    assert "1–50 of 1,981" in html
    html = html_lib.unescape(client.get(LIST + "?lang=de").get_data(as_text=True))
    assert "1–50 von 1.981" in html
    assert ">Weiter<" in html


def test_more_than_the_counting_cap(client, many, monkeypatch):
    monkeypatch.setattr(queries, "COUNT_CAP", 100)
    html = html_lib.unescape(client.get(LIST).get_data(as_text=True))
    assert "1–50 of more than 100" in html


@pytest.mark.parametrize(
    "q, expected",
    [
        ("neu", {"bernd.neu02@example.org", "anton@example.com"}),  # address and name
        ("d.neu0", {"bernd.neu02@example.org"}),  # the middle of an address
        ("example.org", {"bernd.neu02@example.org"}),
        ("orn", {"carla@example.com"}),  # the middle of a last name
        ("neu bernd", {"bernd.neu02@example.org", "anton@example.com"}),  # words, any order
        ("ERN", {"bernd.neu02@example.org", "anton@example.com"}),  # case
        ("ca", {"carla@example.com"}),  # two characters: the start only
        ("xyz", set()),
    ],
)
def test_search_finds_a_part_of_the_address_or_name(client, mixed, q, expected):
    assert set(listed(client, q=q)) == expected


@pytest.fixture
def wild(data):
    for email in ("a_b@example.com", "a%b@example.com", "axb@example.com"):
        data.contact(email)


@pytest.mark.parametrize(
    "q, expected",
    [
        ("a_b", {"a_b@example.com"}),
        ("a%b", {"a%b@example.com"}),
        ("_b@", {"a_b@example.com"}),
        ("%", set()),  # one character: the start of an address, literally
        ("a\\b", set()),  # the escape character itself is literal too
        ("b@ex", {"a_b@example.com", "a%b@example.com", "axb@example.com"}),
    ],
)
def test_wildcards_typed_by_the_user_are_literal(client, wild, q, expected):
    assert set(listed(client, q=q)) == expected


def test_nothing_matches_no_bulk_actions(client, mixed):
    html = client.get(LIST, query_string={"q": "nobody-has-this"}).get_data(as_text=True)
    assert 'id="no-contacts"' in html
    assert 'id="bulk-form"' not in html and "select-matching" not in html
    assert "Delete" not in re.sub(r"<nav.*?</nav>", "", html, flags=re.S)  # no action buttons
    assert 'id="page-range"' not in html
    html = client.get(LIST, query_string={"q": "neu"}).get_data(as_text=True)
    assert 'id="bulk-form"' in html and "select-matching" in html


def test_the_api_keeps_its_prefix_search(app, owner, mixed):
    """The API's `q` is documented as "the start of the address or name"."""
    with app.app_context():
        account = db.session.get(Account, owner)
        prefix = ContactFilter(q="neu", search="prefix")
        page = queries.page_contacts(account, prefix)
        assert {c.email for c in page.contacts} == {
            "bernd.neu02@example.org",
            "anton@example.com",
        }  # by the last name "Neu", not by the address
        assert queries.count_contacts(account, ContactFilter(q="d.neu", search="prefix")) == (
            0,
            False,
        )


def test_a_page_cursor_that_left_the_list_starts_it_again(app, owner, mixed):
    with app.app_context():
        account = db.session.get(Account, owner)
        sort = ContactSort(key="email", descending=False)
        page = queries.page_contacts(account, ContactFilter(), after=10**9, sort=sort)
        assert page.at_start and page.contacts[0].email == "anton@example.com"


def test_a_search_is_counted_exactly_further_than_the_list(client, many, monkeypatch):
    """The search's count decides how its page is read, so it counts further."""
    monkeypatch.setattr(queries, "COUNT_CAP", 5)
    monkeypatch.setattr(queries, "FEW_MATCHES", 200)
    assert "1–50 of more than 5" in html_lib.unescape(client.get(LIST).get_data(as_text=True))
    html = html_lib.unescape(client.get(LIST + "?q=person").get_data(as_text=True))
    assert "1–50 of 120" in html


@pytest.mark.parametrize("key", ["added", "email", "name", "status"])
@pytest.mark.parametrize("descending", [False, True])
def test_few_matches_read_another_way_give_the_same_pages(app, owner, many, key, descending):
    """With the count known, a search's page is read from the trigram indexes and
    sorted; the rows and their order are the same as walking the index."""
    with app.app_context():
        account = db.session.get(Account, owner)
        f = ContactFilter(q="son0")  # person000 - person099
        sort = ContactSort(key=key, descending=descending)
        walked = queries.page_contacts(account, f, sort=sort)
        counted = queries.page_contacts(account, f, sort=sort, matches=100)
        assert [c.id for c in counted.contacts] == [c.id for c in walked.contacts]
        after = walked.next_after
        walked = queries.page_contacts(account, f, sort=sort, after=after)
        counted = queries.page_contacts(account, f, sort=sort, after=after, matches=100)
        assert [c.id for c in counted.contacts] == [c.id for c in walked.contacts]
        assert len(walked.contacts) == 50
