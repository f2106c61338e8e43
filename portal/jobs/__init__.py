"""Queue wiring: RQ settings from the app config."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from portal.jobs.embedded import ensure_redis_url

QUEUES = ["high", "default", "low"]


def init_app(app: Flask) -> None:
    # portal.extensions builds its RQ object from portal.jobs.worker, which needs this
    # package: imported here, where the cycle is closed
    from portal.extensions import rq

    url = app.config["REDIS_URL"]
    if not url:
        url = ensure_redis_url(Path(app.config["INSTANCE_PATH"]))
        app.config["REDIS_URL"] = url
    app.config.setdefault("RQ_CONNECTION", url)
    app.config.setdefault("RQ_QUEUES", QUEUES)
    rq.init_app(app)
    # flask-rq has no setting for it: every queue of this app gets the portal's job timeout
    for queue in rq._queues[app].values():
        queue._default_timeout = app.config["JOB_TIMEOUT_SECONDS"]
    # the cron table (portal.jobs.cron) names every area's tasks: create_app registers it
    # after the areas, so that this package, which every area's tasks use, imports none
