"""Outbound HTTP requests to places a team chose: never to this machine or its network.

A team admin stores URLs (a Slack webhook, an ERP endpoint, a service's base URL) that the
server then calls. Without a check, such a URL could point at the server itself
(``http://127.0.0.1:8000``), a database or admin page on the private network, or a cloud
metadata service (``http://169.254.169.254/``, which hands out the machine's credentials).

Two checks keep requests out of there:

- **When a URL is saved**, :func:`check_url` resolves its host and refuses it if any address
  is loopback, private (RFC 1918, ``fc00::/7``), link-local (``169.254.0.0/16``,
  ``fe80::/10``), shared (CGNAT ``100.64.0.0/10``), unspecified, multicast, reserved or
  otherwise not publicly routable, the IPv4 forms of these inside IPv6 (``::ffff:…``,
  6to4, NAT64) included, or if the host is a cloud metadata name.
- **When a request is sent** through :func:`http_client`, the host is resolved again, every
  address checked the same way, and the connection is made to a checked address (so a DNS
  answer that changed since the save, or changes between the check and the connection,
  cannot lead elsewhere). TLS still verifies the URL's host name. Redirects are never
  followed: a 3xx answer with a ``Location`` raises :class:`RedirectRefused`.

Every request the client sends while a side effect runs carries ``Dealflow-Hops: <n>``, the
depth of the event the side effect belongs to plus one (see :func:`hops`). A Dealflow hook
reads it as the depth of the event it makes, so a workflow whose side effect posts back to a
Dealflow hook (its own team's, or another's) stops at the depth limit instead of echoing
for ever.

Refusals are :class:`OutboundRefused`, a permanent :class:`ActionError`: an execution
refused this way is ``dead`` at once, with the reason as its error.

The operator's allow-list, ``outbound_allow`` (``DEALFLOW_OUTBOUND_ALLOW``: host names, IP
addresses and CIDR blocks, comma-separated), admits hosts on purpose: a host named there is
admitted whatever it resolves to, an address inside a listed block is admitted whatever host
led to it.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpcore
import httpx

from server.core.action import ActionError
from server.core.errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "DEALFLOW_OUTBOUND_ALLOW"
"""The environment variable of the allow-list, named in every refusal."""

SCHEMES = ("http", "https")

HOPS_HEADER = "Dealflow-Hops"
"""The header that counts how many workflow side effects led to a request (see :func:`hops`)."""
_hops: ContextVar[int | None] = ContextVar("dealflow_hops", default=None)

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
"""Names of cloud metadata services, refused whatever they resolve to."""

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCATION_SHOWN = 200
"""Characters of a redirect's ``Location`` kept in the error."""


