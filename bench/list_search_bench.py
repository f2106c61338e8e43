"""The contact list with a search, sorted, and the account's home page over HTTP:
p50/p95 of the real app served by gunicorn (issue 17, points 14 and 15).

    # once: build the account (PostgreSQL: 1,000,000 contacts)
    DATABASE_URL=... .venv/bin/python bench/make_large_account.py --contacts 1000000 --analyze
    # then
    DATABASE_URL=... .venv/bin/python bench/list_search_bench.py --requests 100
    # the same pages served by another checkout (e.g. the code before this change):
    DATABASE_URL=... .venv/bin/python bench/list_search_bench.py --app-root /tmp/base

One signed-in owner of the account `bench`, 5 warm-up requests, then --requests
sequential requests per target (the same login and gunicorn as bench/list_http_bench.py).
The search terms are 50 parts of real contacts, taken from the middle of an address
("rgen.gr", "4518") or of a last name ("ller"), 3 to 6 characters, chosen with a fixed
seed, so every run and every checkout asks the same questions. Each answer must be 200;
the number of contacts each term finds is printed with the figures."""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import list_http_bench as http  # noqa: E402


def search_terms(slug: str, n: int = 50) -> list[str]:
    """Parts from the middle of addresses and last names of random contacts."""
    from portal import create_app
    from portal.accounts.models import Account
    from portal.contacts.models import Contact, fold
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        top, low = db.session.execute(
            db.select(db.func.max(Contact.id), db.func.min(Contact.id)).where(
                Contact.account_id == account.id
            )
        ).one()
        rnd = random.Random(17)
        ids = [rnd.randint(low, top) for _ in range(4 * n)]
        rows = db.session.execute(
            db.select(Contact.email, Contact.last_name)
            .where(Contact.id.in_(ids), Contact.account_id == account.id)
            .order_by(Contact.id)
        ).all()
    terms: list[str] = []
    for i, (email, last_name) in enumerate(rows):
        source = email.split("@")[0] if i % 2 == 0 else fold(last_name)
        if len(source) < 5:
            continue
        length = rnd.randint(3, min(6, len(source) - 2))
        start = rnd.randint(1, len(source) - length)
        term = source[start : start + length].strip(". ")
        if len(term) >= 3 and term not in terms:
            terms.append(term)
        if len(terms) == n:
            break
    return terms


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser()
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--app-root", type=Path, default=ROOT, help="the checkout gunicorn serves (default: this)"
    )
    args = parser.parse_args()
    facts = http.prepare(args.slug)
    terms = search_terms(args.slug)
    http.ROOT = args.app_root.resolve()
    server, base = http.start_gunicorn(workers=2)
    try:
        browser = http.Browser(base)
        browser.login(facts["email"])
        contacts = f"/a/{args.slug}/contacts"
        searches = [f"{contacts}?q={urllib.parse.quote(t)}" for t in terms]
        found = {}
        for term, path in zip(terms, searches, strict=True):
            _, body, _ = browser.get(path)
            count = re.search(r'id="match-count" data-count="(\d+)" data-capped="(\w+)"', body)
            found[term] = f"{'>' if count.group(2) == 'true' else ''}{count.group(1)}"
        targets = {
            "first list page": [contacts],
            "search anywhere (50 terms)": searches,
            "search, sorted by address": [p + "&sort=email&dir=asc" for p in searches],
            "sorted by address (page 1)": [contacts + "?sort=email&dir=asc"],
            "sorted by name, descending": [contacts + "?sort=name&dir=desc"],
            "sorted by status": [contacts + "?sort=status&dir=asc"],
            "sorted by status, descending": [contacts + "?sort=status&dir=desc"],
            "home page": [f"/a/{args.slug}/"],
        }
        results: dict = {"database": facts["dialect"], "contacts": facts["contacts"]}
        for name, paths in targets.items():
            try:
                results[name] = http.measure(browser, paths, args.requests)
            except (AssertionError, OSError) as exc:  # a page the checkout does not have
                results[name] = f"not measured: {exc!r}"
        results["found per term"] = found
        print(json.dumps(results, indent=2, ensure_ascii=False))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
