"""Read by gunicorn when it starts in the checkout (`gunicorn app:app`, docs/deploy.md).

Only one thing here: the master refuses to start, with one line and exit code 4, when
the shared keys are missing on PostgreSQL (portal.config.check_shared_keys) — before it
binds its port and forks workers that would each print the same line (app.py stops a
worker the same way when gunicorn runs without this file)."""

import os

from portal.config import StartRefused, check_shared_keys, refuse_start


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    try:
        check_shared_keys(os.environ.get("DATABASE_URL", ""), os.environ)
    except StartRefused as exc:
        refuse_start(exc)
