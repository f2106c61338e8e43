"""Contacts, groups, tags, subscriptions, custom fields and activities.

Sized for a million contacts per account: every list query is an indexed WHERE on
(account_id, ...) plus keyset pagination on contacts.id, see docs/decisions/contacts-*.md.

Contact.search_name / search_name_rev hold the folded names ("first last" and
"last first", lower-cased, accents removed) that the free search matches by prefix.
The ORM keeps them current (validators below); bulk writers build their rows with
contact_row() so that they are filled in too."""

from __future__ import annotations

import enum
import secrets
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal import clock
from portal.database import BigId, TenantOwned, UTCDateTime
from portal.extensions import db

# On PostgreSQL `LIKE 'prefix%'` uses a btree index only with the pattern operator
# class (the database collation is usually not "C").
_PATTERN = "varchar_pattern_ops"


class ContactStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"  # pending purge: shown red as "To be deleted", restorable


class FieldType(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


class OptoutReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"
    # what other tools' exports say (imports): blocked or blocklisted there, never
    # confirmed there (pending, unconfirmed, transactional), or signed off without a
    # reason or date in the file
    BLOCKED = "blocked"
    UNCONFIRMED = "unconfirmed"
    IMPORTED = "imported"


class ActivityKind(enum.StrEnum):
    OPEN = "open"
    CLICK = "click"
    BOUNCE = "bounce"


class Source(enum.StrEnum):
    """Who made a change. Every service that writes takes it as a required keyword: it
    goes into the audit log, and "ui" is the one source that takes an automatic backup
    before a change to a group — a default would make a forgotten argument take one."""

    UI = "ui"  # the portal's pages
    API = "api"  # the JSON API
    JOB = "job"  # a background job
    FORM = "form"  # a public sign-up form


SOURCES = tuple(s.value for s in Source)


def checked_source(source: Source | str) -> str:
    """The source, or ValueError for an unknown one (services record it in the audit log)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return str(source)


_FOLD_EXTRA = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"}
)


def fold(text: str | None) -> str:
    """Search key: case-folded, accents removed ("Jürgen Größ" -> "jurgen gross",
    "Łukasz" -> "lukasz"), whitespace collapsed. The same function folds the query."""
    if not text:
        return ""
    text = " ".join(text.split()).casefold().translate(_FOLD_EXTRA)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_columns(first_name: str | None, last_name: str | None) -> dict[str, str]:
    first, last = fold(first_name), fold(last_name)
    return {
        "search_name": f"{first} {last}".strip()[:400],
        "search_name_rev": f"{last} {first}".strip()[:400],
    }


def contact_row(
    account_id: int,
    email: str,
    first_name: str = "",
    last_name: str = "",
    *,
    fields: dict[str, Any] | None = None,
    status: str = ContactStatus.ACTIVE.value,
    deleted_at: datetime | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """A complete row for bulk inserts (the email must already be normalized)."""
    now = created_at or clock.now()
    return {
        "account_id": account_id,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "fields": fields or {},
        "status": status,
        "deleted_at": deleted_at,
        "created_at": now,
        "updated_at": now,
        **search_columns(first_name, last_name),
    }


def new_signup_token() -> str:
    return secrets.token_urlsafe(16)


contact_tags = Table(
    "contact_tags",
    db.metadata,
    Column("contact_id", BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # the tag filter walks a tag's contacts; the primary key serves the contact card
    Index("ix_contact_tags_tag_contact", "tag_id", "contact_id"),
)


class Group(TenantOwned, db.Model):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    automatic_backups: Mapped[bool] = mapped_column(Boolean, default=True)
    # the public sign-up form lives at /f/<signup_token>; a new token retires the old link
    signup_token: Mapped[str] = mapped_column(String(43), unique=True, default=new_signup_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __repr__(self) -> str:
        return f"<Group {self.id} {self.name!r}>"


class CustomField(TenantOwned, db.Model):
    """A custom field of an account; values live in Contact.fields under `key`."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16), default=FieldType.TEXT.value)
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def type_enum(self) -> FieldType:
        return FieldType(self.type)


class Tag(TenantOwned, db.Model):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __repr__(self) -> str:
        return f"<Tag {self.name!r}>"


# PostgreSQL only (migration c7e1f3a9b2d4; `ddl_if` keeps them out of SQLite, whose
# LIKE scans and whose imports should not pay for indexes they cannot use):
# - trigram indexes (pg_trgm, GIN) so that the list's search finds a part of the
#   address or name anywhere ("neu" finds bernd.neu02@...) without reading every row;
# - plain btree indexes in the database's collation for sorting the list by address
#   and name (the pattern-ops indexes above serve LIKE 'prefix%' but not ORDER BY).
PG_ONLY_INDEXES = tuple(
    index.ddl_if(dialect="postgresql")
    for index in (
        Index(
            "ix_contacts_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
        Index(
            "ix_contacts_search_name_trgm",
            "search_name",
            postgresql_using="gin",
            postgresql_ops={"search_name": "gin_trgm_ops"},
        ),
        Index("ix_contacts_account_email_sort", "account_id", "email", "id"),
        Index("ix_contacts_account_name_sort", "account_id", "search_name", "id"),
    )
)


class Contact(TenantOwned, db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        # Unique per account; on PostgreSQL the pattern opclass lets the same index
        # serve `email LIKE 'prefix%'`. ON CONFLICT (account_id, email) infers it.
        Index(
            "uq_contacts_account_email",
            "account_id",
            "email",
            unique=True,
            postgresql_ops={"email": _PATTERN},
        ),
        # the unfiltered list: newest first, keyset on id
        Index("ix_contacts_account_id_desc", "account_id", "id"),
        # status filter (active / to be deleted) with the same keyset
        Index("ix_contacts_account_status_id", "account_id", "status", "id"),
        # free search on names, by prefix of "first last" and of "last first"
        Index(
            "ix_contacts_account_search_name",
            "account_id",
            "search_name",
            postgresql_ops={"search_name": _PATTERN},
        ),
        Index(
            "ix_contacts_account_search_name_rev",
            "account_id",
            "search_name_rev",
            postgresql_ops={"search_name_rev": _PATTERN},
        ),
        *PG_ONLY_INDEXES,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ContactStatus.ACTIVE.value)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
    search_name: Mapped[str] = mapped_column(String(400), default="")
    search_name_rev: Mapped[str] = mapped_column(String(400), default="")

    tags: Mapped[list[Tag]] = relationship(
        secondary=contact_tags, order_by=Tag.name, passive_deletes=True
    )
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("first_name", "last_name")
    def _keep_search_columns(self, key: str, value: str | None) -> str:
        value = value or ""
        first = value if key == "first_name" else self.first_name
        last = value if key == "last_name" else self.last_name
        for column, folded in search_columns(first, last).items():
            setattr(self, column, folded)
        return value

    @property
    def is_deleted(self) -> bool:
        return self.status == ContactStatus.DELETED.value

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def __repr__(self) -> str:
        return f"<Contact {self.id}>"


class Subscription(TenantOwned, db.Model):
    """A contact in a group: the sign-up and sign-off data that backups and imports carry."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("contact_id", "group_id"),
        # group page / group filter: a group's contacts newest first (keyset on contact_id)
        Index("ix_subscriptions_group_contact", "group_id", "contact_id"),
        # active/inactive counts per group (index-only) and the status filter within a group
        Index("ix_subscriptions_group_active_contact", "group_id", "active", "contact_id"),
        # sign-up date range without a group
        Index("ix_subscriptions_account_activated", "account_id", "activated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    optout_reason: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="ui")
    # double opt-in proof of a sign-up through the public form (activated_at is the sign-up)
    signup_ip: Mapped[str | None] = mapped_column(String(45))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_ip: Mapped[str | None] = mapped_column(String(45))

    contact: Mapped[Contact] = relationship(back_populates="subscriptions")
    group: Mapped[Group] = relationship()


class Activity(TenantOwned, db.Model):
    """An open, click or bounce of a contact. Never part of a backup."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_contact_occurred", "contact_id", "occurred_at"),
        # deleting a group sets group_id to NULL here; without an index that is a full scan
        Index("ix_activities_group_id", "group_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    detail: Mapped[str] = mapped_column(String(500), default="")

    group: Mapped[Group | None] = relationship()


# create_all (tests) on PostgreSQL needs the extension before the trigram indexes; the
# migration creates it the same way.
event.listen(
    Contact.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
