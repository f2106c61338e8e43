"""The support console's operations: opening an account for a stated reason, finding
accounts and contacts across accounts, and the staff actions on an opened account.

Staff are never members of customer accounts. They reach an account only through a
StaffAccess row: a reason (ticket number or free text), a start and an end
(STAFF_ACCESS_MINUTES, 60 by default). Every opening, every page of account data a
staff user reads and every staff action is an audit event on that account, with the
staff user as actor (actor_type "staff"); the account's members see them on their
settings page. The changes themselves go through the owning areas' services
(lifecycle.service.undelete_contacts, backups.restore.request_restore,
backups.undo.request_undo), so a staff restore is the same restore a customer makes.

A lookup by email tells staff, per account, whether the address is a contact there,
its status and when it will be purged, or that it was forgotten — nothing else of a
forgotten person, and the audit log never keeps the address (only contact ids)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import clock
from portal.accounts.models import Account
from portal.backups import undo as backup_undo
from portal.backups.restore import request_restore
from portal.contacts.models import Contact, ContactStatus, Group, Subscription, fold
from portal.core import audit, privacy
from portal.core.audit import AuditEvent, StaffAccess
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression, normalize_email
from portal.extensions import db
from portal.lifecycle import mass
from portal.lifecycle import service as lifecycle
from portal.lifecycle.models import LifecycleAction, LifecycleJob

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.backups.models import Backup, BackupRestore, ImportUndo
    from portal.imports.models import ImportJob

SOURCE = "support"  # the `source` of changes made from the console
ACCOUNT_RESULTS = 50
PAGE_SIZE = 100  # contacts "to be deleted" per page
AUDIT_PAGE_SIZE = 50
INLINE_RESTORE_LIMIT = 1000  # "restore all" up to this many at once, more by a job
REASON_MAX = 500

# Pages of an opened account; each view is recorded as "support.viewed" with its key.
PAGES = ("overview", "deleted", "backups", "imports", "audit")


class AccessRefused(ServiceError):
    """No reason given, or a user who is not staff."""


# --- access -----------------------------------------------------------------------------


def access_minutes() -> int:
    return int(current_app.config.get("STAFF_ACCESS_MINUTES", 60))


def open_access(
    staff: User, account: Account, reason: str, *, ip: str | None = None
) -> StaffAccess:
    """Open the account for `staff` for STAFF_ACCESS_MINUTES; an access still open for
    the same account is closed first (one reason at a time). Flushes; the view commits."""
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not getattr(staff, "is_staff", False):
        raise AccessRefused("only support staff may open an account")
    if not reason:
        raise AccessRefused(_l("Please state the reason (a ticket number or a few words)."))
    now = clock.now()
    previous = current_access(staff, account, now)
    if previous is not None:
        previous.ended_at = now
    minutes = access_minutes()
    access = StaffAccess(
        user_id=staff.id,
        staff_label=staff.email,
        account_id=account.id,
        reason=reason,
        ip=ip,
        started_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    db.session.add(access)
    db.session.flush()
    audit.record(
        "support.access_opened",
        account=account,
        actor=staff,
        object_type="staff_access",
        object_id=access.id,
        details={
            "reason": reason,
            "minutes": minutes,
            "until": access.expires_at.isoformat(),
        },
        ip=ip,
    )
    return access


def current_access(
    staff: User, account: Account, now: datetime | None = None
) -> StaffAccess | None:
    """The staff user's open access to the account, or None (never opened, expired or
    closed)."""
    now = now or clock.now()
    return db.session.scalar(
        select(StaffAccess)
        .where(
            StaffAccess.user_id == staff.id,
            StaffAccess.account_id == account.id,
            StaffAccess.ended_at.is_(None),
            StaffAccess.expires_at > now,
        )
        .order_by(StaffAccess.expires_at.desc())
        .limit(1)
    )


def latest_access(staff: User, account: Account) -> StaffAccess | None:
    """The staff user's last access to the account, open or not (for "it has expired")."""
    return db.session.scalar(
        select(StaffAccess)
        .where(StaffAccess.user_id == staff.id, StaffAccess.account_id == account.id)
        .order_by(StaffAccess.started_at.desc(), StaffAccess.id.desc())
        .limit(1)
    )


