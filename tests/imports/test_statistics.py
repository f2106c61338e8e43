"""PostgreSQL: while an import fills a new account, the planner keeps a true enough picture
of it. With statistics from before the import it believed the account empty and looked up
each line's contact by walking every contact of the account: the second chunk of a
100,000-line import took 120 s instead of 1 s (the Redis drill in CI)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from portal.accounts.models import Account
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group
from portal.database_setup import analyze_tables, planned_rows
from portal.extensions import db
from portal.imports import planner, service
from portal.imports.models import ImportJob, ImportStatus
from tests.imports.conftest import configured_import, postgresql_only, write_csv

pytestmark = postgresql_only(
    "the planner's statistics are PostgreSQL's; SQLite keeps none (no ANALYZE)"
)

CHUNK = 1_000
ROWS = 6_000


def _rows(n: int, domain: str) -> list[list[str]]:
    return [["email", "first_name"]] + [[f"p{i}@{domain}", f"P{i}"] for i in range(n)]


def _planned(conn, table: str, where: str, key: int) -> float:
    return planned_rows(conn, table, where, {"key": key})


@pytest.fixture
def small_chunks(app):
    before = app.config["IMPORT_CHUNK_ROWS"]
    app.config["IMPORT_CHUNK_ROWS"] = CHUNK
    yield
    app.config["IMPORT_CHUNK_ROWS"] = before


def _group(account_id: int) -> Group:
    group = Group(account_id=account_id, name="Newsletter")
    db.session.add(group)
    db.session.commit()
    return group


def _analyze_everything() -> None:
    analyze_tables(("contacts", "subscriptions", "import_rows"))


def test_the_planner_sees_a_new_account_grow_during_its_import(
    ctx, make_account, small_chunks, tmp_path
):
    # another customer's list is in, and the statistics are fresh — of a portal in which
    # the new account has nothing yet
    other = db.session.get(Account, make_account("other"))
    first = configured_import(
        other, _group(other.id), write_csv(tmp_path / "other.csv", _rows(3_000, "other.de"))
    )
    service.run(first)
    new = db.session.get(Account, make_account("new"))
    group = _group(new.id)
    job = configured_import(
        new, group, write_csv(tmp_path / "new.csv", _rows(ROWS, "new.de")), source="api"
    )
    _analyze_everything()

    seen = []  # at each chunk: what is there, and what the planner expects

    def before_chunk(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().startswith("CREATE TEMPORARY TABLE import_chunk"):
            return
        with db.engine.connect() as probe:
            contacts = probe.scalar(
                text("SELECT count(*) FROM contacts WHERE account_id = :a"), {"a": new.id}
            )
            seen.append(
                {
                    "contacts": contacts,
                    "planned contacts": _planned(probe, "contacts", "account_id = :key", new.id),
                    "planned subscriptions": _planned(
                        probe, "subscriptions", "group_id = :key", group.id
                    ),
                    "staged": probe.scalar(
                        text("SELECT count(*) FROM import_rows WHERE import_id = :j"),
                        {"j": job.id},
                    ),
                    "planned staged": _planned(probe, "import_rows", "import_id = :key", job.id),
                }
            )

    event.listen(db.engine, "before_cursor_execute", before_chunk)
    try:
        service.run(job)
    finally:
        event.remove(db.engine, "before_cursor_execute", before_chunk)

    job = db.session.get(ImportJob, job.id)
    assert (job.status, job.created) == (ImportStatus.FINISHED, ROWS)
    grown = [chunk["contacts"] for chunk in seen]
    assert len(grown) > ROWS // CHUNK and grown == sorted(grown)
    assert grown[0] == 0 and grown[-1] >= ROWS - CHUNK
    for chunk in seen:
        floor = chunk["contacts"] / 10  # far from "a few rows", where the plans go bad
        assert chunk["planned contacts"] >= floor, seen
        assert chunk["planned subscriptions"] >= floor, seen
        assert chunk["planned staged"] >= chunk["staged"] / 10, seen
    assert (
        db.session.scalar(
            db.select(db.func.count()).select_from(Contact).where(Contact.account_id == new.id)
        )
        == ROWS
    )
    # the refresh analyzed the column the look-up matches on too: without statistics of
    # `email` the planner expects 250 contacts per address and costs the classification
    # in the tens of millions (JIT compiled it, 0.5 s a chunk)
    with db.engine.connect() as probe:
        sampled = probe.scalar(
            text("""SELECT CAST(histogram_bounds AS text) FROM pg_stats
                    WHERE tablename = 'contacts' AND attname = 'email'""")
        )
    assert "@new.de" in (sampled or ""), sampled


def test_an_account_the_planner_knows_is_not_analyzed_again(
    ctx, make_account, small_chunks, tmp_path
):
    """An import into an account whose statistics are right costs three EXPLAINs and
    three short counts per chunk, and no ANALYZE."""
    account = db.session.get(Account, make_account("known"))
    group = _group(account.id)
    known = write_csv(tmp_path / "a.csv", _rows(ROWS, "known.de"))
    service.run(configured_import(account, group, known, source="api"))
    _analyze_everything()
    more = write_csv(tmp_path / "b.csv", _rows(ROWS // 10, "more.de"))
    job = configured_import(account, group, more, source="api")
    assert planner.PlannerStatistics(job).refresh() == []


def test_contacts_added_by_hand_after_the_statistics_are_seen_before_an_import(
    ctx, make_account, tmp_path
):
    """Statistics taken while the account was empty, then contacts signed up one by
    one: the import's first refresh analyzes contacts and subscriptions, the next
    finds them right."""
    account = db.session.get(Account, make_account("by-hand"))
    group = _group(account.id)
    _analyze_everything()
    for i in range(40):
        contact = contacts.create_contact(account, f"hand{i}@example.de", actor=None, source="ui")
        contacts.subscribe(contact, group, actor=None, source="ui")
    db.session.commit()
    job = configured_import(
        account, group, write_csv(tmp_path / "c.csv", _rows(5, "example.de")), source="api"
    )
    statistics = planner.PlannerStatistics(job)
    assert statistics.refresh() == ["contacts", "subscriptions"]
    with db.engine.connect() as probe:
        assert _planned(probe, "contacts", "account_id = :key", account.id) >= 40
    assert statistics.refresh() == []
