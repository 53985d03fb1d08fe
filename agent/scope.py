"""The one gate every outbound connection of an audit goes through (baseline §5).

No packet of an audit goes to an address outside ``[network] camera_subnets``, whatever the
source of the address: a configured camera, a discovery answer, or a URL a camera supplied
(ONVIF XAddrs, upload URIs, redirects). The audit enters the site's scope once
(``confined``); every connection function then asks this module before it opens a socket:

* the aiohttp sessions of the vendor APIs and of ONVIF: their connectors create each socket
  through ``socket_factory``, which sees the address after name resolution and before the
  connect (IP literals skip aiohttp's resolver, not the factory);
* the TCP and TLS probes (RTSP, banners, TLS scan, web), the port scan and the sweep
  (``admit`` before ``open_connection``);
* the UDP probes (SNMP, SSDP and WS-Discovery unicast) (``admit`` before the datagram).

A URL a camera supplies is followed only when it points at the camera's own address
(``own_url``), a rule stricter than the subnets: credentials never go anywhere else.

Multicast discovery (``[network] multicast``, TTL 1) goes to its group address by the
operator's choice and is the one exception; the answers it brings are kept only inside the
subnets (``agent.inventory``).

Outside an audit (no scope entered) the gate lets everything through: the firmware updater
and the rotation executor talk to the one camera a signed command names.

The scope is a ``ContextVar``: an audit's tasks (``asyncio.gather`` copies the context) see
it, other work in the same process does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from typing import Final
from urllib.parse import urlsplit

from agent.vendors.base import BadResponse, CameraError, Unreachable

__all__ = [
    "ForeignUrl",
    "OutOfScope",
    "admit",
    "allows",
    "confined",
    "own_url",
    "site_scope",
    "socket_factory",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCOPE: Final[contextvars.ContextVar[tuple[Network, ...] | None]] = contextvars.ContextVar(
    "camwarden_scope", default=None
)


class OutOfScope(CameraError, OSError):
    """An address outside the camera subnets; nothing was sent to it.

    An ``OSError`` as well, so that it passes through the connection libraries (aiohttp's
    happy-eyeballs connect) unchanged as the cause of their connection error."""

    code = "out_of_scope"


async def site_scope(
    subnets: Iterable[ipaddress.IPv4Network], cameras: Iterable[str]
) -> tuple[Network, ...]:
    """The scope of a site's audit: its ``camera_subnets``, or, when it has none, the configured
    cameras' own addresses (a name as it resolves now; one that does not resolve adds nothing).
    Without subnets nothing is discovered, and the network probes send nothing
    (``agent.checks.netprobe``): the cameras are read through their APIs only."""
    networks: list[Network] = list(subnets)
    if networks:
        return tuple(networks)
    loop = asyncio.get_running_loop()
    for address in cameras:
        try:
            networks.append(ipaddress.ip_network(address))
            continue
        except ValueError:
            pass
        try:
            infos = await loop.getaddrinfo(address, None, type=socket.SOCK_STREAM)
        except OSError:
            continue  # the camera's audit reports it unreachable
        networks += [ipaddress.ip_network(str(info[4][0])) for info in infos]
    return tuple(networks)


@contextlib.contextmanager
def confined(networks: Iterable[Network]) -> Iterator[None]:
    """Within the block (and the tasks started in it), connect only inside ``networks``."""
    token = _SCOPE.set(tuple(networks))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def allows(address: str) -> bool:
    """Whether ``address`` (an IP literal) may be sent to; a name is never allowed as such
    while a scope is entered (``admit`` resolves it first)."""
    networks = _SCOPE.get()
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in net for net in networks)


class ForeignUrl(BadResponse):
    """A URL the camera supplied points somewhere else than the camera itself: refused, nothing
    was sent there (credentials and images go only to the camera's own address)."""

    code = "foreign_url"


def own_url(url: str, address: str, what: str) -> str:
    """``url`` when it is an ``http(s)`` URL on the camera's own ``address`` (ONVIF XAddrs,
    ``UploadUri``; any port), else ``ForeignUrl`` naming ``what`` the camera supplied."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # a port that is not a number raises ValueError here
    except ValueError:
        host = None
    if parts.scheme in ("http", "https") and host is not None and _same(host, address):
        return url
    shown = url[:120].encode("ascii", "backslashreplace").decode()
    raise ForeignUrl(f"{what} {shown!r} is not on the camera's address {address}; refused")


def _same(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return host.lower().rstrip(".") == address.lower().rstrip(".")


def _refuse(host: str) -> OutOfScope:
    return OutOfScope(f"{host} is outside the configured camera subnets; nothing was sent")


async def admit(host: str) -> str:
    """The address to connect to for ``host``: ``host`` itself when it is allowed, else its
    first resolved address inside the scope; ``OutOfScope`` when none is, ``Unreachable``
    when the name does not resolve."""
    if _SCOPE.get() is None or allows(host):
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise _refuse(host)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unreachable(f"{host}: the name does not resolve ({exc.strerror})") from exc
    for *_, sockaddr in infos:
        if allows(str(sockaddr[0])):
            return str(sockaddr[0])
    raise _refuse(host)


def socket_factory(
    addr_info: tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]],
) -> socket.socket:
    """aiohttp's ``TCPConnector(socket_factory=...)``: the socket for a resolved address, or
    ``OutOfScope`` before anything is sent to an address outside the scope."""
    family, type_, proto, _, sockaddr = addr_info
    if not allows(str(sockaddr[0])):
        raise _refuse(str(sockaddr[0]))
    return socket.socket(family=family, type=type_, proto=proto)
