"""The keys every benchmark process shares.

On PostgreSQL the portal starts only with SECRET_KEY and SUPPRESSION_KEY in the
environment (portal.config.check_shared_keys, issue 18 point 2). A benchmark puts fixed
ones there before it starts anything, so that its own app, its child processes and the
web servers or workers it starts all use the same keys; keys the caller set win."""

from __future__ import annotations

import os

BENCH_KEYS = {"SECRET_KEY": "bench", "SUPPRESSION_KEY": "be" * 32}


def use_bench_keys() -> None:
    for name, value in BENCH_KEYS.items():
        os.environ.setdefault(name, value)
