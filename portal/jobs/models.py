"""What the queue side leaves in the database for pages and health checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.database import UTCDateTime
from portal.extensions import db


class Heartbeat(db.Model):
    """One row per named beat (e.g. 'cron'), updated in place by the heartbeat job."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    beats: Mapped[int] = mapped_column(default=0)
