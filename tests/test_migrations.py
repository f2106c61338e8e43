"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys

from portal.config import ROOT


def _flask(args, env):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_migrations_apply_to_an_empty_database_and_match_the_models(tmp_path, redis_url):
    env = dict(
        os.environ,
        INSTANCE_PATH=str(tmp_path),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
        SECRET_KEY="x",
    )
    upgrade = _flask(["db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    check = _flask(["db", "check"], env)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "No new upgrade operations detected" in check.stdout + check.stderr
