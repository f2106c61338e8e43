"""What stays of a forgotten contact: nothing but a keyed hash of the address,
so that imports, restores and the API can refuse it until the person signs up
again through a form."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.database import UTCDateTime
from portal.extensions import db


class Suppression(db.Model):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "email_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
