"""The read-only layer of contacts: the contact list's filters, keyset pages, capped
counts and bulk selections, and the small readers (groups, tags, custom fields of an
account; a contact's subscriptions and activities; a group's audit events).

Nothing here writes; the operations that change data are in service.py."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import case, exists, func, literal, not_, select, tuple_

from portal.contacts.models import (
    Activity,
    Contact,
    ContactStatus,
    Group,
    Subscription,
    Tag,
    contact_tags,
)
from portal.contacts.search import search_condition
from portal.core import sql
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.tenancy import id_or_none

if TYPE_CHECKING:
    from portal.accounts.models import Account


PAGE_SIZE = 50

COUNT_CAP = 10_000


def groups_of(account: Account) -> list[Group]:
    return list(
        db.session.scalars(
            select(Group).where(Group.account_id == account.id).order_by(Group.name, Group.id)
        )
    )


def group_events(group: Group, limit: int = 10):
    """The latest audit events about this group."""

    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.account_id == group.account_id,
                AuditEvent.object_type == "group",
                AuditEvent.object_id == group.id,
            )
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def find_contact(account: Account, email: str) -> Contact | None:
    try:
        email = normalize_email(email)
    except ServiceError:
        return None
    return db.session.scalar(
        select(Contact).where(Contact.account_id == account.id, Contact.email == email)
    )


def tags_of(account: Account) -> list[Tag]:
    return list(
        db.session.scalars(select(Tag).where(Tag.account_id == account.id).order_by(Tag.name))
    )


def contact_subscriptions(contact: Contact) -> list[tuple[Subscription, Group]]:
    return list(
        db.session.execute(
            select(Subscription, Group)
            .join(Group, Group.id == Subscription.group_id)
            .where(Subscription.contact_id == contact.id)
            .order_by(Group.name)
        )
    )


def activities_of(contact: Contact, limit: int = 100) -> list[Activity]:
    return list(
        db.session.scalars(
            select(Activity)
            .where(Activity.contact_id == contact.id)
            .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            .limit(limit)
        )
    )


STATUS_FILTERS = ("active", "unsubscribed", "deleted")


@dataclass(frozen=True)
class ContactFilter:
    """What the list shows; its query string re-runs the same filter server-side
    ("select all N matching")."""

    group_id: int | None = None
    status: str = ""  # "" (all) | active | unsubscribed | deleted (= to be deleted)
    tag_id: int | None = None
    signup_from: date | None = None
    signup_to: date | None = None
    q: str = ""
    # "anywhere": a part of the address or name (the list, its bulk actions, mass
    # management); "prefix": the start of them (the API's documented contract)
    search: str = "anywhere"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContactFilter:
        """Lenient parsing of a query string; unusable values are dropped."""

        def as_int(name, model):

            return id_or_none(model, args.get(name))

        def as_date(name):
            try:
                return date.fromisoformat(args.get(name) or "")
            except ValueError:
                return None

        status = args.get("status") or ""
        return cls(
            group_id=as_int("group", Group),
            status=status if status in STATUS_FILTERS else "",
            tag_id=as_int("tag", Tag),
            signup_from=as_date("signup_from"),
            signup_to=as_date("signup_to"),
            q=(args.get("q") or "").strip()[:200],
        )

    def to_args(self) -> dict[str, str]:
        args = {
            "group": str(self.group_id) if self.group_id else "",
            "status": self.status,
            "tag": str(self.tag_id) if self.tag_id else "",
            "signup_from": self.signup_from.isoformat() if self.signup_from else "",
            "signup_to": self.signup_to.isoformat() if self.signup_to else "",
            "q": self.q,
        }
        return {k: v for k, v in args.items() if v}

    def query_string(self) -> str:
        return urlencode(self.to_args())

    @property
    def is_empty(self) -> bool:
        return not self.to_args()

    def with_(self, **changes) -> ContactFilter:
        return replace(self, **changes)


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def filter_conditions(account: Account, f: ContactFilter, tz: ZoneInfo | None = None) -> list:
    """WHERE clauses on Contact for the filter. The sign-up dates are days in `tz`.

    Status: a contact is "to be deleted" (status deleted), otherwise "unsubscribed"
    when it has no active but at least one inactive subscription (within the filtered
    group, when a group is chosen), otherwise "active". The three partition all contacts."""
    tz = tz or ZoneInfo("UTC")
    conds: list = [Contact.account_id == account.id]
    sub = Subscription

    signup = []
    if f.signup_from:
        signup.append(sub.activated_at >= _local_midnight_utc(f.signup_from, tz))
    if f.signup_to:
        signup.append(sub.activated_at < _local_midnight_utc(f.signup_to + timedelta(days=1), tz))

    if f.group_id:
        conds += _status_in_group(account, f, signup)
    else:
        conds += _status_in_any_group(account, f, signup)

    if f.tag_id:
        conds.append(
            exists().where(
                contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id == f.tag_id
            )
        )

    if f.q:
        conds.append(search_condition(f.q, anywhere=f.search != "prefix"))
    return conds


def _subs(*where):
    """The contact has a subscription matching `where`."""
    return exists().where(Subscription.contact_id == Contact.id, *where)


def _status_in_group(account: Account, f: ContactFilter, signup: list) -> list:
    """The status (and sign-up dates) within the filtered group."""
    sub, subs, conds = Subscription, _subs, []
    in_group = (sub.group_id == f.group_id, sub.account_id == account.id)
    if f.status == "active":
        conds += [
            Contact.status == ContactStatus.ACTIVE.value,
            subs(*in_group, sub.active.is_(True), *signup),
        ]
    elif f.status == "unsubscribed":
        conds += [
            Contact.status == ContactStatus.ACTIVE.value,
            subs(*in_group, sub.active.is_(False), *signup),
        ]
    else:
        if f.status == "deleted":
            conds.append(Contact.status == ContactStatus.DELETED.value)
        conds.append(subs(*in_group, *signup))
    return conds


def _status_in_any_group(account: Account, f: ContactFilter, signup: list) -> list:
    """The status (and sign-up dates) over all of the contact's subscriptions."""
    sub, subs, conds = Subscription, _subs, []
    if f.status == "deleted":
        conds.append(Contact.status == ContactStatus.DELETED.value)
    elif f.status == "active":
        # "has an active subscription, or none at all": one probe of the contact's few
        # subscriptions per row. (An OR of two EXISTS makes PostgreSQL hash every
        # inactive subscription of the table first: 150 ms instead of 5 at 1M rows.)
        any_active = (
            select(func.max(case((sub.active.is_(True), 1), else_=0)))
            .where(sub.contact_id == Contact.id)
            .scalar_subquery()
        )
        conds += [
            Contact.status == ContactStatus.ACTIVE.value,
            func.coalesce(any_active, 1) == 1,
        ]
    elif f.status == "unsubscribed":
        conds += [
            Contact.status == ContactStatus.ACTIVE.value,
            not_(subs(sub.active.is_(True))),
            subs(sub.active.is_(False)),
        ]
    if signup:
        # PostgreSQL drives a narrow date range from (account_id, activated_at); SQLite,
        # without statistics, would take that index for every probe, so it gets the
        # contact_id probe alone there.
        if sql.is_postgres():
            conds.append(subs(sub.account_id == account.id, *signup))
        else:
            conds.append(subs(*signup))
    return conds


