"""Second apps next to the session app: the web process as production runs it (jobs go
to Redis and wait for a worker) on the test database and Redis. Written once here; five
test modules used to carry their own copy."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from flask import Flask

from portal import create_app
from portal.extensions import db
from tests.workers import TEST_KEYS


@contextlib.contextmanager
def web_app(database_url: str, redis_url: str, **config: Any) -> Iterator[Flask]:
    """The app as the web process has it: not TESTING, so queues are asynchronous and a
    real worker process has to do the jobs. Its connections are closed at the end, so
    the per-test cleanup never waits for a lock one of them still holds."""
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, **TEST_KEYS} | config
    )
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextlib.contextmanager
def queued_twin(app: Flask, keys: tuple[str, ...], **config: Any) -> Iterator[Flask]:
    """A TESTING app whose jobs wait in Redis for a worker (flask-rq reads RQ_ASYNC; the
    session app runs them at once). It shares `keys` of the session app's config (its
    database, Redis, secret key...), so a cookie or a queued job is good for both."""
    with web_app(
        app.config["SQLALCHEMY_DATABASE_URI"],
        app.config["REDIS_URL"],
        **({"TESTING": True, "RQ_ASYNC": True} | {key: app.config[key] for key in keys} | config),
    ) as twin:
        yield twin


@contextlib.contextmanager
def allowing_private_targets(app: Flask) -> Iterator[None]:
    """Webhooks may go to this machine (127.0.0.1), as an on-premise installation allows
    with WEBHOOK_ALLOW_PRIVATE_TARGETS; the portal refuses it by default (issue 16,
    point 7). For the app in this process and the workers it starts (environment)."""
    before = app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    env_before = os.environ.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    try:
        yield
    finally:
        app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = before
        if env_before is None:
            os.environ.pop("WEBHOOK_ALLOW_PRIVATE_TARGETS", None)
        else:
            os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = env_before
