"""The contact list: every filter, keyset pages, capped counts, the bulk selection."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from werkzeug.datastructures import MultiDict

from portal.accounts.models import Account
from portal.contacts import queries, service
from portal.contacts.queries import BulkSelection, ContactFilter
from portal.extensions import db

LIST = "/a/acme/contacts"


def emails(html: str) -> list[str]:
    """The emails of the table rows, in order."""
    return re.findall(r'<a href="/a/acme/contacts/\d+">([^<]+)</a>', html)


def listed(client, **args) -> list[str]:
    response = client.get(LIST, query_string=args)
    assert response.status_code == 200
    return emails(response.get_data(as_text=True))


@pytest.fixture
def people(data):
    """Two groups, a tag and contacts in every state."""
    news = data.group("Newsletter")
    kunden = data.group("Kunden")
    jan = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    jun = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
    ids = {
        "juergen": data.contact(
            "juergen@example.com", "Jürgen", "Größ", groups=(news,), signup_at=jan, tags=("VIP",)
        ),
        "lukasz": data.contact(
            "lukasz@example.pl", "Łukasz", "Węgrzyn", groups=(news, kunden), signup_at=jun
        ),
        "eline": data.contact(
            "eline@example.nl",
            "Eline",
            "van 't Hoff",
            unsubscribed=((news, "unsubscribed"),),
            groups=(kunden,),
            signup_at=jun,
        ),
        "niccolo": data.contact(
            "niccolo@example.it",
            "Niccolò",
            "Martinež",
            unsubscribed=((news, "bounced"),),
            signup_at=jan,
            tags=("VIP", "caffè"),
        ),
        "nogroup": data.contact("nobody@example.com", "No", "Group"),
        "deleted": data.contact(
            "deleted@example.com", "Del", "Eted", groups=(news,), deleted=True, signup_at=jan
        ),
    }
    return {"news": news, "kunden": kunden, **ids}


def test_the_list_shows_all_contacts_newest_first(client, people):
    assert listed(client) == [
        "deleted@example.com",
        "nobody@example.com",
        "niccolo@example.it",
        "eline@example.nl",
        "lukasz@example.pl",
        "juergen@example.com",
    ]


def test_contacts_to_be_deleted_are_red_with_their_status(client, people):
    html = client.get(LIST).get_data(as_text=True)
    row = re.search(
        rf'<tr class="([^"]*)" data-contact-id="{people["deleted"]}"[^>]*>(.*?)</tr>', html, re.S
    )
    assert "contact-deleted" in row.group(1)
    assert "To be deleted" in row.group(2)
    other = re.search(rf'<tr class="([^"]*)" data-contact-id="{people["lukasz"]}"', html)
    assert "contact-deleted" not in other.group(1)


def test_filter_by_group(client, people):
    assert set(listed(client, group=people["kunden"])) == {
        "lukasz@example.pl",
        "eline@example.nl",
    }
    # all contacts with a subscription in Newsletter, active or not, deleted or not
    assert set(listed(client, group=people["news"])) == {
        "juergen@example.com",
        "lukasz@example.pl",
        "eline@example.nl",
        "niccolo@example.it",
        "deleted@example.com",
    }


@pytest.mark.parametrize(
    "status, expected",
    [
        (
            "active",
            {"juergen@example.com", "lukasz@example.pl", "eline@example.nl", "nobody@example.com"},
        ),
        ("unsubscribed", {"niccolo@example.it"}),
        ("deleted", {"deleted@example.com"}),
    ],
)
def test_filter_by_status(client, people, status, expected):
    """Unsubscribed = no active but at least one inactive subscription; Eline is still
    active in Kunden. The three states partition the contacts."""
    assert set(listed(client, status=status)) == expected


@pytest.mark.parametrize(
    "status, expected",
    [
        ("active", {"juergen@example.com", "lukasz@example.pl"}),
        ("unsubscribed", {"eline@example.nl", "niccolo@example.it"}),
        ("deleted", {"deleted@example.com"}),
    ],
)
def test_status_within_a_group_is_the_subscription_in_that_group(client, people, status, expected):
    assert set(listed(client, group=people["news"], status=status)) == expected


def test_unsubscribed_rows_say_so(client, people):
    html = client.get(LIST, query_string={"status": "unsubscribed"}).get_data(as_text=True)
    assert 'data-status="unsubscribed"' in html and "Unsubscribed" in html


def test_filter_by_tag(client, data, people):
    assert set(listed(client, tag=data.tag_id("VIP"))) == {
        "juergen@example.com",
        "niccolo@example.it",
    }
    assert listed(client, tag=data.tag_id("caffè")) == ["niccolo@example.it"]


def test_filter_by_signup_date_range(client, people):
    assert set(listed(client, signup_from="2024-01-01", signup_to="2024-01-31")) == {
        "juergen@example.com",
        "niccolo@example.it",
        "deleted@example.com",
    }
    assert set(listed(client, signup_from="2024-06-01")) == {
        "lukasz@example.pl",
        "eline@example.nl",
    }
    assert set(listed(client, signup_to="2024-01-15")) == {
        "juergen@example.com",
        "niccolo@example.it",
        "deleted@example.com",
    }
    # within a group: the sign-up in that group
    assert listed(client, group=people["kunden"], signup_to="2024-03-01") == []


def test_signup_dates_are_days_in_the_users_timezone(app, people):
    """00:30 in Berlin on 15 June is still 14 June in UTC."""
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        late = datetime(2024, 6, 14, 22, 30, tzinfo=UTC)
        contact = service.create_contact(account, "late@example.com", source="ui")
        service.subscribe(
            contact, db.session.get(service.Group, people["news"]), at=late, source="ui"
        )
        db.session.commit()
        f = ContactFilter(signup_from=datetime(2024, 6, 15).date(), q="late")
        berlin = queries.count_contacts(account, f, tz=ZoneInfo("Europe/Berlin"))
        utc = queries.count_contacts(account, f, tz=ZoneInfo("UTC"))
    assert berlin == (1, False) and utc == (0, False)


def test_invalid_dates_are_reported_and_ignored(client, people):
    response = client.get(LIST, query_string={"signup_from": "31.02.2024"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Please enter a date as YYYY-MM-DD." in html
    assert len(emails(html)) == 6
    html = client.get(
        LIST, query_string={"signup_from": "2024-06-01", "signup_to": "2024-01-01"}
    ).get_data(as_text=True)
    assert "The end date is before the start date." in html


@pytest.mark.parametrize(
    "q, expected",
    [
        ("juergen@", {"juergen@example.com"}),
        ("LUKASZ@EX", {"lukasz@example.pl"}),
        ("n", {"niccolo@example.it", "nobody@example.com"}),
        ("Jürgen", {"juergen@example.com"}),
        ("jurgen", {"juergen@example.com"}),
        ("Größ", {"juergen@example.com"}),
        ("gross", {"juergen@example.com"}),
        ("jürgen größ", {"juergen@example.com"}),
        ("Größ Jürgen", {"juergen@example.com"}),
        ("Łukasz", {"lukasz@example.pl"}),
        ("łukasz węg", {"lukasz@example.pl"}),
        ("wegrzyn", {"lukasz@example.pl"}),
        ("van 't", {"eline@example.nl"}),
        ("Niccolò", {"niccolo@example.it"}),
        ("martinez", {"niccolo@example.it"}),
        ("%", set()),
        ("_", set()),
        # from three characters on, any part (issue 17, point 15)
        ("example.com", {"juergen@example.com", "nobody@example.com", "deleted@example.com"}),
    ],
)
def test_free_search_on_email_and_names_by_prefix(client, people, q, expected):
    assert set(listed(client, q=q)) == expected


def test_filters_combine(client, data, people):
    assert listed(client, q="n", tag=data.tag_id("VIP"), status="unsubscribed") == [
        "niccolo@example.it"
    ]
    assert listed(client, group=people["kunden"], q="eline", status="active") == [
        "eline@example.nl"
    ]


def test_the_count_is_exact_and_pluralised(client, people):
    html = client.get(LIST, query_string={"status": "unsubscribed"}).get_data(as_text=True)
    assert "1 contact matches." in html
    assert "6 contacts match." in client.get(LIST).get_data(as_text=True)


def test_the_count_is_capped(client, people, monkeypatch, app):
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    html = client.get(LIST).get_data(as_text=True)
    assert "More than 3 contacts match." in html
    assert 'data-capped="true"' in html
    assert "Select all matching contacts (more than 3)" in html
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert queries.count_contacts(account, ContactFilter(), cap=6) == (6, False)
        assert queries.count_contacts(account, ContactFilter(), cap=5) == (5, True)


@pytest.fixture
def many(app, owner):
    """120 contacts, bulk-created."""
    with app.app_context():
        account = db.session.get(Account, owner)
        for i in range(120):
            service.create_contact(
                account, f"person{i:03d}@example.com", first_name=f"P{i}", source="ui"
            )
        db.session.commit()


def _follow(client, url):
    html = client.get(url).get_data(as_text=True)
    nxt = re.search(r'href="([^"]+)" id="page-next"', html)
    prev = re.search(r'href="([^"]+)" id="page-prev"', html)
    unescape = lambda m: m.group(1).replace("&amp;", "&") if m else None  # noqa: E731
    return emails(html), unescape(nxt), unescape(prev), html


def test_keyset_pages_have_no_duplicates_and_no_gaps(client, many):
    seen, url, pages = [], LIST, []
    while url:
        rows, url, _, _ = _follow(client, url)
        pages.append(rows)
        seen += rows
    assert [len(p) for p in pages] == [50, 50, 20]
    assert seen == [f"person{i:03d}@example.com" for i in range(119, -1, -1)]


def test_keyset_pages_go_back_too(client, many):
    first, next_url, prev_url, _ = _follow(client, LIST)
    assert prev_url is None
    second, third_url, back_url, html = _follow(client, next_url)
    assert 'id="page-first"' in html
    back, _, none_url, _ = _follow(client, back_url)
    assert back == first and none_url is None
    third, end_url, back2_url, _ = _follow(client, third_url)
    assert end_url is None and len(third) == 20
    assert _follow(client, back2_url)[0] == second


def test_pages_keep_the_filter(client, many):
    rows, next_url, _, _ = _follow(client, LIST + "?q=person1")
    assert len(rows) == 20 and next_url is None  # person100 - person119
    rows, next_url, _, _ = _follow(client, LIST + "?q=person")
    assert "q=person" in next_url


def test_new_contacts_between_pages_do_not_shift_the_pages(client, app, many, owner):
    first, next_url, _, _ = _follow(client, LIST)
    with app.app_context():
        service.create_contact(db.session.get(Account, owner), "newcomer@example.com", source="ui")
        db.session.commit()
    second, _, _, _ = _follow(client, next_url)
    assert second[0] == "person069@example.com" and not set(first) & set(second)


def test_bulk_form_carries_the_selection_for_later_actions(client, data, people):
    html = client.get(LIST, query_string={"status": "unsubscribed", "q": "n"}).get_data(
        as_text=True
    )
    assert 'name="filter" value="status=unsubscribed&amp;q=n"' in html
    assert f'name="page_ids" value="{people["niccolo"]}"' in html
    assert 'name="scope" value="page" id="select-page"' in html
    assert 'name="scope" value="matching" id="select-matching"' in html
    assert "Select the matching contact" in html
    assert f'name="ids" value="{people["niccolo"]}"' in html
    assert "/static/js/contacts.js" in html and "<script>" not in html


def test_bulk_selection_resolves_ids_server_side(app, owner, people, make_account, make_data):
    other = make_data(make_account("other"))
    foreign = other.contact("foreign@example.com")
    with app.app_context():
        account = db.session.get(Account, owner)
        chosen = BulkSelection.from_form(
            MultiDict([("ids", str(people["eline"])), ("ids", str(foreign)), ("ids", "x")])
        )
        assert chosen.scope == "selected"
        assert [i for batch in chosen.iter_ids(account) for i in batch] == [people["eline"]]
        page = BulkSelection.from_form(
            MultiDict([("scope", "page"), ("page_ids", f"{people['lukasz']},{people['juergen']}")])
        )
        assert sorted(i for b in page.iter_ids(account) for i in b) == sorted(
            [people["lukasz"], people["juergen"]]
        )
        matching = BulkSelection.from_form(
            MultiDict([("scope", "page"), ("scope", "matching"), ("filter", "status=deleted")])
        )
        assert matching.scope == "matching"
        assert [i for b in matching.iter_ids(account) for i in b] == [people["deleted"]]
        everything = BulkSelection.from_form(MultiDict([("scope", "matching")]))
        batches = list(everything.iter_ids(account, batch=4))
        assert [len(b) for b in batches] == [4, 2]


def test_filter_roundtrip_through_the_query_string():
    f = ContactFilter(
        group_id=3,
        status="unsubscribed",
        tag_id=7,
        signup_from=datetime(2024, 1, 1).date(),
        signup_to=datetime(2024, 2, 1).date(),
        q="Jürgen Größ",
    )
    from urllib.parse import parse_qsl

    assert ContactFilter.from_args(dict(parse_qsl(f.query_string()))) == f
    assert ContactFilter.from_args({"status": "nonsense", "group": "-1", "tag": "x"}) == (
        ContactFilter()
    )


def test_viewers_see_the_list(client, app, owner, make_user, data, people):
    from portal.accounts.models import Role
    from tests.helpers.auth import login

    make_user("viewer@acme.example", owner, Role.VIEWER)
    client.post("/logout")
    login(client, "viewer@acme.example")
    assert len(listed(client)) == 6


def test_nav_shows_contacts_and_groups(client, owner):
    html = client.get("/a/acme/").get_data(as_text=True)
    assert 'href="/a/acme/contacts"' in html and 'href="/a/acme/groups"' in html