SORT_KEYS = ("added", "email", "name", "status")

# A search matching up to this many contacts is read from its trigram indexes and sorted
# (tens of ms); one matching more is read along the sort order's index, which finds a
# page quickly because matches are that dense (see _Segment.ordered). In address and
# name order the matches of a search cluster ("nthe": every Günther under "g"), so
# those orders sort more matches rather than walk.
FEW_MATCHES = 20_000

FEW_MATCHES_CLUSTERED = 50_000


def few_matches(sort: ContactSort | None) -> int:
    """Up to how many matches a search is read from its trigram indexes in `sort`."""
    if sort is not None and sort.key in ("email", "name"):
        return FEW_MATCHES_CLUSTERED
    return FEW_MATCHES


STATUS_ORDER = ("active", "unsubscribed", "deleted")


@dataclass(frozen=True)
class ContactSort:
    """The list's order: by date added (the default, newest first), address, name or
    status, either way; ties (and the rows of one status) by id in the same direction,
    so that every page is stable. Unknown values fall back to the default."""

    key: str = "added"
    descending: bool = True

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContactSort:
        key = args.get("sort") or ""
        if key not in SORT_KEYS:
            return cls()
        direction = args.get("dir") or ""
        if direction not in ("asc", "desc"):
            direction = "desc" if key == "added" else "asc"
        return cls(key=key, descending=direction == "desc")

    @property
    def is_default(self) -> bool:
        return self == ContactSort()

    def to_args(self) -> dict[str, str]:
        """Query-string values; none for the default order."""
        if self.is_default:
            return {}
        return {"sort": self.key, "dir": "desc" if self.descending else "asc"}

    def toggled(self, key: str) -> ContactSort:
        """The order a column header links to: the other direction when the list is
        already sorted by it, otherwise its natural first direction."""
        if key == self.key:
            return ContactSort(key=key, descending=not self.descending)
        return ContactSort(key=key, descending=key == "added")


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_after: int | None = None  # ?after= (the contact before the next page)
    prev_before: int | None = None  # ?before= (the contact after the previous page)
    states: dict[int, str] = field(default_factory=dict)  # active|unsubscribed|deleted
    tags: dict[int, list[Tag]] = field(default_factory=dict)
    at_start: bool = True  # nothing comes before this page: it is the first one