def open_accesses(staff: User, now: datetime | None = None) -> list[tuple[StaffAccess, Account]]:
    """The accounts the staff user has open right now, for the console's start page."""
    now = now or clock.now()
    return [
        (access, account)
        for access, account in db.session.execute(
            select(StaffAccess, Account)
            .join(Account, Account.id == StaffAccess.account_id)
            .where(
                StaffAccess.user_id == staff.id,
                StaffAccess.ended_at.is_(None),
                StaffAccess.expires_at > now,
            )
            .order_by(StaffAccess.expires_at)
        )
    ]


def close_access(access: StaffAccess, *, staff: User, ip: str | None = None) -> None:
    """The staff user is done before the time is up."""
    access.ended_at = clock.now()
    audit.record(
        "support.access_closed",
        account=access.account,
        actor=staff,
        object_type="staff_access",
        object_id=access.id,
        details={"reason": access.reason},
        ip=ip,
    )
    db.session.flush()


def record_view(
    access: StaffAccess, page: str, *, staff: User, ip: str | None = None, **details: Any
) -> None:
    """A staff user read a page of the account's data: an audit event on the account."""
    audit.record(
        "support.viewed",
        account=access.account,
        actor=staff,
        object_type="staff_access",
        object_id=access.id,
        details={"page": page, "reason": access.reason, **details},
        ip=ip,
    )


# --- search -----------------------------------------------------------------------------


def search_accounts(query: str, limit: int = ACCOUNT_RESULTS) -> list[Account]:
    """Accounts whose name or address (slug) contains the text, ignoring case and
    accents ("lodz" finds "Łódź"), on every database alike. The text is taken
    literally. Matched in Python over (id, name, slug): one narrow read of a table
    that holds one row per customer, a few milliseconds for thousands of accounts."""
    wanted = fold(query)
    if not wanted:
        return []
    rows = db.session.execute(
        select(Account.id, Account.name, Account.slug).order_by(Account.id)
    ).all()
    hits = [
        (fold(name), account_id)
        for account_id, name, slug in rows
        if wanted in fold(name) or wanted in slug.lower()
    ]
    hits.sort()
    ids = [account_id for _name, account_id in hits[:limit]]
    if not ids:
        return []
    by_id = {a.id: a for a in db.session.scalars(select(Account).where(Account.id.in_(ids)))}
    return [by_id[i] for i in ids]


@dataclass
class AddressMatch:
    """What staff learn about an address in one account. A forgotten address has only
    `forgotten` set: no id, no status, no dates."""

    account: Account
    contact_id: int | None = None
    status: str | None = None
    deleted_at: datetime | None = None
    purge: tuple[datetime, datetime] | None = None
    forgotten: bool = False


def _probe_accounts(model, condition) -> dict[int, int]:
    """account id -> id of the row of `model` (a table with a unique index leading with
    account_id) that meets `condition`, for every account that has one.

    A correlated subquery per account, so that both PostgreSQL and SQLite probe the
    (account_id, ...) index once per account; a plain join on the address alone makes
    both scan the whole table (measured: docs/decisions/support-console.md)."""
    probe = (
        select(model.id).where(model.account_id == Account.id, condition).limit(1).scalar_subquery()
    )
    inner = select(Account.id.label("account_id"), probe.label("row_id")).subquery()
    rows = db.session.execute(
        select(inner.c.account_id, inner.c.row_id).where(inner.c.row_id.isnot(None))
    )
    return {account_id: row_id for account_id, row_id in rows}


def _accounts_by_id(found: dict[int, int]) -> dict[int, Account]:
    if not found:
        return {}
    return {a.id: a for a in db.session.scalars(select(Account).where(Account.id.in_(list(found))))}


