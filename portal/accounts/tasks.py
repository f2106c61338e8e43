"""RQ glue for the accounts area: the password-reset mail."""

from __future__ import annotations

from portal.accounts import service
from portal.extensions import rq


@rq.job(queue="high")
def send_password_reset(email: str) -> None:
    """Look the address up and mail the link, on a worker: the page that asked answers
    before anything depends on whether the address exists (service.request_password_reset)."""
    service.send_password_reset(email)
