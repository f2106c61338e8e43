"""GET /healthz: 200 when the database and the queue answer, 503 otherwise."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from portal.extensions import db, limiter, rq

bp = Blueprint("health", __name__)


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "down"
        db.session.rollback()
        return False


def _queue_ok() -> bool:
    try:
        return bool(rq.queue.connection.ping())
    except Exception:  # noqa: BLE001
        return False


@bp.route("/healthz")
@limiter.exempt
def healthz():
    db_ok, queue_ok = _database_ok(), _queue_ok()
    status = "ok" if db_ok and queue_ok else "error"
    body = {
        "status": status,
        "db": "ok" if db_ok else "down",
        "queue": "ok" if queue_ok else "down",
        "database": db.engine.dialect.name,
        "version": current_app.config.get("VERSION", "0.1.0"),
    }
    return jsonify(body), 200 if status == "ok" else 503
