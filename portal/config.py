"""Settings come from the environment so that one code base runs in development,
tests, CI and production; every default is safe to run on a fresh machine."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_LOCALES = ("en", "de", "it", "nl", "pl")


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class StartRefused(ValueError):
    """A setting that must stop every process before it serves or works: the entry
    points (app.py, the launcher) turn it into one line on stderr and a non-zero exit
    code instead of a traceback (see refuse_start)."""


# gunicorn stops its master when a worker exits with this code ("App failed to load");
# any other code makes it start the worker again, forever. Flask and the launcher
# only need it non-zero.
START_REFUSED_EXIT = 4

SHARED_KEYS = ("SECRET_KEY", "SUPPRESSION_KEY")


def is_postgresql(database_url: str) -> bool:
    return database_url.startswith("postgresql")


def check_shared_keys(database_url: str, given: Mapping[str, str | None]) -> None:
    """On PostgreSQL the portal may run on several machines (web, workers, cron), and
    every one of them must sign sessions and hash forgotten addresses with the same
    keys: a key invented per node (kept in its instance folder) signs sessions no other
    node accepts and refuses every suppression check the others wrote. So there the keys
    come from the environment or the start stops; SQLite (one machine, `make run`) keeps
    generating them into the instance folder. `given` is the environment (and, for tests
    and benchmarks, create_app's overrides)."""
    if not is_postgresql(database_url):
        return
    missing = [name for name in SHARED_KEYS if not given.get(name)]
    if not missing:
        return
    files = {name: name.lower() for name in SHARED_KEYS}  # instance/secret_key, …
    kept = [
        f"{name} from {instance_path() / files[name]}"
        for name in missing
        if (instance_path() / files[name]).exists()
    ]
    hint = (
        f" (this node has been using {' and '.join(kept)}: set that value on every node)"
        if kept
        else " (SECRET_KEY: python -c 'import secrets; print(secrets.token_urlsafe(48))', "
        "SUPPRESSION_KEY: python -c 'import secrets; print(secrets.token_hex(32))')"
    )
    raise StartRefused(
        f"{' and '.join(missing)} not set: with DATABASE_URL on PostgreSQL every web, "
        f"worker and cron process needs the same SECRET_KEY and SUPPRESSION_KEY in its "
        f"environment{hint}; see docs/deploy.md"
    )


def refuse_start(exc: StartRefused) -> NoReturn:
    """One line on stderr and a non-zero exit, before anything is served or worked."""
    print(f"portal: refusing to start: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(START_REFUSED_EXIT)


def instance_path() -> Path:
    return Path(os.environ.get("INSTANCE_PATH", ROOT / "instance")).resolve()


def load_secret_key(instance: Path) -> str:
    """Use SECRET_KEY when given; otherwise keep a random key in instance/ so that
    sessions survive restarts and no secret ever lives in the repository."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


_SUPPRESSION_KEY = re.compile(r"^[0-9a-f]{64}(?::[0-9a-f]{64})*$")


def check_suppression_key(value: str) -> str:
    """64 hex digits (32 random bytes), or several joined by ':' after a re-keying
    (`flask portal rekey-suppressions`); anything else stops the start, because a wrong
    key would let every forgotten person back in."""
    value = value.strip().lower()
    if not _SUPPRESSION_KEY.match(value):
        raise ValueError(
            "SUPPRESSION_KEY must be 64 hex digits (python -c 'import secrets; "
            "print(secrets.token_hex(32))'), or a chain of them joined by ':'"
        )
    return value


def load_suppression_key(instance: Path, secret_key: str) -> str:
    """The key of the suppression list (the keyed hashes of forgotten addresses): from
    SUPPRESSION_KEY, else kept in instance/suppression_key. It must never follow
    SECRET_KEY: rotating the secret key would otherwise let every forgotten person back in
    through imports, restores and the API. Made once, on the first start, as the key the
    list had so far (derived from SECRET_KEY), so an existing list keeps working; from then
    on it is its own, and changes only through `flask portal rekey-suppressions`."""
    if key := os.environ.get("SUPPRESSION_KEY"):
        return check_suppression_key(key)
    path = instance / "suppression_key"
    if path.exists():
        return check_suppression_key(path.read_text())
    instance.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(b"suppression:" + secret_key.encode()).hexdigest()
    path.write_text(key)
    path.chmod(0o600)
    return key


def check_base_url(value: str) -> str:
    """BASE_URL is the only source of links in mails, so a typo must stop the start, not
    mail broken links: http(s), a host, no query or fragment."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"BASE_URL must look like https://portal.example.com, not {value!r}")
    return value.rstrip("/")


def check_file_store(value: str, bucket: str = "") -> str:
    """A typo must stop the start, not put backups somewhere nobody looks; so must the S3
    store without a bucket."""
    if value not in ("folder", "postgresql", "s3"):
        raise ValueError(f"FILE_STORE must be 'folder', 'postgresql' or 's3', not {value!r}")
    if value == "s3" and not bucket:
        raise ValueError("FILE_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL for a non-AWS server)")
    return value


def build_config(overrides: dict | None = None) -> dict:
    instance = instance_path()
    overrides = overrides or {}
    database_url = overrides.get("SQLALCHEMY_DATABASE_URI") or os.environ.get(
        "DATABASE_URL", f"sqlite:///{instance / 'portal.db'}"
    )
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    redis_url = overrides.get("REDIS_URL", os.environ.get("REDIS_URL", ""))
    check_shared_keys(
        database_url, {name: overrides.get(name) or os.environ.get(name) for name in SHARED_KEYS}
    )
    secret_key = overrides.get("SECRET_KEY") or load_secret_key(instance)
    config = {
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": secret_key,
        # the suppression list's own key (never SECRET_KEY's): see load_suppression_key
        "SUPPRESSION_KEY": check_suppression_key(
            overrides.get("SUPPRESSION_KEY") or load_suppression_key(instance, secret_key)
        ),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        # One `flask rq cron` enqueues, however many run (portal/jobs/scheduler.py): the
        # lease its holder renews; another takes over within a third of it after a crash.
        "CRON_LEASE_SECONDS": _int("CRON_LEASE_SECONDS", 150),
        **_file_settings(instance, database_url, overrides),
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_MB", 50) * 1024 * 1024,
        **_mail_settings(),
        **_cookie_settings(),
        # Rate limits (Flask-Limiter syntax).
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Languages and time.
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
        "SUPPORTED_LOCALES": SUPPORTED_LOCALES,
        "BOOTSTRAP_SERVE_LOCAL": True,
        "PASSWORD_RESET_MAX_AGE": _int("PASSWORD_RESET_MAX_AGE", 3600),
        "INVITATION_DAYS": _int("INVITATION_DAYS", 7),
        **_job_settings(),
    }
    config.update(overrides)
    config["BASE_URL"] = check_base_url(config["BASE_URL"])
    return config


def _file_settings(instance: Path, database_url: str, overrides: dict) -> dict:
    """Where the files of every area are kept (docs/deploy.md)."""
    return {
        "BACKUP_DIR": os.environ.get("BACKUP_DIR", str(instance / "backups")),
        # where backups are kept: "postgresql" (the portal's database, shared by every
        # node) or "folder" (BACKUP_DIR, one machine); docs/decisions/file-store.md
        "FILE_STORE": check_file_store(
            overrides.get("FILE_STORE")
            or os.environ.get("FILE_STORE")
            or ("postgresql" if database_url.startswith("postgresql") else "folder"),
            overrides.get("S3_BUCKET") or os.environ.get("S3_BUCKET", ""),
        ),
        # FILE_STORE=s3 (docs/deploy.md): the bucket, a prefix that keeps this
        # installation's objects apart, and the endpoint of an S3-compatible server (none
        # for AWS). Credentials are boto3's own: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
        "S3_BUCKET": os.environ.get("S3_BUCKET", ""),
        "S3_PREFIX": os.environ.get("S3_PREFIX", ""),
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL", ""),
        "S3_REGION": os.environ.get("S3_REGION", ""),
        "OUTBOX_DIR": os.environ.get("OUTBOX_DIR", str(instance / "outbox")),
    }


def _mail_settings() -> dict:
    """SMTP when MAIL_SERVER is set, otherwise the outbox folder."""
    return {
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _int("MAIL_PORT", 587),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", True),
        "MAIL_SENDER": os.environ.get("MAIL_SENDER", "Recipient portal <no-reply@localhost>"),
        "BASE_URL": os.environ.get("BASE_URL", "http://127.0.0.1:5000"),
    }


def _cookie_settings() -> dict:
    """Sessions, "stay signed in" and CSRF."""
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "PERMANENT_SESSION_LIFETIME": _int("SESSION_LIFETIME_HOURS", 12) * 3600,
        # "Stay signed in": the cookie and its server-side sign-in end after this many
        # days (the sign-in row's expiry is what counts; the cookie only carries it).
        "REMEMBER_DAYS": _int("REMEMBER_DAYS", 30),
        "REMEMBER_COOKIE_DURATION": _int("REMEMBER_DAYS", 30) * 24 * 3600,
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _job_settings() -> dict:
    """The workers' limits, the import engine, sign-up, webhooks and the support console."""
    return {
        "HEARTBEAT_SECONDS": _int("HEARTBEAT_SECONDS", 60),
        # RQ kills a job after this many seconds (its own default, 180 s, would cut a large
        # import or purge short); jobs are resumable, so a generous limit loses nothing.
        "JOB_TIMEOUT_SECONDS": _int("JOB_TIMEOUT_SECONDS", 6 * 3600),
        # Signing up through a public form: how long a confirmation link works.
        "SIGNUP_CONFIRM_DAYS": _int("SIGNUP_CONFIRM_DAYS", 7),
        "SIGNUP_RATE_LIMIT": os.environ.get("SIGNUP_RATE_LIMIT", "5 per minute;30 per hour"),
        # Import engine: rows per committed staging batch, staged rows per merge chunk.
        "IMPORT_BATCH_ROWS": _int("IMPORT_BATCH_ROWS", 5000),
        "IMPORT_CHUNK_ROWS": _int("IMPORT_CHUNK_ROWS", 20000),
        # PostgreSQL cancels an import statement, or ends an import transaction that sits
        # idle, after this many seconds: a stuck worker cannot block the one continuing.
        "IMPORT_STUCK_SECONDS": _int("IMPORT_STUCK_SECONDS", 300),
        # An uploaded file of an import that never finishes is removed after this many
        # days (a finished import's file at once); see docs/decisions/lifecycle.md.
        "UPLOAD_KEEP_DAYS": _int("UPLOAD_KEEP_DAYS", 7),
        # Webhooks to the linked provider go to public internet addresses only; an
        # on-premise installation may allow its own network (portal/integrations/targets.py).
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": _bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False),
        # Support console: how long a staff user's access to an opened account lasts.
        "STAFF_ACCESS_MINUTES": _int("STAFF_ACCESS_MINUTES", 60),
    }
