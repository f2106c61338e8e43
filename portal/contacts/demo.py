"""Deterministic demo and benchmark data: contacts with German, Polish, Italian and Dutch
names, custom fields, tags, subscriptions (some signed off, with reasons) and activities.

Rows are written in bulk: COPY on PostgreSQL, executemany elsewhere, with ids reserved
up front so that subscriptions, tags and activities can refer to them. A million
contacts take minutes, not hours. Used by `portal seed-demo` and `portal bench-account`
(bench/make_large_account.py)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, text

from portal import clock
from portal.contacts import fields as contact_fields
from portal.contacts import queries, service
from portal.contacts.models import (
    Activity,
    Contact,
    ContactStatus,
    CustomField,
    Group,
    Subscription,
    Tag,
    contact_row,
    contact_tags,
    fold,
)
from portal.core import sql
from portal.database_setup import analyze_tables
from portal.extensions import db


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


FIRST_NAMES = {
    "de": _names(
        "Jürgen, Jörg, Käthe, Ulrike, Björn, Sönke, Günther, Bärbel, Lukas, Anna, "
        "Maximilian, Özlem, Hannelore, Grete, Tobias, Friederike"
    ),
    "pl": _names(
        "Łukasz, Paweł, Małgorzata, Michał, Grzegorz, Żaneta, Agnieszka, Jędrzej, "
        "Bożena, Wojciech, Zbigniew, Ewa, Katarzyna, Łucja"
    ),
    "it": _names(
        "Niccolò, Giosuè, Mattia, Giulia, Chiara, Francesca, Raffaele, Pasquale, "
        "Letizia, Andrea, Noè, Nicolò, Lucia, Federica"
    ),
    "nl": _names(
        "Eline, Sanne, Daan, Joëlle, Noël, Thijs, Anouk, Sjoerd, Ruud, Maaike, Chloë, "
        "Femke, Bram, IJsbrand"
    ),
}
LAST_NAMES = {
    "de": _names(
        "Größ, Müller, Schäfer, Weiß, Bäcker, Köhler, Groß, Süß, Straßer, Jäger, Fuß, "
        "Löwe, Brückner, Mößner, Ölschläger, Krämer"
    ),
    "pl": _names(
        "Węgrzyn, Wąsowski, Żółtowski, Kościuszko, Przybył, Sęk, Błaszczyk, Mączka, "
        "Nowak, Dąbrowski, Łęcki, Ślęzak, Gołąb, Wróbel"
    ),
    "it": _names(
        "Martinež, De Luca, D'Alessandro, Cantù, Fò, Lo Russo, Sciarrà, Pellegrini, "
        "Della Rovere, Mosè, Niccolai, Esposito, Bonaccorsi, Canè"
    ),
    "nl": _names(
        "van 't Hoff, de Vries, van der Berg, Bakker, IJzerman, 't Hart, Dijkstra, "
        "van Dijk, de Jong, Brouwer, Hoekstra, van den Broek"
    ),
}
DOMAINS = {
    "de": ["example.de", "beispiel.example", "firma.example"],
    "pl": ["example.pl", "przyklad.example"],
    "it": ["example.it", "esempio.example"],
    "nl": ["example.nl", "voorbeeld.example"],
}
CITIES = {
    "de": ["München", "Köln", "Düsseldorf", "Görlitz", "Lübeck", "Berlin"],
    "pl": ["Kraków", "Łódź", "Gdańsk", "Wrocław", "Poznań", "Warszawa"],
    "it": ["Forlì", "Cantù", "Milano", "Napoli", "Sant'Agata", "Torino"],
    "nl": ["'s-Hertogenbosch", "Den Haag", "IJmuiden", "Utrecht", "Zwolle", "Delft"],
}
DEMO_GROUPS = ("Newsletter", "Kunden", "Webinar", "Produkt-Updates")
DEMO_TAGS = tuple(
    _names(
        "VIP, Bestandskunde, Messe München, Rückruf, Übersee, Straßenfest 2024, Łódź, caffè, "
        "Café, B2B, 2024"
    )
)
DEMO_FIELDS = (
    ("city", "Stadt / City", "text", None),
    ("customer_number", "Kundennummer", "number", None),
    ("birthday", "Geburtstag", "date", None),
    ("plan", "Tarif", "choice", ["Basis", "Profi", "Unternehmen"]),
)
REASONS = (("unsubscribed", 60), ("bounced", 25), ("complained", 5), ("manual", 10))
CLICK_URLS = (
    "https://example.com/angebote/größen",
    "https://example.com/webinar/anmeldung",
    "https://example.com/prodotti?colore=blu",
    "https://example.com/nl/aanbiedingen",
)

_LOCAL_PART = re.compile(r"[^a-z0-9]+")


def _ascii(text: str) -> str:
    return _LOCAL_PART.sub("", fold(text)) or "x"


def ensure_setup(
    account, *, group_names: Iterable[str], tag_names: Iterable[str], with_fields: bool = True
) -> tuple[list[Group], list[Tag], list[CustomField]]:
    """Groups, tags and custom fields the generated contacts use (created if missing)."""
    existing = {g.name: g for g in queries.groups_of(account)}
    groups = [
        existing.get(name) or service.create_group(account, name, actor=None, source="job")
        for name in group_names
    ]
    tags = [service.get_or_create_tag(account, name) for name in tag_names]
    fields = contact_fields.custom_fields(account)
    if with_fields:
        have = {f.key for f in fields}
        for key, label, kind, choices in DEMO_FIELDS:
            if key not in have:
                contact_fields.create_custom_field(
                    account, key, label, kind, choices=choices, actor=None, source="job"
                )
        fields = contact_fields.custom_fields(account)
    return groups, tags, fields


class _Writer:
    """Bulk writes: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self):
        self.connection = db.session.connection()
        self.postgres = sql.strategy(self.connection).copy_rows

    def reserve_ids(self, table: Table, n: int) -> list[int]:
        if self.postgres:
            seq = f"{table.name}_id_seq"
            return list(
                self.connection.execute(
                    text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
                    {"seq": seq, "n": n},
                ).scalars()
            )
        start = (self.connection.execute(select(func.max(table.c.id))).scalar() or 0) + 1
        return list(range(start, start + n))

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self.postgres:
            self.connection.execute(table.insert(), rows)
            return
        columns = list(rows[0])
        raw = self.connection.connection.driver_connection
        with raw.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([_copy_value(row[c]) for c in columns])


