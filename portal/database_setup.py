"""Engine tuning per database: SQLite gets WAL, a busy timeout and foreign keys,
so that the web process and the workers can share the file safely."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from portal.extensions import db


def configure_engine(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from pathlib import Path

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