@dataclass
class _Segment:
    """A run of the list in one index order: WHERE `conds` ORDER BY `keys`. Most orders
    are one segment; by status, each status is one (its filter, ordered by id), so the
    list is "active, then unsubscribed, then to be deleted" without computing the
    status of every contact."""

    conds: list
    keys: list
    descending: bool

    def after(self, values: tuple, forward: bool):
        """Rows after `values` in this order (forward) or before them (backward)."""
        row = tuple_(*self.keys) if len(self.keys) > 1 else self.keys[0]
        value = values if len(self.keys) > 1 else values[0]
        later = row < value if self.descending else row > value
        earlier = row > value if self.descending else row < value
        return later if forward else earlier

    def ordered(self, forward: bool, few: bool = False) -> list:
        """ORDER BY of this segment. With `few` (the search is known to match at most
        few_matches() rows) the keys are wrapped so that no index provides the order: the
        planner then collects the matches from the search's trigram indexes and sorts
        them, instead of walking the id or address index and filtering - which it
        prefers because it cannot estimate `LIKE '%...%'`, and which reads 800,000 rows
        of a million for a term that matches 279 (560 ms instead of 7)."""
        down = self.descending == forward
        keys = [_unindexed(k) for k in self.keys] if few else self.keys
        return [k.desc() if down else k.asc() for k in keys]


def _unindexed(column):
    """The same order as `column`, from an expression no index holds."""
    if column.key == "id":
        return column + 0
    return column.concat("")


def _sort_keys(key: str) -> list:
    if key == "email":
        return [Contact.email, Contact.id]
    if key == "name":
        return [Contact.search_name, Contact.id]
    return [Contact.id]


def _segments(
    account: Account, f: ContactFilter, sort: ContactSort, tz: ZoneInfo | None
) -> list[_Segment]:
    if sort.key != "status":
        return [_Segment(filter_conditions(account, f, tz), _sort_keys(sort.key), sort.descending)]
    order = reversed(STATUS_ORDER) if sort.descending else STATUS_ORDER
    return [
        _Segment(
            filter_conditions(account, f.with_(status=state), tz), [Contact.id], sort.descending
        )
        for state in order
        if not f.status or f.status == state
    ]


