"""Exact counts of contacts per group and per status (the groups page, the home page
and the contact list's status filter), set-based and index-only where it matters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from portal.contacts.models import Contact, ContactStatus, Group, Subscription
from portal.extensions import db

if TYPE_CHECKING:
    from portal.accounts.models import Account


@dataclass
class GroupCounts:
    active: int = 0
    inactive: int = 0
    to_be_deleted: int = 0

    @property
    def total(self) -> int:
        return self.active + self.inactive + self.to_be_deleted


def group_counts(account: Account, group_ids: list[int] | None = None) -> dict[int, GroupCounts]:
    """Active / inactive (unsubscribed) contacts per group, without the contacts pending
    deletion, which are counted apart. Exact: the subscriptions are counted index-only
    on (group_id, active); the pending deletions are few (purged nightly) and found
    through (account_id, status)."""
    if group_ids is None:
        group_ids = list(db.session.scalars(select(Group.id).where(Group.account_id == account.id)))
    counts = {gid: GroupCounts() for gid in group_ids}
    if not group_ids:
        return counts
    rows = db.session.execute(
        select(Subscription.group_id, Subscription.active, func.count())
        .where(Subscription.group_id.in_(group_ids))
        .group_by(Subscription.group_id, Subscription.active)
    )
    for gid, active, n in rows:
        if active:
            counts[gid].active += n
        else:
            counts[gid].inactive += n
    any_pending = db.session.scalar(
        select(Contact.id)
        .where(Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value)
        .limit(1)
    )
    if any_pending is None:
        return counts
    pending = db.session.execute(
        select(Subscription.group_id, Subscription.active, func.count())
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(
            Contact.account_id == account.id,
            Contact.status == ContactStatus.DELETED.value,
            Subscription.group_id.in_(group_ids),
        )
        .group_by(Subscription.group_id, Subscription.active)
    )
    for gid, active, n in pending:
        if active:
            counts[gid].active -= n
        else:
            counts[gid].inactive -= n
        counts[gid].to_be_deleted += n
    return counts


@dataclass
class StatusCounts:
    """The account's contacts in the three states of the list's status filter."""

    active: int = 0
    unsubscribed: int = 0
    to_be_deleted: int = 0

    @property
    def total(self) -> int:
        return self.active + self.unsubscribed + self.to_be_deleted


def status_counts(account: Account) -> StatusCounts:
    """Exact counts by status, set-based, in the partition of filter_conditions:
    all contacts, index-only on (account_id, id); those to be deleted, few (purged
    nightly), on (account_id, status, id); and the unsubscribed - not to be deleted,
    with an inactive and no active subscription - as the contacts of the account's
    groups' inactive subscriptions EXCEPT those of their active ones, both read
    index-only from (group_id, active, contact_id). (An anti-join probing every
    signed-off contact for an active subscription took 1.7-2.7 s at a million contacts,
    the EXCEPT 1 s on the loaded bench machine; docs/decisions/home-page.md.)"""
    total = db.session.scalar(
        select(func.count()).select_from(Contact).where(Contact.account_id == account.id)
    )
    deleted = db.session.scalar(
        select(func.count())
        .select_from(Contact)
        .where(Contact.account_id == account.id, Contact.status == ContactStatus.DELETED.value)
    )
    groups = select(Group.id).where(Group.account_id == account.id)

    def contacts_of(active: bool):
        return select(Subscription.contact_id).where(
            Subscription.group_id.in_(groups), Subscription.active.is_(active)
        )

    signed_off_only = contacts_of(False).except_(contacts_of(True)).subquery()
    unsubscribed = db.session.scalar(
        select(func.count())
        .select_from(signed_off_only)
        .join(Contact, Contact.id == signed_off_only.c.contact_id)
        .where(Contact.status == ContactStatus.ACTIVE.value)
    )
    total, deleted, unsubscribed = total or 0, deleted or 0, unsubscribed or 0
    return StatusCounts(
        active=total - deleted - unsubscribed, unsubscribed=unsubscribed, to_be_deleted=deleted
    )