def _copy_value(value):
    if isinstance(value, datetime):
        return sql.utc_param(value, sql.POSTGRESQL)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def generate_contacts(
    account,
    n: int,
    *,
    groups: list[Group],
    tags: list[Tag],
    fields: list[CustomField],
    seed: int = 20241,
    batch: int = 10_000,
    activities: float = 1.0,
    deleted_share: float = 0.01,
    start_index: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write `n` contacts (with subscriptions, tags, activities) in batches; commits
    after every batch so that a large run keeps memory flat. Returns n. The same seed
    gives the same data: the steps below draw from `rng` in a fixed order."""
    rng = random.Random(seed)  # nosec B311  # reproducible demo data, not a secret
    now = clock.now()
    writer = _Writer()
    by_key = {f.key: f for f in fields}
    done = 0
    while done < n:
        size = min(batch, n - done)
        ids = writer.reserve_ids(Contact.__table__, size)
        contacts, subs, links, acts = [], [], [], []
        for offset, contact_id in enumerate(ids):
            index = start_index + done + offset
            row = _demo_contact(rng, account, index, by_key, now, deleted_share)
            row["id"] = contact_id
            contacts.append(row)
            created = row["created_at"]
            subs += _demo_subscriptions(rng, account, contact_id, created, groups, now)
            for tag in rng.sample(tags, k=min(len(tags), rng.choice((0, 0, 1, 1, 2, 3)))):
                links.append({"contact_id": contact_id, "tag_id": tag.id})
            acts += _demo_activities(rng, account, contact_id, created, groups, activities)
        for a in acts:
            a["occurred_at"] = min(a["occurred_at"], now)
        writer.write(Contact.__table__, contacts)
        writer.write(Subscription.__table__, subs)
        writer.write(contact_tags, links)
        writer.write(Activity.__table__, acts)
        db.session.commit()
        writer = _Writer()
        done += size
        if progress:
            progress(done)
    analyze_tables(BULK_TABLES)
    return n


def _demo_contact(rng, account, index: int, by_key, now, deleted_share: float) -> dict:
    lang = rng.choice(("de", "de", "pl", "it", "nl"))
    first = rng.choice(FIRST_NAMES[lang])
    last = rng.choice(LAST_NAMES[lang])
    email = f"{_ascii(first)}.{_ascii(last)}.{index}@{rng.choice(DOMAINS[lang])}"
    created = now - timedelta(days=rng.uniform(1, 730), seconds=rng.randint(0, 86399))
    deleted = rng.random() < deleted_share
    return contact_row(
        account.id,
        email,
        first,
        last,
        fields=_field_values(rng, by_key, lang),
        status=ContactStatus.DELETED.value if deleted else ContactStatus.ACTIVE.value,
        deleted_at=now - timedelta(hours=rng.randint(1, 20)) if deleted else None,
        created_at=created,
    )


def _demo_subscriptions(rng, account, contact_id: int, created, groups, now) -> list[dict]:
    """One to three of the groups; one in ten signed off since, with a reason."""
    reasons = [r for r, _ in REASONS]
    weights = [w for _, w in REASONS]
    subs = []
    for group in rng.sample(groups, k=min(len(groups), rng.choice((1, 1, 2, 3)))):
        signup = created + timedelta(minutes=rng.randint(0, 600))
        active = rng.random() >= 0.1
        signoff = None if active else signup + timedelta(days=rng.uniform(1, 300))
        if signoff and signoff > now:
            signoff = now - timedelta(minutes=5)
        subs.append(
            {
                "account_id": account.id,
                "contact_id": contact_id,
                "group_id": group.id,
                "active": active,
                "activated_at": signup,
                "deactivated_at": signoff,
                "optout_reason": None if active else rng.choices(reasons, weights)[0],
                "source": "job",
            }
        )
    return subs


def _demo_activities(rng, account, contact_id: int, created, groups, activities) -> list[dict]:
    """About `activities` opens, clicks and bounces per contact on average."""
    acts = []
    count = int(activities * 2 * rng.random() + 0.5) if activities else 0
    for _ in range(count):
        kind = rng.choices(("open", "click", "bounce"), (70, 27, 3))[0]
        acts.append(
            {
                "account_id": account.id,
                "contact_id": contact_id,
                "group_id": rng.choice(groups).id if groups else None,
                "kind": kind,
                "occurred_at": created + timedelta(days=rng.uniform(0, 700)),
                "detail": rng.choice(CLICK_URLS)
                if kind == "click"
                else ("550 5.1.1 User unknown" if kind == "bounce" else ""),
            }
        )
    return acts


# Straight after a bulk load the planner's statistics still say the account is empty,
# and a group count joined each subscription to a walk over all the account's contacts:
# over 30 minutes for 100,000 contacts on 2 cores (caught in a test run), 0.04 s after
# ANALYZE.
BULK_TABLES = ("contacts", "subscriptions", "contact_tags", "activities")


def _field_values(rng: random.Random, by_key: dict[str, CustomField], lang: str) -> dict:
    values: dict[str, Any] = {}
    if "city" in by_key and rng.random() < 0.8:
        values["city"] = rng.choice(CITIES[lang])
    if "customer_number" in by_key and rng.random() < 0.5:
        values["customer_number"] = rng.randint(10000, 99999)
    if "birthday" in by_key and rng.random() < 0.3:
        values["birthday"] = (
            (datetime(1950, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 20000)))
            .date()
            .isoformat()
        )
    plan = by_key.get("plan")
    if plan is not None and plan.choices and rng.random() < 0.6:
        values["plan"] = rng.choice(plan.choices)
    return values


def has_contacts(account) -> bool:
    return (
        db.session.scalar(select(Contact.id).where(Contact.account_id == account.id).limit(1))
        is not None
    )


def seed_demo_contacts(account, n: int = 1000, *, seed: int = 20241) -> int:
    """The demo account's recipients; does nothing when it has contacts already."""
    if has_contacts(account):
        return 0
    groups, tags, fields = ensure_setup(account, group_names=DEMO_GROUPS, tag_names=DEMO_TAGS)
    db.session.commit()
    return generate_contacts(
        account, n, groups=groups, tags=tags, fields=fields, seed=seed, batch=5000
    )


def build_large_account(
    account,
    n: int,
    *,
    group_count: int = 20,
    seed: int = 7,
    batch: int = 20_000,
    activities: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> int:
    """An account for benchmarks: `n` contacts in `group_count` groups."""
    names = [f"Gruppe {i:02d}" for i in range(1, group_count + 1)]
    groups, tags, fields = ensure_setup(account, group_names=names, tag_names=DEMO_TAGS)
    db.session.commit()
    start = db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.account_id == account.id)
    )
    return generate_contacts(
        account,
        n,
        groups=groups,
        tags=tags,
        fields=fields,
        seed=seed,
        batch=batch,
        activities=activities,
        start_index=start,
        progress=progress,
    )
