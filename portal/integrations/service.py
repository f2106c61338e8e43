"""The linked provider of an account: linking, the tag mapping, the outbox, the reset.

Rules from the seed article (Spreadmind): an account links one provider; the owner
cannot unlink it alone — only the support team resets it (audited, with a reason); after
the owner links the new provider and accepts how the tags travel, a background full
sync sends every contact. Every change to a contact after that reaches the provider as
a signed event (delivery.py), in order, even after the receiver was down for hours."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, literal, select

from portal import clock, events
from portal.accounts.models import Account
from portal.contacts.models import Tag
from portal.core import audit
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.integrations import profiles, targets
from portal.integrations.models import (
    EventStatus,
    LinkStatus,
    OutgoingEvent,
    ProviderLink,
    TagMapping,
)

if TYPE_CHECKING:
    from portal.accounts.models import User


class MappingInvalid(ServiceError):
    def __init__(self, errors: dict[int, str]):
        super().__init__(next(iter(errors.values())))
        self.errors = errors


def current_link(account: Account) -> ProviderLink | None:
    return db.session.scalar(
        select(ProviderLink).where(
            ProviderLink.account_id == account.id,
            ProviderLink.status == LinkStatus.LINKED.value,
        )
    )


def past_links(account: Account) -> list[ProviderLink]:
    return list(
        db.session.scalars(
            select(ProviderLink)
            .where(ProviderLink.account_id == account.id)
            .order_by(ProviderLink.id.desc())
        )
    )


def _clean_url(url: str) -> str:
    """A full http(s) address whose host is on the public internet (targets.py; the
    delivery checks it again at every connection)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise ServiceError(_l("Please enter the full address of the endpoint (https://…)."))
    try:
        targets.check_url(url)
    except targets.TargetRefused as exc:
        if exc.code == targets.UNRESOLVED:
            raise ServiceError(
                _l("The address of the endpoint could not be found. Please check it.")
            ) from exc
        raise ServiceError(
            _l(
                "The endpoint must be on the public internet: addresses of this network "
                "(localhost, private or link-local addresses) are not allowed."
            )
        ) from exc
    return url


def link_provider(
    account: Account, *, profile: str, url: str, actor: User | None, ip: str | None = None
) -> ProviderLink:
    if current_link(account) is not None:
        raise ServiceError(
            _l(
                "A provider is already linked. To switch to another provider, ask the support "
                "team to reset the link."
            )
        )
    if profile not in profiles.PROFILES:
        raise ServiceError(_l("Please choose a provider."))
    link = ProviderLink(
        account_id=account.id,
        profile=profile,
        url=_clean_url(url),
        secret=secrets.token_hex(32),
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "integration.linked",
        account=account,
        actor=actor,
        object_type="provider_link",
        object_id=link.id,
        details={"profile": profile, "host": urlsplit(link.url).netloc},
        ip=ip,
    )
    return link


def reset_link(
    account: Account, *, actor: User, reason: str, ip: str | None = None
) -> ProviderLink | None:
    """Support staff only (the console checks): the old link stops receiving events;
    what was still waiting for it is marked failed (it belongs to the old provider)."""
    link = current_link(account)
    if link is None:
        return None
    link.status = LinkStatus.RESET.value
    link.reset_at = clock.now()
    link.reset_by_id = actor.id
    link.reset_reason = reason[:2000]
    waiting = db.session.execute(
        OutgoingEvent.__table__.update()
        .where(OutgoingEvent.link_id == link.id, OutgoingEvent.status == EventStatus.PENDING.value)
        .values(status=EventStatus.FAILED.value, last_error=targets.LINK_RESET)
    ).rowcount
    audit.record(
        "integration.reset",
        account=account,
        actor=actor,
        object_type="provider_link",
        object_id=link.id,
        details={"profile": link.profile, "reason": reason[:500], "dropped_events": waiting},
        ip=ip,
    )
    db.session.flush()
    return link


# --- tags ------------------------------------------------------------------------------


def _tags(account: Account) -> list[tuple[int, str]]:
    return [
        (t.id, t.name) for t in db.session.scalars(select(Tag).where(Tag.account_id == account.id))
    ]


def saved_mapping(link: ProviderLink) -> dict[int, TagMapping]:
    return {
        m.tag_id: m
        for m in db.session.scalars(select(TagMapping).where(TagMapping.link_id == link.id))
    }


def compatibility_report(account: Account, profile_key: str, chosen: dict[int, str] | None = None):
    return profiles.report(profiles.PROFILES[profile_key], _tags(account), chosen)


def accept_mapping(
    link: ProviderLink, names: dict[int, str], *, actor: User | None, ip: str | None = None
) -> list[TagMapping]:
    """Store how every tag travels. Each chosen name must fit the provider and no two
    may become one; otherwise MappingInvalid names the tags."""
    account = db.session.get(Account, link.account_id)
    profile = profiles.PROFILES[link.profile]
    rows = profiles.report(profile, _tags(account), {k: v.strip() for k, v in names.items()})
    errors: dict[int, str] = {}
    for row in rows:
        problems = profiles.problems_of(profile, row.suggested)
        if problems:
            errors[row.tag_id] = str(
                _l(
                    "“%(name)s” cannot be used: %(problems)s.",
                    name=row.suggested,
                    problems=", ".join(str(profiles.PROBLEMS[p]) for p in problems),
                )
            )
        elif row.collides_with:
            errors[row.tag_id] = str(
                _l(
                    "“%(name)s” would merge with %(others)s.",
                    name=row.suggested,
                    others=", ".join(f"“{o}”" for o in row.collides_with),
                )
            )
    if errors:
        raise MappingInvalid(errors)
    existing = saved_mapping(link)
    kept = []
    for row in rows:
        mapping = existing.pop(row.tag_id, None) or TagMapping(link_id=link.id, tag_id=row.tag_id)
        mapping.remote_name = row.suggested
        mapping.remote_id = row.remote_id
        db.session.add(mapping)
        kept.append(mapping)
    for stale in existing.values():
        db.session.delete(stale)
    link.mapping_accepted_at = clock.now()
    audit.record(
        "integration.mapping_accepted",
        account=account,
        actor=actor,
        object_type="provider_link",
        object_id=link.id,
        details={"tags": len(kept), "renamed": sum(1 for r in rows if r.suggested != r.name)},
        ip=ip,
    )
    db.session.flush()
    return kept


# --- the outbox ------------------------------------------------------------------------


def write_outbox(event: events.Event) -> None:
    """Receiver of signals.contact_changed (portal.events): one outbox row per contact,
    in the same transaction."""
    link_id = db.session.scalar(
        select(ProviderLink.id).where(
            ProviderLink.account_id == event.account_id,
            ProviderLink.status == LinkStatus.LINKED.value,
        )
    )
    if link_id is None:
        return
    now = clock.now()
    common = {
        "account_id": event.account_id,
        "link_id": link_id,
        "kind": event.kind,
        "data": dict(event.data),
        "status": EventStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "last_error": "",
    }
    if event.id_select is not None:
        ids = event.id_select.subquery()
        columns = list(common)
        db.session.execute(
            insert(OutgoingEvent).from_select(
                [*columns, "contact_id"],
                select(
                    *[literal(common[c], OutgoingEvent.__table__.c[c].type) for c in columns],
                    ids.c[0],
                ),
            )
        )
    else:
        db.session.execute(
            insert(OutgoingEvent), [{**common, "contact_id": cid} for cid in event.contact_ids]
        )
    db.session.info.setdefault("outbox_links", set()).add(link_id)
