"""Contacts pages over HTTP: p50/p95 of the real app served by gunicorn (issue 3).

    # once: build the account (PostgreSQL: 1,000,000 contacts; SQLite: 100,000)
    DATABASE_URL=... .venv/bin/python bench/make_large_account.py --contacts 1000000 --analyze
    # then
    DATABASE_URL=... .venv/bin/python bench/list_http_bench.py --requests 60

Measured, each with --requests sequential requests after 5 warm-up requests, by one
signed-in owner of the account `bench`: the first list page, a filtered page (group +
status active), an email-prefix search, and contact cards of random contacts."""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-password-1"


def prepare(slug: str) -> dict:
    """An owner to sign in with, a group id and some contact ids and email prefixes."""
    from portal import create_app
    from portal.accounts import service as accounts
    from portal.accounts.models import Account, Role
    from portal.contacts.models import Contact, Group
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == slug))
        if account is None:
            raise SystemExit(f"no account {slug!r}: run bench/make_large_account.py first")
        email = f"owner@{slug}.example"
        user = accounts.find_user_by_email(email)
        if user is None:
            user = accounts.create_user(email, PASSWORD)
            accounts.add_member(account, user, Role.OWNER)
            db.session.commit()
        group_id = db.session.scalar(
            db.select(Group.id).where(Group.account_id == account.id).order_by(Group.id).limit(1)
        )
        top = db.session.scalar(
            db.select(db.func.max(Contact.id)).where(Contact.account_id == account.id)
        )
        low = db.session.scalar(
            db.select(db.func.min(Contact.id)).where(Contact.account_id == account.id)
        )
        rnd = random.Random(3)
        ids = [rnd.randint(low, top) for _ in range(200)]
        emails = db.session.scalars(
            db.select(Contact.email).where(Contact.id.in_(ids)).limit(50)
        ).all()
        total = db.session.scalar(
            db.select(db.func.count(Contact.id)).where(Contact.account_id == account.id)
        )
        return {
            "email": email,
            "group": group_id,
            "ids": ids,
            "prefixes": [e[:6] for e in emails],
            "contacts": total,
            "dialect": db.engine.dialect.name,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(workers: int = 2) -> tuple[subprocess.Popen, str]:
    """gunicorn serving app:app on a free port (rate limits off), once /healthz answers."""
    port = free_port()
    env = dict(os.environ, RATELIMIT_ENABLED="false")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "app:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    return server, base


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str, float]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=60) as response:
            body = response.read().decode()
            return response.status, body, time.perf_counter() - started

    def login(self, email: str) -> None:
        _, page, _ = self.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {"csrf_token": token, "email": email, "password": PASSWORD}
        ).encode()
        self.opener.open(self.base + "/login", data=data, timeout=60).read()


def measure(browser: Browser, paths: list[str], n: int) -> dict:
    for path in paths[:5]:
        browser.get(path)
    times = []
    for i in range(n):
        status, _, seconds = browser.get(paths[i % len(paths)])
        assert status == 200, status
        times.append(seconds * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "max_ms": round(times[-1], 1),
    }


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser()
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    facts = prepare(args.slug)
    server, base = start_gunicorn(workers=2)
    try:
        browser = Browser(base)
        browser.login(facts["email"])
        slug = args.slug
        results = {
            "database": facts["dialect"],
            "contacts": facts["contacts"],
            "first list page": measure(browser, [f"/a/{slug}/contacts"], args.requests),
            "group + status page": measure(
                browser, [f"/a/{slug}/contacts?group={facts['group']}&status=active"], args.requests
            ),
            "email prefix search": measure(
                browser,
                [f"/a/{slug}/contacts?q={urllib.parse.quote(p)}" for p in facts["prefixes"]],
                args.requests,
            ),
            "contact card": measure(
                browser, [f"/a/{slug}/contacts/{i}" for i in facts["ids"]], args.requests
            ),
        }
        print(json.dumps(results, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
