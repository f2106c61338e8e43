"""Engine tuning per database: SQLite gets WAL, a busy timeout and foreign keys,
so that the web process and the workers can share the file safely."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Connection, event, text

from portal.core import sql
from portal.extensions import db


def configure_engine(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return

    Path(app.config["INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)
    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def planned_rows(conn: Connection, table: str, where: str, params: dict[str, Any]) -> float:
    """PostgreSQL: how many rows the planner expects `SELECT … FROM table WHERE where`
    to find — what its statistics believe, to compare with what is there."""
    plan = conn.execute(
        text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {where}"),  # noqa: S608  # nosec B608  # callers pass constants
        params,
    ).scalar()
    return float(plan[0]["Plan"]["Plan Rows"])


def analyze_tables(tables: Iterable[str]) -> None:
    """PostgreSQL: fresh planner statistics for tables just filled in bulk (autovacuum
    would take them a minute or more later). On an autocommit connection of its own,
    so the lock ANALYZE takes ends with it, not with the caller's transaction."""
    if not sql.strategy().analyze:
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {table}"))  # nosec B608  # callers pass constants