def _locate(
    segments: list[_Segment], contact_id: int, sort: ContactSort
) -> tuple[int, tuple] | None:
    """Where a page cursor (a contact id) stands: its segment and its sort values. By
    date added the id is the position itself (the contact may be gone meanwhile); by
    the other orders the contact is read, and a cursor no longer in the list (deleted
    for good, or not matching any more) starts the list again."""
    if sort.key == "added":
        return 0, (contact_id,)
    for index, segment in enumerate(segments):
        row = db.session.execute(
            select(*segment.keys).where(*segment.conds, Contact.id == contact_id)
        ).first()
        if row is not None:
            return index, tuple(row)
    return None


def _seek(
    segments: list[_Segment],
    start: tuple[int, tuple] | None,
    forward: bool,
    limit: int,
    few: bool = False,
) -> list[Contact]:
    """Up to `limit` contacts from the cursor on (backward: before it, nearest first)."""
    order = list(enumerate(segments))
    if not forward:
        order.reverse()
    rows: list[Contact] = []
    for index, segment in order:
        if start is not None and (index < start[0] if forward else index > start[0]):
            continue
        query = select(Contact).where(*segment.conds)
        if start is not None and index == start[0]:
            query = query.where(segment.after(start[1], forward))
        query = query.order_by(*segment.ordered(forward, few)).limit(limit - len(rows))
        rows += db.session.scalars(query)
        if len(rows) >= limit:
            break
    return rows


def page_contacts(
    account: Account,
    f: ContactFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
    tz: ZoneInfo | None = None,
    sort: ContactSort | None = None,
    matches: int | None = None,
) -> ContactPage:
    """One page in `sort` order (default: newest first), keyset on the sort values and
    the id (no OFFSET: page 20,000 costs what page 1 costs). `after` pages forward,
    `before` back; both are contact ids. `matches`: the exact count when the caller
    has it (count_contacts, not capped) - a search with few matches is then read
    through its trigram indexes (see _Segment.ordered)."""
    sort = sort or ContactSort()
    few = bool(f.q) and matches is not None and matches <= few_matches(sort)
    segments = _segments(account, f, sort, tz)
    cursor = after if after is not None else before
    start = _locate(segments, cursor, sort) if cursor is not None else None
    if cursor is not None and start is None:
        after = before = None  # the cursor left the list: from the start
    if before is not None:
        rows = _seek(segments, start, False, size + 1, few)
        more_before = len(rows) > size
        contacts = list(reversed(rows[:size]))
        has_prev, has_next = more_before, bool(contacts)
    else:
        rows = _seek(segments, start, True, size + 1, few)
        contacts = rows[:size]
        has_prev, has_next = after is not None and bool(contacts), len(rows) > size
    page = ContactPage(
        contacts=contacts,
        next_after=contacts[-1].id if has_next and contacts else None,
        prev_before=contacts[0].id if has_prev and contacts else None,
        at_start=not has_prev if contacts else after is None and before is None,
    )
    _annotate(page)
    return page


def _annotate(page: ContactPage) -> None:
    """Status and tags of the page's rows in two small queries."""
    ids = [c.id for c in page.contacts]
    if not ids:
        return
    flags: dict[int, set[bool]] = {}
    for contact_id, active in db.session.execute(
        select(Subscription.contact_id, Subscription.active).where(Subscription.contact_id.in_(ids))
    ):
        flags.setdefault(contact_id, set()).add(bool(active))
    for c in page.contacts:
        seen = flags.get(c.id, set())
        if c.is_deleted:
            page.states[c.id] = "deleted"
        elif seen == {False}:
            page.states[c.id] = "unsubscribed"
        else:
            page.states[c.id] = "active"
    page.tags = tags_by_contact(ids)


