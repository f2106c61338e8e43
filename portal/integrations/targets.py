"""Where the portal may send webhooks: public internet addresses only (issue 16, point 7).

An admin enters the provider's address; the worker then posts every contact of the
account there. Without a guard that is a request forgery from inside the network: an
address of 127.0.0.1, 10.x, 169.254.169.254 (a cloud's metadata service) or a name that
resolves to one made the worker post the full contact sync to whatever listens there,
and the delivery log printed what the connection attempt found (a port scanner).

- The host is resolved and **every** address it resolves to must be public: not
  loopback, private, link-local, multicast, reserved, unspecified or shared (anything
  `ipaddress` does not call global), IPv4 inside IPv6 included. Checked when the link
  is made (a clear message) and again at **every connection** of every delivery: the
  check happens inside the connection, which then connects to the very address that
  was checked — a name that answers differently the second time (DNS rebinding) gains
  nothing.
- No redirects: a 3xx is a failed delivery ("the receiver answered with a redirect").
- No proxy from the environment (a proxy would make the connection on our behalf).
- The delivery log keeps a short code per failure (`error_text` translates it), never
  the exception text of the connection.
- `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lets an on-premise installation send to its own
  network (off by default; redirects stay off and the log stays generic).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import requests
from flask import current_app
from flask_babel import lazy_gettext as _l
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

# failure codes kept in OutgoingEvent.last_error (an "HTTP 503" is kept as such)
REFUSED = "refused_target"
UNRESOLVED = "unresolved"
REDIRECT = "redirect"
TIMEOUT = "timeout"
NO_CONNECTION = "no_connection"
FAILED = "failed"
LINK_RESET = "link reset"  # set by service.reset_link on what waited for the old provider

ERROR_TEXTS = {
    REFUSED: _l("The address is not on the public internet; nothing was sent."),
    UNRESOLVED: _l("The address could not be found."),
    REDIRECT: _l("The receiver answered with a redirect; redirects are not followed."),
    TIMEOUT: _l("The receiver did not answer in time."),
    NO_CONNECTION: _l("No connection to the receiver."),
    FAILED: _l("The delivery failed."),
    LINK_RESET: _l("The link was reset; the event was not sent."),
}


class TargetRefused(Exception):
    """The portal does not send to this address; `code` says why (ERROR_TEXTS)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS"))


def is_public(address: str) -> bool:
    """True for an address on the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone index goes
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int | None) -> list[str]:
    """Every address the name resolves to (an IP address resolves to itself)."""
    try:
        answers = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise TargetRefused(UNRESOLVED) from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise TargetRefused(UNRESOLVED)
    return addresses


def checked_addresses(host: str, port: int | None, *, private_ok: bool) -> list[str]:
    """The addresses to connect to; TargetRefused when one of them is not public (a
    name that also answers with a private address is not trusted with the others)."""
    addresses = resolve(host, port)
    if not private_ok and not all(is_public(a) for a in addresses):
        raise TargetRefused(REFUSED)
    return addresses


def check_url(url: str) -> None:
    """For the link form: TargetRefused unless the URL's host is allowed."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(UNRESOLVED) from exc
    checked_addresses(parts.hostname or "", port, private_ok=allow_private())


class _Guarded:
    """Mixed into urllib3's connections: resolve, check, and connect to a checked
    address (TLS still verifies the certificate for the host name)."""

    _dns_host: str
    port: int

    def _new_conn(self):  # type: ignore[no-untyped-def]
        name = self._dns_host
        last: Exception | None = None
        try:
            for address in checked_addresses(name, self.port, private_ok=False):
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    last = exc
        finally:
            self._dns_host = name
        raise last  # type: ignore[misc]


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def session() -> requests.Session:
    """A session for webhooks: no proxy from the environment, no redirects, and unless
    private targets are allowed, every connection checked."""
    http = requests.Session()
    http.trust_env = False  # the callers pass allow_redirects=False
    if not allow_private():
        http.mount("http://", _GuardedAdapter())
        http.mount("https://", _GuardedAdapter())
    return http


def failure_code(exc: Exception) -> str:
    """The generic code for what went wrong (never the exception's own text)."""
    if isinstance(exc, TargetRefused):
        return exc.code
    if isinstance(exc, requests.Timeout):
        return TIMEOUT
    if isinstance(exc, requests.ConnectionError):
        return NO_CONNECTION
    return FAILED


_HTTP_STATUS = re.compile(r"HTTP [0-9]{3}")


def error_text(code: str) -> str:
    """What the delivery log shows for a stored failure code, in the reader's language.
    An HTTP status is shown as it is; the free texts older versions stored (the
    connection's own exception text, naming hosts and ports) as "the delivery failed"."""
    if _HTTP_STATUS.fullmatch(code or ""):
        return code
    return str(ERROR_TEXTS.get(code, ERROR_TEXTS[FAILED]))