class OutboundRefused(ActionError):
    """A URL or request refused as an outbound target; permanent.

    ``field`` is the setting or credential that held the URL (None at send time), ``host``
    the URL's host, ``address`` the refused address (None when the name itself is refused),
    ``reason`` what kind of address it is."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        host: str | None = None,
        address: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, permanent=True)
        self.field = field
        self.host = host
        self.address = address
        self.reason = reason


class RedirectRefused(OutboundRefused):
    """A 3xx answer with a ``Location``: redirects are not followed. Permanent."""

    def __init__(self, message: str, *, host: str, status: int, location: str) -> None:
        super().__init__(message, host=host, reason="redirect")
        self.status = status
        self.location = location


# --- the allow-list --------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """Host names (lower case, no trailing dot) and address blocks admitted on purpose."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``127.0.0.1``, ``localhost``, ``10.0.0.0/8``, ``::1``… An entry with a ``/`` that
        is not a CIDR block is a :class:`ConfigError` naming it."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if entry.startswith("[") and entry.endswith("]"):
                entry = entry[1:-1]
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                if "/" in entry:
                    raise ConfigError(
                        f"{SETTING}: {raw.strip()!r} is not a CIDR block (such as 10.0.0.0/8)"
                    ) from None
            hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def admits_host(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def admits_address(self, address: Address) -> bool:
        return any(
            address in network for network in self.networks if network.version == address.version
        )


def allow_list(settings: Any) -> AllowList:
    """The allow-list of ``settings`` (empty when it has none, as for ``None``)."""
    return _parsed(tuple(getattr(settings, "outbound_allow", ()) or ()))


@lru_cache(maxsize=32)
def _parsed(entries: tuple[str, ...]) -> AllowList:
    return AllowList.parse(entries)


# --- what an address is ----------------------------------------------------------------------


def refusal_reason(address: Address) -> str | None:
    """Why ``address`` is no outbound target (``"a loopback address"``), or None when it
    is a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"{inner} (as IPv6 {address})" if inner else None
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services answer at 169.254.169.254)"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "an address that is not publicly routable"
    return None


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def resolve(host: str, port: int | None) -> list[Address]:
    """Every address ``host`` resolves to, in the resolver's order, duplicates dropped.
    Numeric forms the C library reads (``2130706433``, ``0x7f.1``) resolve like
    names, so they are checked as what they connect to. :class:`socket.gaierror` when the
    name does not resolve."""
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _where(field: str | None, host: str) -> str:
    return f"{field or 'outbound request'}: host {host!r}"


def refused_name(host: str, field: str | None) -> OutboundRefused:
    return OutboundRefused(
        f"{_where(field, host)} is a cloud metadata service; Dealflow does not send requests "
        f"to it (an operator can admit the host with {SETTING})",
        field=field,
        host=host,
        reason="a cloud metadata service",
    )


def check_addresses(
    host: str, addresses: Iterable[Address], allow: AllowList, field: str | None = None
) -> None:
    """Raise :class:`OutboundRefused` for the first of ``addresses`` that is no outbound
    target and is not admitted by ``allow``."""
    for address in addresses:
        if allow.admits_address(address):
            continue
        reason = refusal_reason(address)
        if reason is None:
            continue
        what = f"is {reason}" if host == str(address) else f"resolves to {address}, {reason}"
        raise OutboundRefused(
            f"{_where(field, host)} {what}; Dealflow does not send requests there "
            f"(an operator can admit it with {SETTING}, e.g. {SETTING}={host})",
            field=field,
            host=host,
            address=str(address),
            reason=reason,
        )


def check_url(url: str, allow: AllowList | Iterable[str] = (), field: str = "url") -> None:
    """Refuse ``url`` as an outbound target, with :class:`OutboundRefused` naming ``field``,
    the host, the address and why: its scheme must be http or https, its host must not be
    a metadata name, and no address it resolves to may be one :func:`refusal_reason`
    refuses, unless ``allow`` admits the host or the address.

    A host that does not resolve now is let through: it cannot be judged, and every request
    checks again before it connects. The URL itself is never put into the message (it may
    be a secret, such as a Slack webhook URL)."""
    allow = allow if isinstance(allow, AllowList) else AllowList.parse(allow)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise OutboundRefused(f"{field}: not a valid URL", field=field, reason="invalid") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise OutboundRefused(
            f"{field}: must be an http or https URL with a host", field=field, reason="scheme"
        )
    host = _normal_host(parsed.host)
    if allow.admits_host(host):
        return
    if host in METADATA_HOSTS:
        raise refused_name(host, field)
    try:
        addresses = resolve(host, parsed.port)
    except (OSError, UnicodeError, ValueError):
        return
    check_addresses(host, addresses, allow, field)


def is_url(value: str) -> bool:
    """Whether ``value`` is meant as an http(s) URL (it starts with ``http://`` or
    ``https://``, in any case)."""
    return value.strip().lower().startswith(("http://", "https://"))


# --- sending ---------------------------------------------------------------------------------


class CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, checks every address, and connects to a checked one."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        name = _normal_host(host)
        if self.allow.admits_host(name):
            addresses = None
        elif name in METADATA_HOSTS:
            raise refused_name(name, None)
        else:
            try:
                addresses = resolve(name, port)
            except (OSError, UnicodeError, ValueError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {name!r}: {exc}") from exc
            check_addresses(name, addresses, self.allow)
        if addresses is None:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{name!r} has no address")


class CheckedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connections go through :class:`CheckedBackend`. No
    proxy: the address checked must be the one connected to."""

    def __init__(self, allow: AllowList) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allow),
        )


def refuse_redirect(response: httpx.Response) -> None:
    """A response hook: a 3xx with a ``Location`` is :class:`RedirectRefused`."""
    if not response.has_redirect_location:
        return
    location = response.headers["Location"]
    shown = location if len(location) <= _LOCATION_SHOWN else location[: _LOCATION_SHOWN - 1] + "…"
    host = response.request.url.host
    raise RedirectRefused(
        f"outbound request: host {host!r} answered HTTP {response.status_code}, a redirect to "
        f"{shown} (redirects are not followed: configure the final URL)",
        host=host,
        status=response.status_code,
        location=location,
    )


@contextmanager
def hops(count: int | None) -> Iterator[None]:
    """Within this block (in this thread), every request of :func:`http_client` carries
    ``Dealflow-Hops: <count>``; the runner wraps each side effect in it. None: no header."""
    token = _hops.set(count)
    try:
        yield
    finally:
        _hops.reset(token)


def add_hops(request: httpx.Request) -> None:
    """A request hook: the ``Dealflow-Hops`` header of the side effect being run, if any."""
    count = _hops.get()
    if count is not None:
        request.headers[HOPS_HEADER] = str(count)


def http_client(settings: Any = None, *, timeout: float = 10.0) -> httpx.Client:
    """The shared HTTP client for outbound requests under ``settings``' allow-list: every
    connection checked (see the module docstring), redirects refused, no proxies from the
    environment. While a side effect runs, requests carry its ``Dealflow-Hops``. One client
    per allow-list and timeout, kept for the process, so connections are reused; safe to
    share between threads."""
    return _client(tuple(getattr(settings, "outbound_allow", ()) or ()), float(timeout))


@lru_cache(maxsize=32)
def _client(allow: tuple[str, ...], timeout: float) -> httpx.Client:
    return httpx.Client(
        transport=CheckedTransport(_parsed(allow)),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        event_hooks={"request": [add_hops], "response": [refuse_redirect]},
    )


__all__ = [
    "HOPS_HEADER",
    "METADATA_HOSTS",
    "SETTING",
    "AllowList",
    "OutboundRefused",
    "RedirectRefused",
    "allow_list",
    "check_url",
    "hops",
    "http_client",
    "is_url",
    "refusal_reason",
    "resolve",
]