def count_contacts(
    account: Account, f: ContactFilter, *, cap: int | None = None, tz: ZoneInfo | None = None
) -> tuple[int, bool]:
    """(count, capped): exact up to `cap` (COUNT_CAP), otherwise (cap, True) for "more
    than cap". The database stops after cap + 1 rows, so a million matches cost little."""
    cap = COUNT_CAP if cap is None else cap
    limited = (
        select(literal(1).label("one"))
        .select_from(Contact)
        .where(*filter_conditions(account, f, tz))
        .limit(cap + 1)
        .subquery()
    )
    n = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return (cap, True) if n > cap else (n, False)


def iter_matching_ids(
    account: Account, f: ContactFilter, *, batch: int = 1000, tz: ZoneInfo | None = None
) -> Iterator[list[int]]:
    """All ids matching the filter in batches, newest first, for bulk actions on
    "all N matching" (keyset, so rows changed by the caller between batches are fine)."""
    conds = filter_conditions(account, f, tz)
    after = None
    while True:
        query = select(Contact.id).where(*conds)
        if after is not None:
            query = query.where(Contact.id < after)
        ids = list(db.session.scalars(query.order_by(Contact.id.desc()).limit(batch)))
        if not ids:
            return
        yield ids
        after = ids[-1]


@dataclass(frozen=True)
class BulkSelection:
    """What a bulk action on the list acts on, from the list's form:

    - ``ids`` (repeated): the rows ticked one by one;
    - ``scope=page`` with ``page_ids`` (comma-separated): "select all on this page";
    - ``scope=matching`` with ``filter`` (the list's query string): "select all N
      matching" - the filter is run again here, on the server, at the time of the action.
    """

    scope: str = "selected"  # selected | page | matching
    ids: tuple[int, ...] = ()
    filter: ContactFilter = field(default_factory=ContactFilter)

    @classmethod
    def from_form(cls, form) -> BulkSelection:

        scopes = set(form.getlist("scope"))
        scope = "matching" if "matching" in scopes else "page" if "page" in scopes else "selected"
        raw = form.getlist("ids")
        if scope == "page":
            raw = (form.get("page_ids") or "").split(",")
        ids = []
        for value in raw:
            try:
                ids.append(int(value))
            except (TypeError, ValueError):
                continue
        filter_ = ContactFilter.from_args(dict(parse_qsl(form.get("filter") or "")))
        return cls(scope=scope, ids=tuple(dict.fromkeys(ids)), filter=filter_)

    def iter_ids(
        self, account: Account, *, batch: int = 1000, tz: ZoneInfo | None = None
    ) -> Iterator[list[int]]:
        """The selected ids of `account` in batches; ids of other accounts are dropped."""
        if self.scope == "matching":
            yield from iter_matching_ids(account, self.filter, batch=batch, tz=tz)
            return
        for start in range(0, len(self.ids), batch):
            chunk = list(self.ids[start : start + batch])
            owned = db.session.scalars(
                select(Contact.id).where(Contact.account_id == account.id, Contact.id.in_(chunk))
            )
            ids = sorted(owned, reverse=True)
            if ids:
                yield ids


def contacts_by_ids(account: Account, ids: list[int]) -> list[Contact]:
    """The account's contacts among `ids` (foreign ids are silently not found)."""
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Contact).where(Contact.account_id == account.id, Contact.id.in_(ids))
        )
    )


def tags_by_contact(ids) -> dict[int, list[Tag]]:
    """The tags of each of these contacts, by name, in one query (a contact without tags
    is left out)."""
    tags: dict[int, list[Tag]] = {}
    for contact_id, tag in db.session.execute(
        select(contact_tags.c.contact_id, Tag)
        .join(Tag, Tag.id == contact_tags.c.tag_id)
        .where(contact_tags.c.contact_id.in_(ids))
        .order_by(Tag.name)
    ):
        tags.setdefault(contact_id, []).append(tag)
    return tags
