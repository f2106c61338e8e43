"""portal.core.sql: the one place PostgreSQL and SQLite differ (issue 19, point 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from portal.contacts.models import Group
from portal.core import sql
from portal.extensions import db


def test_both_databases_have_every_fragment_and_strategy():
    assert set(sql.FRAGMENTS[sql.POSTGRESQL]) == set(sql.FRAGMENTS[sql.SQLITE])
    assert set(sql.STRATEGIES) == {sql.POSTGRESQL, sql.SQLITE}


def test_a_datetime_reaches_a_raw_statement_as_utc():
    berlin = datetime(2026, 3, 29, 3, 30, 0, 250, tzinfo=timezone(timedelta(hours=2)))
    assert sql.utc_param(berlin, sql.POSTGRESQL) == datetime(2026, 3, 29, 1, 30, 0, 250)
    # SQLAlchemy's own text format, which the UTCDateTime columns hold on SQLite
    assert sql.utc_param(berlin, sql.SQLITE) == "2026-03-29 01:30:00.000250"
    assert sql.utc_param(None, sql.SQLITE) is None
    assert sql.utc_param("text", sql.POSTGRESQL) == "text"


def test_a_value_written_raw_reads_back_as_the_same_moment(app, owner):
    """What utc_param writes past the column type, the model reads back unchanged."""
    moment = datetime(2026, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)
    with app.app_context():
        group = Group(account_id=owner, name="Raw")
        db.session.add(group)
        db.session.flush()
        db.session.execute(
            text("UPDATE groups SET created_at = :t WHERE id = :id"),
            {"t": sql.utc_param(moment, sql.dialect_name()), "id": group.id},
        )
        db.session.expire_all()
        assert db.session.get(Group, group.id).created_at == moment
        db.session.rollback()


def test_lock_group_makes_a_second_locker_wait(app, owner, database_url):
    """On PostgreSQL the group's row is held until the transaction ends (an import into
    it waits for a restore or an undo); SQLite's one write lock does that already."""
    with app.app_context():
        group = Group(account_id=owner, name="Locked")
        db.session.add(group)
        db.session.commit()
        group_id = group.id
        sql.lock_group(group_id)
        if not sql.is_postgres():
            assert sql.strategy().row_locks is False
            db.session.rollback()
            return
        with db.engine.connect() as other:
            other.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(OperationalError):
                other.execute(
                    text("SELECT id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id}
                )
        db.session.rollback()
        with db.engine.connect() as other:  # released with the transaction
            other.execute(text("SELECT id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id})
