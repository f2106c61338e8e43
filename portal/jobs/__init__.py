"""Queue wiring: RQ settings from the app config, and the cron table."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

QUEUES = ["high", "default", "low"]


def init_app(app: Flask) -> None:
    from portal.extensions import rq

    url = app.config["REDIS_URL"]
    if not url:
        from portal.jobs.embedded import ensure_redis_url

        url = ensure_redis_url(Path(app.config["INSTANCE_PATH"]))
        app.config["REDIS_URL"] = url
    app.config.setdefault("RQ_CONNECTION", url)
    app.config.setdefault("RQ_QUEUES", QUEUES)
    rq.init_app(app)
    # flask-rq has no setting for it: every queue of this app gets the portal's job timeout
    for queue in rq._queues[app].values():
        queue._default_timeout = app.config["JOB_TIMEOUT_SECONDS"]

    from portal.jobs import cron

    cron.register_all()