def lookup_email(
    staff: User, email: str, reason: str, *, ip: str | None = None
) -> tuple[str, list[AddressMatch]]:
    """Every account that has the address as a contact or has forgotten it. Records
    one audit event on each account found (the contact's id, never the address).

    Both lookups probe the per-account unique indexes (contacts (account_id, email),
    suppressions (account_id, email_hash)) once per account; the suppression hash is
    the same in every account (one key for the installation)."""
    normalized = normalize_email(email)  # raises ServiceError on a bad address
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise AccessRefused(_l("Please state the reason (a ticket number or a few words)."))
    matches: dict[int, AddressMatch] = {}
    contact_ids = _probe_accounts(Contact, Contact.email == normalized)
    if contact_ids:
        accounts = _accounts_by_id(contact_ids)
        for contact in db.session.scalars(
            select(Contact).where(Contact.id.in_(list(contact_ids.values())))
        ):
            account = accounts[contact.account_id]
            matches[account.id] = AddressMatch(
                account=account,
                contact_id=contact.id,
                status=contact.status,
                deleted_at=contact.deleted_at,
                purge=lifecycle.purge_time(contact, account),
            )
    hashed = privacy.email_hash(normalized)
    suppressed = _probe_accounts(Suppression, Suppression.email_hash == hashed)
    for account_id, account in _accounts_by_id(suppressed).items():
        # Normally a forgotten address has no contact; if the person signed up again
        # (which lifts the entry) both facts would be true, and both are shown.
        match = matches.setdefault(account_id, AddressMatch(account=account))
        match.forgotten = True
    for match in matches.values():
        audit.record(
            "support.contact_looked_up",
            account=match.account,
            actor=staff,
            object_type="contact" if match.contact_id else None,
            object_id=match.contact_id,
            details={"reason": reason, "forgotten": match.forgotten},
            ip=ip,
        )
    ordered = sorted(matches.values(), key=lambda m: (m.account.name.lower(), m.account.id))
    return normalized, ordered


# --- an opened account ------------------------------------------------------------------


def account_counts(account: Account) -> dict[str, int]:
    def count(statement) -> int:
        return db.session.scalar(statement) or 0

    return {
        "contacts": count(
            select(func.count(Contact.id)).where(
                Contact.account_id == account.id, Contact.status == ContactStatus.ACTIVE.value
            )
        ),
        "deleted": count_pending(account),
        "groups": count(select(func.count(Group.id)).where(Group.account_id == account.id)),
    }


def count_pending(account: Account) -> int:
    return (
        db.session.scalar(
            select(func.count(Contact.id)).where(
                Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value
            )
        )
        or 0
    )


def pending_deletion(
    account: Account, *, before: int | None = None, limit: int = PAGE_SIZE
) -> list[Contact]:
    """The account's contacts "to be deleted", newest id first, keyset-paged."""
    query = select(Contact).where(
        Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value
    )
    if before is not None:
        query = query.where(Contact.id < before)
    return list(db.session.scalars(query.order_by(Contact.id.desc()).limit(limit)))


def groups_by_contact(account: Account, ids: list[int]) -> dict[int, list[tuple[str, bool]]]:
    """Group names (and whether the subscription is active) of the listed contacts."""
    found: dict[int, list[tuple[str, bool]]] = {}
    if not ids:
        return found
    rows = db.session.execute(
        select(Subscription.contact_id, Group.name, Subscription.active)
        .join(Group, Group.id == Subscription.group_id)
        .where(Subscription.account_id == account.id, Subscription.contact_id.in_(ids))
        .order_by(Group.name)
    )
    for contact_id, name, active in rows:
        found.setdefault(contact_id, []).append((name, bool(active)))
    return found


def undelete_selected(
    access: StaffAccess, ids: list[int], *, staff: User, ip: str | None = None
) -> int:
    """Restore ticked contacts "to be deleted" of the opened account (ids of other
    accounts are ignored by the lifecycle service); returns how many came back."""
    account = access.account
    return lifecycle.undelete_contacts(
        account, ids[:INLINE_RESTORE_LIMIT], actor=staff, source=SOURCE, ip=ip
    )


def undelete_all(
    access: StaffAccess, *, staff: User, ip: str | None = None
) -> tuple[int, LifecycleJob | None]:
    """Every contact "to be deleted" right now: at once when there are few, otherwise
    as a mass-action job over exactly these ids (a contact the customer deletes a
    moment later is not brought back). Returns (restored now, job or None); the caller
    commits, and enqueues the job (lifecycle.tasks.enqueue)."""

    account = access.account
    ids = list(
        db.session.scalars(
            select(Contact.id).where(
                Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value
            )
        )
    )
    if len(ids) <= INLINE_RESTORE_LIMIT:
        return lifecycle.undelete_contacts(account, ids, actor=staff, source=SOURCE, ip=ip), None
    job = mass.draft_for_ids(
        account, LifecycleAction.RESTORE, ids, actor=staff, source=SOURCE, ip=ip
    )
    mass.confirm(job)
    return 0, job


