"""The one clock of the portal. Purge windows, retention and expiry read it, so
tests move time with time-machine instead of sleeping."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
