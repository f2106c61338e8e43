"""Outgoing mail in the recipient's language: SMTP when MAIL_SERVER is set,
otherwise an .eml file in the outbox plus a log line, so nothing is lost.

The outbox is an area of the file store (OUTBOX_DIR on the folder store, the database
on PostgreSQL): a mail written by a worker on one machine is there for whoever reads
the outbox on another, and "forget me" — which runs wherever the request lands —
finds and removes every mail for the person (docs/decisions/file-store.md)."""

from __future__ import annotations

import logging
import smtplib
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import formataddr, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale

from portal import clock
from portal.core import move
from portal.core.errors import ServiceError
from portal.core.move import Expected
from portal.core.privacy import normalize_email
from portal.core.storage import OUTBOX, StorageError, get_storage
from portal.i18n import formatting_locale

log = logging.getLogger(__name__)


def external_url(endpoint: str, **values: object) -> str:
    """An absolute link to the portal for a mail (or a snippet a customer copies out),
    built from BASE_URL. Never from the request: its Host and X-Forwarded-Host are
    whatever the sender typed, and a reset link mailed to http://evil.example/... hands
    the token to whoever owns that host. Works without a request too (jobs, CLI)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path.rstrip("/") or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


ACCOUNT_HEADER = "X-Portal-Account"


def send_mail(
    to: str,
    subject: str,
    template: str,
    locale: str = "en",
    *,
    about_account: int | None = None,
    sender_name: str | None = None,
    sender_address: str | None = None,
    **context,
) -> EmailMessage:
    """Render templates/mail/<template>.txt (and .html if present) in `locale` and send.

    `about_account`: the account a mail to one of its contacts is sent for (a sign-up
    confirmation). It goes into a header, so that "forget me" in that account can find
    the mail in the outbox and remove it (redact_outbox).
    `sender_address`: the account's own, confirmed address (accounts/sender.py); the
    portal's address then goes into Sender:, the mailbox that actually sends."""
    with force_locale(formatting_locale(locale)):
        body = render_template(f"mail/{template}.txt", **context)
        # one line whatever it names: a header with a line break is refused (and would
        # be a header injection); an account name is checked, this is the last guard
        subject_text = " ".join(str(subject).split())
    message = EmailMessage()
    sender = current_app.config["MAIL_SENDER"]
    portal_address = parseaddr(sender)[1]
    if sender_name:  # the person sees who writes: the customer's name, not the portal's
        name = " ".join(str(sender_name).split())
        sender = formataddr((name, sender_address or portal_address))
    elif sender_address:
        sender = sender_address
    message["From"] = sender
    if sender_address and sender_address != portal_address:
        message["Sender"] = portal_address
    message["To"] = to
    message["Subject"] = subject_text
    message["Message-ID"] = make_msgid(domain="portal.local")
    if about_account is not None:
        message[ACCOUNT_HEADER] = str(int(about_account))
    message.set_content(body)
    message["Content-Language"] = locale  # after set_content, which resets Content-*
    _deliver(message)
    return message


def _deliver(message: EmailMessage) -> None:
    config = current_app.config
    if config["MAIL_SERVER"]:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
        log.info("mail sent via SMTP to %s: %s", message["To"], message["Subject"])
        return
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%f")
    key = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    get_storage(OUTBOX).write_stream(key, [bytes(message)])
    log.warning("MAIL_SERVER not set; mail to %s written to the outbox: %s", message["To"], key)


def _outbox_keys() -> list[str]:
    """The mails in the outbox, oldest first (their names begin with the time)."""
    return sorted(e.key for e in get_storage(OUTBOX).entries() if e.key.endswith(".eml"))


def outbox_messages() -> list[EmailMessage]:
    """Messages written to the outbox, oldest first (for tests and the dev console)."""

    outbox = get_storage(OUTBOX)
    parser = BytesParser(policy=policy.default)
    messages = []
    for key in _outbox_keys():
        try:
            with outbox.open(key) as fh:
                messages.append(parser.parse(fh))
        except StorageError:
            continue  # removed meanwhile ("forget me" on another node)
    return messages


def redact_outbox(account_id: int, emails: set[str]) -> int:
    """ "Forget me": mails in the outbox sent for this account to one of these
    (normalized) addresses are removed — a confirmation mail names the person and would
    otherwise stay on disk for good. Mails of other accounts and mails to users (password
    resets, invitations) are left alone. Returns how many were removed. SMTP mail has
    left the portal; only the outbox is the portal's to clean."""

    if not emails:
        return 0
    outbox = get_storage(OUTBOX)
    parser = BytesHeaderParser(policy=policy.default)
    removed = 0
    for key in _outbox_keys():
        try:
            with outbox.open(key) as fh:
                headers = parser.parse(fh)
        except (OSError, StorageError):
            continue
        if headers.get(ACCOUNT_HEADER, "").strip() != str(account_id):
            continue
        try:
            to = normalize_email(headers.get("To", "").addresses[0].addr_spec)
        except (IndexError, AttributeError, ServiceError):
            continue
        if to in emails:
            outbox.delete(key)
            removed += 1
    return removed


def _known_files(source):
    """For move-files: every file in the outbox (no row keeps a checksum; the copy is
    compared with the source's own bytes)."""

    return [Expected(entry.key) for entry in source.entries()]


move.register(OUTBOX, _known_files)
