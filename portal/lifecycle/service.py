"""Deleting, restoring, purging and forgetting contacts — the one service every path uses.

Two ways to delete, as the seed article (SALESmanago) describes them:

- **Delete** is soft: the contact gets the status "to be deleted" (shown red), leaves the
  active counts and exports, and can be restored until the nightly purge removes it for
  good between 02:00 and 04:00 in the account's timezone.
- **Forget me** is immediate and irreversible: the contact, its subscriptions, tag links,
  activities, staged import rows, pending sign-ups and every failed-rows line holding its
  address are erased. A keyed hash of the address stays on the suppression list, so no
  import, backup restore or API call can bring the person back; only their own sign-up
  through a form (with double opt-in) lifts it. The audit log keeps an erasure receipt:
  who, when, from which IP, how many records — never the address or the names.

Restores from every path (the card, a bulk action, mass management, an API upsert, the
sign-up form, the support console) go through undelete_contacts(); imports restore
set-based inside their merge with the same statement shape and report it in their
counters. Every function takes explicit arguments, flushes, and leaves the commit to the
caller (a job commits once per batch)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update

from portal import clock, events
from portal.accounts.models import Account
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.models import Activity, Contact, ContactStatus, Subscription, contact_tags
from portal.contacts.service import ContactForgotten
from portal.core import audit, privacy
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression, normalize_email
from portal.extensions import db
from portal.imports.models import ImportJob, ImportRow, ImportRowProblem
from portal.lifecycle import traces
from portal.lifecycle.models import SignupRequest

if TYPE_CHECKING:
    from portal.accounts.models import User

__all__ = [
    "ContactForgotten",
    "ErasureReceipt",
    "delete_contacts",
    "undelete_contacts",
    "forget_contact",
    "forget_emails",
    "is_forgotten",
    "lift_suppression",
    "purge_due",
    "purge_account",
    "purge_window",
]

BATCH = 1000  # ids per statement: well below SQLite's and psycopg's parameter limits
PURGE_BATCH = 5000
PURGE_FROM = time(2, 0)  # the nightly purge window, in the account's timezone
PURGE_UNTIL = time(4, 0)


def _chunks(items: Sequence, size: int = BATCH) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ids(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids}, reverse=True)


def _audit_ids(action: str, account: Account, ids: list[int], count: int, **kw) -> None:
    """One event per call: the contact's id when it is one, otherwise the count."""
    details: dict[str, Any] = {"count": count, "source": kw.pop("source")}
    audit.record(
        action,
        account=account,
        object_type="contact",
        object_id=ids[0] if len(ids) == 1 else None,
        details=details,
        **kw,
    )


# --- soft delete and restore ------------------------------------------------------------


@dataclass(frozen=True)
class _Move:
    """One status change of the soft delete: from which status to which, what it sets,
    and how it is told (event, audit action)."""

    source_status: str
    target_status: str
    deleted: bool  # deleted_at = now (True) or cleared (False)
    event: str
    action: str


_DELETE = _Move(
    ContactStatus.ACTIVE.value,
    ContactStatus.DELETED.value,
    True,
    events.CONTACT_DELETED,
    "contacts.deleted",
)
_RESTORE = _Move(
    ContactStatus.DELETED.value,
    ContactStatus.ACTIVE.value,
    False,
    events.CONTACT_RESTORED,
    "contacts.restored",
)


def _move(account: Account, ids: Iterable[int], move: _Move, **kw) -> int:
    record = kw.pop("record")
    ids = _ids(ids)
    now = clock.now()
    changed = 0
    for chunk in _chunks(ids):
        result = db.session.execute(
            update(Contact)
            .where(
                Contact.account_id == account.id,
                Contact.id.in_(chunk),
                Contact.status == move.source_status,
            )
            .values(
                status=move.target_status,
                deleted_at=now if move.deleted else None,
                updated_at=now,
            )
            .returning(Contact.id)
            .execution_options(synchronize_session="fetch")
        )
        done = list(result.scalars())
        changed += len(done)
        events.emit(account.id, move.event, done, source=kw["source"])
    if changed and record:
        _audit_ids(move.action, account, ids, changed, **kw)
    db.session.flush()
    return changed


def delete_contacts(
    account: Account,
    ids: Iterable[int],
    *,
    actor: User | None,
    source: str,
    ip: str | None = None,
    record: bool = True,
) -> int:
    """Mark the account's active contacts among `ids` "to be deleted"; returns how many
    were newly marked. Ids of other accounts and contacts already marked are left alone."""
    return _move(account, ids, _DELETE, actor=actor, source=source, ip=ip, record=record)


def undelete_contacts(
    account: Account,
    ids: Iterable[int],
    *,
    actor: User | None,
    source: str,
    ip: str | None = None,
    record: bool = True,
) -> int:
    """Bring contacts "to be deleted" back (before the purge removed them), with their
    groups, tags and sign-up/sign-off data untouched; returns how many came back."""
    return _move(account, ids, _RESTORE, actor=actor, source=source, ip=ip, record=record)


