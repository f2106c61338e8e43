"""API keys: one account each, a name, a scope, stored only as a hash.

The plain key is shown once when it is made and never stored. Keys carry 256 random
bits, so a fast SHA-256 of the whole key is enough to look it up (nothing to
brute-force, unlike a password); the first characters are kept apart, in the clear,
so that people can tell their keys apart in the list."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.database import TenantOwned, UTCDateTime
from portal.extensions import db


class Scope(enum.StrEnum):
    READ = "read"  # reads only
    WRITE = "write"  # reads and writes


class ApiKey(TenantOwned, db.Model):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(8), default=Scope.READ.value)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in the list: "rpk_AbCd1234"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    account = relationship("Account")
    created_by = relationship("User", foreign_keys=[created_by_id])

    # how the audit log names this actor (see portal/support/service.py)
    audit_actor_type = "api_key"

    @property
    def audit_label(self) -> str:
        return f"API key “{self.name}” ({self.prefix}…)"

    @property
    def scope_enum(self) -> Scope:
        return Scope(self.scope)

    @property
    def can_write(self) -> bool:
        return self.scope == Scope.WRITE.value

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}>"