def undelete_jobs(account: Account, limit: int = 5) -> list[LifecycleJob]:
    """The console's own restore jobs on the account, newest first."""
    return list(
        db.session.scalars(
            select(LifecycleJob)
            .where(LifecycleJob.account_id == account.id, LifecycleJob.source == SOURCE)
            .order_by(LifecycleJob.id.desc())
            .limit(limit)
        )
    )


def restore_backup(
    access: StaffAccess,
    backup: Backup,
    *,
    mode: str,
    expected: dict[str, int],
    staff: User,
    ip: str | None = None,
) -> BackupRestore:
    """The customer's confirmed restore, made by staff (the worker records
    "backup.restored" with the staff user as actor when it is done). The request is
    recorded here, so that a refused or failed restore still shows who asked for it. The
    caller enqueues it."""
    restore = request_restore(backup, mode=mode, expected=expected, actor=staff)
    audit.record(
        "support.backup_restore_requested",
        account=access.account,
        actor=staff,
        object_type="backup",
        object_id=backup.id,
        details={"group": backup.group_name, "mode": mode, "reason": access.reason},
        ip=ip,
    )
    return restore


def request_undo(
    access: StaffAccess, job: ImportJob, *, staff: User, ip: str | None = None
) -> ImportUndo:
    """Ask for the undo of an import (backups.undo refuses with a reason when it
    cannot be undone). The undo itself is recorded when the worker finishes it; the
    request is recorded here, so that a failed undo still shows who asked for it."""
    undo = backup_undo.request_undo(job, actor=staff, ip=ip)
    audit.record(
        "support.import_undo_requested",
        account=access.account,
        actor=staff,
        object_type="import",
        object_id=job.id,
        details={"group": job.group_name, "reason": access.reason},
        ip=ip,
    )
    return undo


def audit_log(
    account: Account, *, before: int | None = None, limit: int = AUDIT_PAGE_SIZE
) -> list[AuditEvent]:
    """The account's audit log, newest first, keyset-paged on the id."""
    query = select(AuditEvent).where(AuditEvent.account_id == account.id)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def staff_activity(account: Account, limit: int = 30) -> list[AuditEvent]:
    """What support staff did in the account, newest first: the excerpt on the settings
    page (the whole log: staff_log)."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id, AuditEvent.actor_type == "staff")
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


STAFF_LOG_PAGE_SIZE = 50


def _staff_events(account: Account, *, staff: str | None, action: str | None):
    query = select(AuditEvent).where(
        AuditEvent.account_id == account.id, AuditEvent.actor_type == "staff"
    )
    if staff:
        query = query.where(AuditEvent.actor_label == staff)
    if action:
        query = query.where(AuditEvent.action == action)
    return query


def staff_log(
    account: Account,
    *,
    staff: str | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int | None = STAFF_LOG_PAGE_SIZE,
) -> list[AuditEvent]:
    """Everything support staff did in the account, newest first, keyset-paged on the id
    (issue 16, point 6: the excerpt of 30 let 31 page views push a contact look-up out of
    sight). `staff` is a staff member's address as recorded, `action` an audit action;
    `limit=None` gives every entry (the CSV download)."""
    query = _staff_events(account, staff=staff, action=action)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    query = query.order_by(AuditEvent.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def iter_staff_log(
    account: Account, *, staff: str | None = None, action: str | None = None, batch: int = 1000
) -> Iterator[AuditEvent]:
    """The whole filtered log, newest first, read in batches (for the CSV download)."""
    before = None
    while True:
        events = staff_log(account, staff=staff, action=action, before=before, limit=batch)
        yield from events
        if len(events) < batch:
            return
        before = events[-1].id


def staff_log_choices(account: Account) -> tuple[list[str], list[str]]:
    """The staff members and actions that occur in the account's staff log, for the
    filters (sorted)."""
    base = select(AuditEvent).where(
        AuditEvent.account_id == account.id, AuditEvent.actor_type == "staff"
    )
    members = db.session.scalars(
        base.with_only_columns(AuditEvent.actor_label).distinct().order_by(AuditEvent.actor_label)
    )
    actions = db.session.scalars(
        base.with_only_columns(AuditEvent.action).distinct().order_by(AuditEvent.action)
    )
    return [m for m in members if m], list(actions)