@dataclass
class Upserted:
    contact: Contact
    created: bool = False
    restored: bool = False
    changed: list[str] = field(default_factory=list)  # names of the changed values


def upsert_contact(
    account: Account,
    email: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    fields: dict[str, Any] | None = None,
    fill_only: bool = False,
    actor: User | None,
    source: str,
    ip: str | None = None,
) -> Upserted:
    """Find by address → create, or restore one "to be deleted" → update: the one way an
    address comes in one at a time (the API's upsert, a confirmed sign-up), so that both
    treat a deleted or a forgotten person the same. `fill_only` sets only names that are
    empty (a sign-up form must not overwrite what the customer keeps). A forgotten
    address is refused by create_contact (ContactForgotten)."""
    contact = queries.find_contact(account, email)
    if contact is None:
        contact = contacts.create_contact(
            account,
            email,
            first_name=first_name or "",
            last_name=last_name or "",
            fields=fields,
            actor=actor,
            source=source,
        )
        return Upserted(contact, created=True)
    result = Upserted(contact)
    if contact.is_deleted:
        result.restored = bool(
            undelete_contacts(account, [contact.id], actor=actor, source=source, ip=ip)
        )
        db.session.refresh(contact)
    names = {"first_name": first_name, "last_name": last_name}
    if fill_only:
        names = {k: v for k, v in names.items() if v and not getattr(contact, k)}
    result.changed = contacts.update_contact(
        contact, actor=actor, source=source, ip=ip, fields=fields, **names
    )
    return result


def ids_for_emails(account: Account, emails: Sequence[str]) -> dict[str, int]:
    """Normalized address -> contact id, for the account's contacts among `emails`."""
    found: dict[str, int] = {}
    for chunk in _chunks(list(emails)):
        for email, contact_id in db.session.execute(
            select(Contact.email, Contact.id).where(
                Contact.account_id == account.id, Contact.email.in_(chunk)
            )
        ):
            found[email] = contact_id
    return found


# --- the nightly purge ----------------------------------------------------------------


