"""The public sign-up form of a group, with double opt-in as German law expects.

Filling in the form only sends a confirmation link (through the portal's mail layer);
opening that link is what creates the contact, brings back one "to be deleted", lifts a
"forget me" suppression (the person asked again, themselves) and activates the
subscription with the sign-up and confirmation times and IPs and the source "form".
Until then only a SignupRequest exists, with the hash of the link's token; it expires
after SIGNUP_CONFIRM_DAYS and is swept daily.

Abuse: the view rate-limits per IP and has a honeypot field; here at most
MAX_MAILS_PER_DAY confirmation mails go to one address per account a day, and the
answer on the page is the same whatever happened, so the form reveals nobody."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from portal import clock, events
from portal.accounts.models import Account
from portal.contacts import service as contacts
from portal.contacts.models import Contact, Group, Subscription, new_signup_token
from portal.core import audit
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.lifecycle import service
from portal.lifecycle.models import SignupRequest
from portal.mail import external_url, send_mail

MAX_MAILS_PER_DAY = 3


class SignupLinkInvalid(ServiceError):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def group_for_form(form_token: str) -> Group | None:
    if not form_token or len(form_token) > 64:
        return None
    return db.session.scalar(select(Group).where(Group.signup_token == form_token))


def form_url(group: Group) -> str:
    """The form's public address (BASE_URL, not the Host the page was asked with): it
    goes into the customer's website through the snippet."""
    return external_url("signup.form", form_token=group.signup_token)


def embed_snippet(group: Group) -> str:
    """HTML for the customer's own website: the form in a frame, a link without frames."""
    url = form_url(group)
    title = str(_l("Sign-up form"))
    return (
        f'<iframe src="{url}?embed=1" title="{title}" width="100%" height="460" '
        f'style="border:0"></iframe>\n<noscript><a href="{url}">{title}</a></noscript>'
    )


def new_form_link(group: Group, *, actor, ip: str | None = None) -> str:
    """Retire the old link (e.g. after spam) and give the group a new one."""
    group.signup_token = new_signup_token()
    audit.record(
        "group.form_link_renewed",
        account=db.session.get(Account, group.account_id),
        actor=actor,
        object_type="group",
        object_id=group.id,
        details={"name": group.name},
        ip=ip,
    )
    db.session.flush()
    return group.signup_token


def request_signup(
    group: Group,
    email: str,
    *,
    first_name: str = "",
    last_name: str = "",
    ip: str | None,
    locale: str,
) -> SignupRequest | None:
    """Store the request and mail the confirmation link. Raises ServiceError for an
    invalid address; returns None (and sends nothing) when the address had its mails
    for today — the page says the same either way."""
    email = normalize_email(email)
    now = clock.now()
    recent = db.session.scalar(
        select(func.count(SignupRequest.id)).where(
            SignupRequest.account_id == group.account_id,
            SignupRequest.email == email,
            SignupRequest.created_at > now - timedelta(days=1),
        )
    )
    if recent >= MAX_MAILS_PER_DAY:
        return None
    token = secrets.token_urlsafe(32)
    days = current_app.config["SIGNUP_CONFIRM_DAYS"]
    request = SignupRequest(
        account_id=group.account_id,
        group_id=group.id,
        email=email,
        first_name=" ".join(first_name.split())[:200],
        last_name=" ".join(last_name.split())[:200],
        token_hash=_hash(token),
        locale=locale,
        ip=ip,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    db.session.add(request)
    db.session.flush()
    account = db.session.get(Account, group.account_id)
    send_mail(
        email,
        _l("Please confirm your sign-up to “%(group)s”", group=group.name),
        "signup_confirm",
        locale=locale,
        about_account=account.id,
        account=account,
        sender_name=account.name,
        sender_address=account.sender_email,
        group=group,
        days=days,
        link=external_url("signup.confirm", form_token=group.signup_token, token=token),
    )
    return request


class SignupAlreadyConfirmed(Exception):
    """The link was opened before and the sign-up stands: nothing to do."""

    def __init__(self, group: Group) -> None:
        super().__init__(group.name)
        self.group = group


@dataclass
class Confirmation:
    contact: Contact
    group: Group
    created: bool = False
    restored: bool = False
    lifted: bool = False  # a "forget me" suppression was lifted


def confirm_signup(form_token: str, token: str, *, ip: str | None) -> Confirmation:
    """The person opened the link: now the contact exists and is subscribed."""
    request = db.session.scalar(
        select(SignupRequest).where(SignupRequest.token_hash == _hash(token))
    )
    group = group_for_form(form_token)
    if request is None or group is None or request.group_id != group.id:
        raise SignupLinkInvalid(
            _l("This confirmation link is not valid (any more). Please sign up again.")
        )
    now = clock.now()
    if request.confirmed_at is not None:  # a second click: say so, change nothing
        raise SignupAlreadyConfirmed(group)
    if request.expires_at < now:
        db.session.delete(request)
        db.session.flush()
        raise SignupLinkInvalid(_l("This confirmation link has expired. Please sign up again."))
    account = db.session.get(Account, group.account_id)
    result = Confirmation(contact=None, group=group)  # type: ignore[arg-type]
    result.lifted = service.lift_suppression(account, request.email)
    upserted = service.upsert_contact(
        account,
        request.email,
        first_name=request.first_name,
        last_name=request.last_name,
        fill_only=True,
        actor=None,
        source="form",
        ip=ip,
    )
    contact = upserted.contact
    result.created, result.restored = upserted.created, upserted.restored
    _activate(contact, group, request, now=now, ip=ip)
    # kept until it expires, so that a second click says "already confirmed"; the names
    # are no longer needed (the address stays for "forget me", which removes the row)
    request.confirmed_at = now
    request.first_name = request.last_name = ""
    audit.record(
        "signup.confirmed",
        account=account,
        object_type="contact",
        object_id=contact.id,
        details={
            "group": group.name,
            "created": result.created,
            "restored": result.restored,
            "lifted": result.lifted,
        },
        ip=ip,
    )
    db.session.flush()
    result.contact = contact
    return result


def _activate(contact: Contact, group: Group, request: SignupRequest, *, now, ip) -> None:
    sub = contacts.subscription(contact, group)
    if sub is None:
        sub = Subscription(account_id=contact.account_id, contact_id=contact.id, group_id=group.id)
        db.session.add(sub)
    sub.active = True
    sub.activated_at = request.created_at
    sub.deactivated_at = None
    sub.optout_reason = None
    sub.source = "form"
    sub.signup_ip = request.ip
    sub.confirmed_at = now
    sub.confirm_ip = ip
    db.session.flush()
    events.emit(
        contact.account_id,
        events.SUBSCRIPTION_CHANGED,
        [contact.id],
        group=group.name,
        change="subscribed",
        source="form",
    )


def sweep_expired(now=None) -> int:
    result = db.session.execute(
        delete(SignupRequest).where(SignupRequest.expires_at < (now or clock.now()))
    )
    db.session.commit()
    return result.rowcount or 0
