"""Declarative base and column types shared by every area's models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, Select, select
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# 64-bit ids where a busy installation may pass two billion rows; SQLite needs INTEGER
# for its rowid alias (autoincrement), and its INTEGER is 64-bit anyway.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Stable constraint names so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back an aware UTC datetime, on SQLite too
    (which would otherwise return naive values and break comparisons)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use portal.clock.now()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


if TYPE_CHECKING:
    from portal.accounts.models import Account


class TenantOwned:
    """A row that belongs to one account (tenant). Every such table gets the same column
    (removing an account removes its rows), the same way to reach the account, and one
    way to ask for only one tenant's rows (owned_by), so that the rule "another tenant's
    id is a 404" is written once (tenancy.owned) instead of in every query."""

    @declared_attr
    def account_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))

    @declared_attr
    def account(cls) -> Mapped[Account]:
        return relationship("Account", foreign_keys=[cls.account_id])

    @classmethod
    def owned_by(cls, account: Account | int) -> Select:
        """SELECT of this table limited to one account's rows."""
        account_id = account if isinstance(account, int) else account.id
        return select(cls).where(cls.account_id == account_id)


# Tables whose ids leave the database: in URLs (cards, jobs, keys, downloads), the audit
# log, outgoing events and webhooks, and the API. Such an id must name one thing forever:
# SQLite without AUTOINCREMENT hands the id of the newest row out again once that row is
# deleted, so a bookmarked card, an audit entry or a webhook about a removed contact would
# later name another person. PostgreSQL's sequences never go back; SQLite gets
# AUTOINCREMENT (migration 0b7e3c9a1f24 rebuilt the existing tables).
IDS_LEAVE_THE_DATABASE = (
    "accounts",
    "users",
    "memberships",
    "invitations",
    "api_keys",
    "audit_events",
    "staff_accesses",
    "contacts",
    "groups",
    "tags",
    "custom_fields",
    "import_jobs",
    "import_undos",
    "backups",
    "backup_restores",
    "lifecycle_jobs",
    "provider_links",
    "tag_mappings",
    "integration_events",
    "sync_runs",
    "export_runs",
)

# Tables with an id of their own that never leaves the database (and high-volume ones,
# where AUTOINCREMENT's bookkeeping would cost every insert for nothing).
IDS_STAY_INSIDE = {
    "subscriptions": "a contact's membership in a group; the API names it by contact and group",
    "activities": "opens and clicks, shown on the card, never addressed by id",
    "import_row_problems": "lines of a failed-rows report, addressed by import and line",
    "signup_requests": "found by the hash of the mailed token, never by id",
    "suppressions": "found by the keyed hash of the address",
    "suppression_keys": "one row",
    "login_sessions": "found by the hash of the cookie's token",
    "stored_files": "files of the database store, found by area and key; a reader checks "
    "the key with every chunk, so a reused id never hands out another file's bytes",
}


def never_reuse_ids(metadata: MetaData) -> None:
    """Give every table of IDS_LEAVE_THE_DATABASE AUTOINCREMENT on SQLite (create_all
    in tests and the DDL a reviewer reads both come from here)."""
    for name in IDS_LEAVE_THE_DATABASE:
        metadata.tables[name].dialect_options["sqlite"]["autoincrement"] = True