def purge_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The night's window in UTC: from 02:00 to 04:00 local time on `day`. On the night
    clocks go forward, 02:00 does not exist and the window starts at the jump (03:00
    summer time); on the night they go back it starts at the first 02:00."""
    start = datetime.combine(day, PURGE_FROM, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day, PURGE_UNTIL, tzinfo=tz).astimezone(UTC)
    return start, end


def current_window_start(now: datetime, tz: ZoneInfo) -> datetime | None:
    """The start of the window `now` falls in, or None outside the window."""
    start, end = purge_window(now.astimezone(tz).date(), tz)
    return start if start <= now < end else None


def purge_time(
    contact: Contact, account: Account, now: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """When the nightly purge will remove a contact "to be deleted": the first window
    that begins after it was deleted (it is removed at the first run inside it) and has
    not ended yet — a window already past is no promise (the purge did not run, the
    next one will)."""
    if not contact.is_deleted or contact.deleted_at is None:
        return None
    now = now or clock.now()
    tz = ZoneInfo(account.timezone)
    day = max(contact.deleted_at, now).astimezone(tz).date() - timedelta(days=1)
    for offset in range(4):
        start, end = purge_window(day + timedelta(days=offset), tz)
        if start > contact.deleted_at and end > now:
            return start, end
    raise AssertionError("a purge window starts within three days")  # pragma: no cover


@dataclass(frozen=True)
class PurgeOutlook:
    """What the next nightly purge will remove: `count` contacts "to be deleted", in
    the window from `start` to `end` (UTC; the current window while it runs)."""

    count: int
    start: datetime
    end: datetime


def next_purge(account: Account, now: datetime | None = None) -> PurgeOutlook:
    """The next window that has not ended, and how many of the account's contacts it
    will remove: those deleted before it begins (purge_account's rule). The pending
    deletions are few (purged nightly) and found through (account_id, status)."""
    now = now or clock.now()
    tz = ZoneInfo(account.timezone)
    today = now.astimezone(tz).date()
    start, end = purge_window(today, tz)
    if end <= now:
        start, end = purge_window(today + timedelta(days=1), tz)
    count = db.session.scalar(
        select(func.count())
        .select_from(Contact)
        .where(
            Contact.account_id == account.id,
            Contact.status == ContactStatus.DELETED.value,
            Contact.deleted_at < start,
        )
    )
    return PurgeOutlook(count=count or 0, start=start, end=end)


def purge_account(
    account: Account, now: datetime | None = None, *, batch: int = PURGE_BATCH
) -> int:
    """Remove for good the account's contacts that were "to be deleted" before tonight's
    window began — only while the account's local time is inside the window. Batches of
    `batch` contacts, each committed; subscriptions, tag links and activities go with
    them (ON DELETE CASCADE, in the same statement). Safe to run twice, or beside a
    restore: a contact restored in the meantime no longer matches."""
    now = now or clock.now()
    start = current_window_start(now, ZoneInfo(account.timezone))
    if start is None:
        return 0
    purged = 0
    entry = None
    while True:
        ids = list(
            db.session.scalars(
                select(Contact.id)
                .where(
                    Contact.account_id == account.id,
                    Contact.status == ContactStatus.DELETED.value,
                    Contact.deleted_at < start,
                )
                .order_by(Contact.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        result = db.session.execute(
            delete(Contact)
            .where(
                Contact.account_id == account.id,
                Contact.id.in_(ids),
                Contact.status == ContactStatus.DELETED.value,
                Contact.deleted_at < start,
            )
            .returning(Contact.id)
            .execution_options(synchronize_session=False)
        )
        gone = list(result.scalars())
        purged += len(gone)
        events.emit(account.id, events.CONTACT_PURGED, gone, source="job")
        if gone:
            entry = _count_purged(account, start, len(gone), entry)
        db.session.commit()
        if len(ids) < batch:
            break
    return purged


def _count_purged(
    account: Account, start: datetime, count: int, entry: AuditEvent | None
) -> AuditEvent:
    """One audit entry per account and night, counted up in the transaction of every
    batch: a purge killed half-way and finished by the next hourly run still tells the
    owner how many contacts the night removed (found by the crash drills)."""
    before = start.isoformat()
    if entry is None:
        entry = db.session.scalar(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id, AuditEvent.action == "contacts.purged")
            .order_by(AuditEvent.id.desc())
            .limit(1)
            .with_for_update()
        )
        if entry is not None and (entry.details or {}).get("before") != before:
            entry = None
    if entry is None:
        return audit.record(
            "contacts.purged", account=account, details={"count": count, "before": before}
        )
    entry.details = {**entry.details, "count": int(entry.details.get("count", 0)) + count}
    return entry


def purge_due(now: datetime | None = None) -> int:
    """The hourly cron job: every account whose local time is 02:00–04:00 is purged."""
    now = now or clock.now()
    total = 0
    accounts = list(db.session.scalars(select(Account).order_by(Account.id)))
    for account in accounts:
        if current_window_start(now, ZoneInfo(account.timezone)) is not None:
            total += purge_account(account, now)
    return total


# --- forget me -----------------------------------------------------------------------


@dataclass
class ErasureReceipt:
    """How many records an erasure removed: what the audit log keeps instead of the data."""

    addresses: int = 0  # addresses asked to be forgotten
    contacts: int = 0
    subscriptions: int = 0
    tag_links: int = 0
    activities: int = 0
    failed_rows: int = 0  # lines of failed-rows reports of imports
    staged_rows: int = 0  # rows of an import still in staging
    signup_requests: int = 0  # unconfirmed sign-ups through a form
    newly_suppressed: int = 0
    files: int = 0  # export files, uploaded lists and outbox mails removed (traces.py)
    lists: int = 0  # mass-management lists and import check steps redacted (traces.py)

    def add(self, other: ErasureReceipt) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def records(self) -> int:
        return (
            self.contacts
            + self.subscriptions
            + self.tag_links
            + self.activities
            + self.failed_rows
            + self.staged_rows
            + self.signup_requests
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def is_forgotten(account: Account, email: str) -> bool:
    try:
        normalized = normalize_email(email)
    except ServiceError:
        return False
    return privacy.is_suppressed(account.id, normalized)


def _count(statement) -> int:
    return db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0


def _suppress(account: Account, emails: Sequence[str]) -> int:
    hash_of = privacy.hasher()
    wanted = {hash_of(email) for email in emails}
    existing: set[str] = set()
    for chunk in _chunks(sorted(wanted)):
        existing.update(
            db.session.scalars(
                select(Suppression.email_hash).where(
                    Suppression.account_id == account.id, Suppression.email_hash.in_(chunk)
                )
            )
        )
    new = sorted(wanted - existing)
    if new:
        now = clock.now()
        db.session.execute(
            Suppression.__table__.insert(),
            [{"account_id": account.id, "email_hash": h, "created_at": now} for h in new],
        )
    return len(new)


def _erase_contacts(receipt: ErasureReceipt, ids: Sequence[int]) -> None:
    for chunk in _chunks(list(ids)):
        receipt.activities += db.session.execute(
            delete(Activity).where(Activity.contact_id.in_(chunk))
        ).rowcount
        receipt.tag_links += db.session.execute(
            delete(contact_tags).where(contact_tags.c.contact_id.in_(chunk))
        ).rowcount
        receipt.subscriptions += db.session.execute(
            delete(Subscription).where(Subscription.contact_id.in_(chunk))
        ).rowcount
        receipt.contacts += db.session.execute(
            delete(Contact)
            .where(Contact.id.in_(chunk))
            .execution_options(synchronize_session="fetch")
        ).rowcount


# Address-like tokens inside a failed-rows line; the original cells may hold the address
# with other text around it, in another case, or with an IDN domain in either form.
_ADDRESS_TOKEN = re.compile(r"[^\s<>()\[\]\"',;:|]+@[^\s<>()\[\]\"',;:|]+")


def _addresses_in(texts: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        for token in _ADDRESS_TOKEN.findall(str(text)):
            token = token.strip(".").lower()
            found.add(token)
            if "xn--" in token or not token.isascii():
                with contextlib.suppress(ServiceError):
                    found.add(normalize_email(token))
    return found


def _erase_import_traces(receipt: ErasureReceipt, account: Account, emails: set[str]) -> None:
    """Staged rows and failed-rows lines of the account's imports that hold the address."""
    import_ids = select(ImportJob.id).where(ImportJob.account_id == account.id)
    for chunk in _chunks(sorted(emails)):
        receipt.staged_rows += db.session.execute(
            delete(ImportRow).where(ImportRow.import_id.in_(import_ids), ImportRow.email.in_(chunk))
        ).rowcount
    doomed: list[int] = []
    rows = db.session.execute(
        select(ImportRowProblem.id, ImportRowProblem.cells, ImportRowProblem.params)
        .where(ImportRowProblem.import_id.in_(import_ids))
        .execution_options(yield_per=5000)
    )
    for problem_id, cells, params in rows:
        texts = [*(cells or []), *((params or {}).values())]
        if _addresses_in(texts) & emails:
            doomed.append(problem_id)
    for chunk in _chunks(doomed):
        receipt.failed_rows += db.session.execute(
            delete(ImportRowProblem).where(ImportRowProblem.id.in_(chunk))
        ).rowcount


def forget_emails(
    account: Account,
    emails: Iterable[str],
    *,
    actor: User | None,
    source: str,
    ip: str | None = None,
    record: bool = True,
) -> ErasureReceipt:
    """Forget these (normalized) addresses in the account, whether or not a contact
    exists: the suppression entry alone already keeps a later import from bringing the
    person in. Returns the receipt, which is also what the audit log records."""
    wanted = sorted({e for e in emails if e})
    receipt = ErasureReceipt(addresses=len(wanted))
    if not wanted:
        return receipt
    receipt.newly_suppressed = _suppress(account, wanted)
    receipt.files, receipt.lists = traces.redact(account, set(wanted), _addresses_in)
    ids = sorted(ids_for_emails(account, wanted).values())
    # listeners drop what they hold of these contacts and tell the linked provider
    events.emit(account.id, events.CONTACT_FORGOTTEN, ids, source=source)
    _erase_contacts(receipt, ids)
    _erase_import_traces(receipt, account, set(wanted))
    for chunk in _chunks(wanted):
        receipt.signup_requests += db.session.execute(
            delete(SignupRequest).where(
                SignupRequest.account_id == account.id, SignupRequest.email.in_(chunk)
            )
        ).rowcount
    if record:
        record_erasure(account, receipt, actor=actor, source=source, ip=ip)
    db.session.flush()
    return receipt


def record_erasure(
    account: Account, receipt: ErasureReceipt, *, actor: User | None, source: str, ip: str | None
) -> None:
    """The erasure receipt: who, when, from where and how many records — no address."""
    audit.record(
        "contacts.forgotten",
        account=account,
        actor=actor,
        object_type="contact",
        details={**receipt.as_dict(), "source": source},
        ip=ip,
    )


def forget_contact(
    contact: Contact, *, actor: User | None, source: str, ip: str | None = None
) -> ErasureReceipt:
    account = db.session.get(Account, contact.account_id)
    return forget_emails(account, [contact.email], actor=actor, source=source, ip=ip)


def erasure_preview(contact: Contact) -> dict[str, int]:
    """What "forget me" would erase, for the confirmation page."""
    return {
        "subscriptions": _count(
            select(Subscription.id).where(Subscription.contact_id == contact.id)
        ),
        "tag_links": _count(
            select(contact_tags.c.tag_id).where(contact_tags.c.contact_id == contact.id)
        ),
        "activities": _count(select(Activity.id).where(Activity.contact_id == contact.id)),
    }


def lift_suppression(account: Account, email: str) -> bool:
    """The person signed up again through a form and confirmed it: they asked to be
    here, so the suppression entry goes (only this path may call it)."""
    result = db.session.execute(
        delete(Suppression).where(
            Suppression.account_id == account.id,
            Suppression.email_hash == privacy.email_hash(email),
        )
    )
    return bool(result.rowcount)
