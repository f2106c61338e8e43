"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys

from portal.config import ROOT


def _flask(args, env):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_migrations_apply_to_an_empty_database_and_match_the_models(tmp_path, redis_url):
    env = dict(
        os.environ,
        INSTANCE_PATH=str(tmp_path),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
        SECRET_KEY="x",
    )
    upgrade = _flask(["db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    check = _flask(["db", "check"], env)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_ids_never_reused_migration_keeps_every_row_and_counts_past_deleted_ids(
    tmp_path, redis_url
):
    """0b7e3c9a1f24 rebuilds tables with AUTOINCREMENT on SQLite: no row of a child table
    may go with the DROP of its parent (foreign keys are off while it runs), and the next
    contact id is above the highest one ever named — here contact 7, deleted before the
    migration but still named in the audit log."""
    import sqlite3

    db_path = tmp_path / "old.db"
    env = dict(
        os.environ,
        INSTANCE_PATH=str(tmp_path),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY="x",
    )
    before = _flask(["db", "upgrade", "6ead2e05e5e1"], env)
    assert before.returncode == 0, before.stderr[-2000:]
    now = "2026-12-01 10:00:00"
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO accounts VALUES (1, 'Acme', 'acme', 'Europe/Berlin', 'en', 1, ?)", (now,)
        )
        conn.execute("INSERT INTO groups VALUES (1, 1, 'News', 1, ?, 'tok')", (now,))
        for contact_id in (1, 2, 3):
            conn.execute(
                "INSERT INTO contacts VALUES (?, 1, ?, '', '', '{}', 'active', NULL, ?, ?, '', '')",
                (contact_id, f"c{contact_id}@example.com", now, now),
            )
            conn.execute(
                "INSERT INTO subscriptions (account_id, contact_id, group_id, active, source) "
                "VALUES (1, ?, 1, 1, 'ui')",
                (contact_id,),
            )
            conn.execute(
                "INSERT INTO activities (account_id, contact_id, kind, occurred_at, detail) "
                "VALUES (1, ?, 'open', ?, '')",
                (contact_id, now),
            )
        conn.execute(
            "INSERT INTO audit_events (account_id, actor_type, actor_label, action, "
            "object_type, object_id, details, created_at) "
            "VALUES (1, 'system', '', 'contacts.forgotten', 'contact', 7, '{}', ?)",
            (now,),
        )
    upgrade = _flask(["db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]

    with sqlite3.connect(db_path) as conn:
        count = lambda table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: E731, S608
        assert [count(t) for t in ("contacts", "subscriptions", "activities", "groups")] == [
            3,
            3,
            3,
            1,
        ]
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'contacts'").fetchone()[0]
        assert "AUTOINCREMENT" in sql
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("PRAGMA foreign_keys=ON")  # as the portal's connections have it
        conn.execute("DELETE FROM contacts WHERE id = 3")
        conn.execute(
            "INSERT INTO contacts (account_id, email, first_name, last_name, fields, status, "
            "created_at, updated_at, search_name, search_name_rev) "
            "VALUES (1, 'new@example.com', '', '', '{}', 'active', ?, ?, '', '')",
            (now, now),
        )
        new_id = conn.execute("SELECT id FROM contacts WHERE email = 'new@example.com'").fetchone()
    assert new_id == (8,), "not 3 (deleted) and not 7 (named in the audit log)"
    check = _flask(["db", "check"], env)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    down = _flask(["db", "downgrade", "6ead2e05e5e1"], env)
    assert down.returncode == 0, down.stderr[-2000:]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM subscriptions").fetchone()[0] == 2
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'contacts'").fetchone()[0]
        assert "AUTOINCREMENT" not in sql
