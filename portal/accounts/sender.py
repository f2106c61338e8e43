"""The account's own sender address for the mails it sends to its contacts.

Anybody with the admin role could type somebody else's address, and every sign-up
confirmation would then go out in that person's name. So an address is used only after
a mail to it was answered: until then the portal's own address (MAIL_SENDER) sends,
with the account's name as the display name (docs/decisions/sender-address.md)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from email.utils import parseaddr

from flask import current_app
from flask_babel import lazy_gettext as _l

from portal import clock
from portal.accounts.models import Account, User
from portal.accounts.service import has_control_characters, hash_token
from portal.core import audit
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.mail import external_url, send_mail

CONFIRM_DAYS = 2
RESEND_AFTER = timedelta(minutes=1)


def _record(action: str, account: Account, actor: User | None, ip: str | None, **details) -> None:
    audit.record(
        action,
        account=account,
        actor=actor,
        object_type="account",
        object_id=account.id,
        details=details,
        ip=ip,
    )


def request_sender_address(
    account: Account, email: str, *, actor: User, locale: str, ip: str | None = None
) -> str:
    """Keep the address as pending and mail a confirmation link to it; the address in
    use (if any) stays in use until the new one is confirmed. Returns the address."""

    if has_control_characters(email):
        raise ServiceError(_l("This is not a valid email address."))
    address = normalize_email(email)
    now = clock.now()
    if (
        account.sender_email_pending == address
        and account.sender_requested_at is not None
        and now - account.sender_requested_at < RESEND_AFTER
    ):
        raise ServiceError(
            _l("A confirmation mail was sent to this address a moment ago. Please check the inbox.")
        )
    token = secrets.token_urlsafe(32)
    account.sender_email_pending = address
    account.sender_token_hash = hash_token(token)
    account.sender_requested_at = now
    _record("account.sender_requested", account, actor, ip, email=address)
    db.session.flush()
    send_mail(
        address,
        _l(
            "Confirm “%(email)s” as the sender address of “%(account)s”",
            email=address,
            account=account.name,
        ),
        "sender_confirm",
        locale=locale,
        account=account,
        address=address,
        days=CONFIRM_DAYS,
        link=external_url("accounts.confirm_sender", token=token),
    )
    return address


def account_for_sender_token(token: str) -> Account | None:
    """The account whose pending address this link confirms, while the link is valid."""
    if not token or len(token) > 100:
        return None
    account = db.session.scalar(
        db.select(Account).where(Account.sender_token_hash == hash_token(token))
    )
    if account is None or account.sender_requested_at is None:
        return None
    if clock.now() - account.sender_requested_at > timedelta(days=CONFIRM_DAYS):
        return None
    return account


def confirm_sender_address(account: Account, *, ip: str | None = None) -> str:
    """The pending address becomes the one the account's mails come from."""
    address = account.sender_email_pending
    if not address:
        raise ServiceError(_l("This link is invalid or has expired."))
    old = account.sender_email
    account.sender_email = address
    account.sender_email_pending = None
    account.sender_token_hash = None
    account.sender_requested_at = None
    _record("account.sender_confirmed", account, None, ip, old=old, new=address)
    db.session.flush()
    return address


def remove_sender_address(account: Account, *, actor: User, ip: str | None = None) -> None:
    """Back to the portal's own address (and a pending request is dropped)."""
    old = account.sender_email or account.sender_email_pending
    account.sender_email = None
    account.sender_email_pending = None
    account.sender_token_hash = None
    account.sender_requested_at = None
    _record("account.sender_removed", account, actor, ip, old=old)
    db.session.flush()


def default_sender_address() -> str:
    """The portal's own address, for the page that explains what is used meanwhile."""

    return parseaddr(current_app.config["MAIL_SENDER"])[1]
