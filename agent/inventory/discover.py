"""Finding cameras: static list, WS-Discovery, SSDP, the vendors' SADP and DHDiscover, and a
TCP connect sweep.

Multicast (WS-Discovery Probe, SSDP M-SEARCH, SADP inquiry) is used when ``multicast`` is set:
on the camera segment itself. Otherwise each known address is asked by unicast (a loopback lab,
or a segment where multicast is filtered). DHDiscover is asked by unicast only.

SADP and DHDiscover answers carry the device's serial number and MAC, and say whether it is a
recorder; ``merge`` keeps them with the address's other facts, and the inventory diff keys a
device by them (``agent.inventory.diff``).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar

from agent.probes import ports, ssdp, vendordiscovery, wsdiscovery
from agent.probes._udp import MULTICAST_GROUP
from agent.scope import OutOfScope
from agent.vendors.base import CameraError

__all__ = [
    "MAX_SWEEP_HOSTS",
    "Host",
    "OutOfScope",
    "Scope",
    "merge",
    "ssdp_hosts",
    "static_hosts",
    "sweep",
    "vendor_hosts",
    "ws_discovery_hosts",
]

_T = TypeVar("_T")
MAX_SWEEP_HOSTS: Final = 4096
UNICAST_AT_ONCE: Final = 32  # unicast discovery datagrams in flight (each waits its window)
SWEEP_PORTS: Final = (80, 443, 554, 8000, 37777)  # baseline INV-04
_VENDOR_WORDS: Final = (("hikvision", "Hikvision"), ("dahua", "Dahua"), ("axis", "Axis"))


@dataclass(frozen=True, slots=True)
class Scope:
    """The camera subnets the owner authorised (baseline §5) and the port plan."""

    subnets: tuple[ipaddress.IPv4Network, ...]
    port_offset: int = 0

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.subnets)

    def require(self, network: ipaddress.IPv4Network) -> None:
        if not any(network.subnet_of(net) for net in self.subnets):
            allowed = ", ".join(str(n) for n in self.subnets) or "none configured"
            raise OutOfScope(f"{network} is outside the camera subnets ({allowed})")


@dataclass(frozen=True, slots=True)
class Host:
    address: str
    sources: frozenset[str]  # "static", "ws-discovery", "ssdp", "sweep"
    endpoint: str | None = None  # WS-Discovery EPR or UPnP UDN: stable across address changes
    vendor_hint: str | None = None
    open_ports: tuple[int, ...] = ()  # standard numbers
    xaddrs: tuple[str, ...] = field(default_factory=tuple)
    serial: str | None = None
    mac: str | None = None  # aa:bb:cc:dd:ee:ff
    model: str | None = None
    recorder: bool = False  # an NVR or DVR (by its own discovery answer)


def _vendor(text: str) -> str | None:
    lowered = text.lower()
    return next((name for word, name in _VENDOR_WORDS if word in lowered), None)


def static_hosts(addresses: Iterable[str], scope: Scope) -> list[Host]:
    """The configured cameras; an address outside the subnets is refused, not skipped."""
    out = []
    for address in addresses:
        if not scope.contains(address):
            raise OutOfScope(f"configured camera {address} is outside the camera subnets")
        out.append(Host(address, frozenset({"static"})))
    return out


async def _ask(
    ask: Callable[[str, bool], Awaitable[list[_T]]],
    scope: Scope,
    unicast: Sequence[str],
    *,
    multicast: bool,
    skip_errors: bool = True,
) -> list[_T]:
    """Answers to ``ask(group, True)`` when ``multicast``, then to ``ask(address, False)`` for
    each of ``unicast`` (all inside the scope, at most ``UNICAST_AT_ONCE`` at a time; a camera
    error skips that address unless ``skip_errors`` is off)."""
    for address in unicast:
        if not scope.contains(address):
            raise OutOfScope(f"{address} is outside the camera subnets")
    out: list[_T] = []
    if multicast:
        out += await ask(MULTICAST_GROUP, True)
    gate = asyncio.Semaphore(UNICAST_AT_ONCE)

    async def one(address: str) -> list[_T]:
        async with gate:
            try:
                return await ask(address, False)
            except CameraError:
                if not skip_errors:
                    raise
                return []

    for answers in await asyncio.gather(*(one(a) for a in unicast)):
        out += answers
    return out


async def ws_discovery_hosts(
    scope: Scope, *, window_s: float, unicast: Sequence[str] = (), multicast: bool = False
) -> list[Host]:
    """NetworkVideoTransmitters answering a Probe (multicast, or unicast to ``unicast``)."""
    port = wsdiscovery.PORT + scope.port_offset

    async def ask(host: str, group: bool) -> list[wsdiscovery.ProbeMatch]:
        return await wsdiscovery.probe(host, port, window_s=window_s, multicast=group)

    hosts = []
    for match in await _ask(ask, scope, unicast, multicast=multicast):
        if not scope.contains(match.sender):
            continue
        names = " ".join(s for s in match.scopes if "/name/" in s or "/hardware/" in s)
        hosts.append(
            Host(
                match.sender,
                frozenset({"ws-discovery"}),
                endpoint=match.endpoint,
                vendor_hint=_vendor(names),
                xaddrs=match.xaddrs,
            )
        )
    return hosts


async def ssdp_hosts(
    scope: Scope, *, window_s: float, unicast: Sequence[str] = (), multicast: bool = False
) -> list[Host]:
    """UPnP devices answering M-SEARCH ssdp:all (multicast, or unicast to ``unicast``)."""
    port = ssdp.PORT + scope.port_offset

    async def ask(host: str, group: bool) -> list[ssdp.SsdpReply]:
        return await ssdp.search(host, port, window_s=window_s, multicast=group)

    hosts = []
    for reply in await _ask(ask, scope, unicast, multicast=multicast, skip_errors=False):
        if not scope.contains(reply.sender):
            continue
        udn = reply.usn.split("::")[0] or None
        hosts.append(
            Host(reply.sender, frozenset({"ssdp"}), endpoint=udn, vendor_hint=_vendor(reply.server))
        )
    return hosts


async def vendor_hosts(
    protocol: str,
    scope: Scope,
    *,
    window_s: float,
    unicast: Sequence[str] = (),
    multicast: bool = False,
) -> list[Host]:
    """Devices answering the vendor discovery ``protocol`` ("sadp", "dhdiscover"; multicast is
    SADP's only), with their serial, MAC, model and whether they are recorders. A device is
    taken at the address it answered from; one claiming another address is noted as is."""
    standard = {"sadp": vendordiscovery.SADP_PORT, "dhdiscover": vendordiscovery.DHDISCOVER_PORT}
    port = standard[protocol] + scope.port_offset

    async def ask(host: str, group: bool) -> list[vendordiscovery.Announcement]:
        return await vendordiscovery.search(
            protocol, host, port, window_s=window_s, multicast=group
        )

    found = await _ask(ask, scope, unicast, multicast=multicast and protocol == "sadp")
    return [
        Host(
            a.sender,
            frozenset({protocol}),
            vendor_hint=a.family.capitalize(),
            serial=a.serial,
            mac=a.mac,
            model=a.model,
            recorder=a.device_class == "recorder",
        )
        for a in found
        if scope.contains(a.sender)
    ]


async def sweep(
    network: ipaddress.IPv4Network,
    scope: Scope,
    *,
    timeout_s: float,
    concurrency: int = 64,
    probe_ports: Sequence[int] = SWEEP_PORTS,
) -> list[Host]:
    """TCP connect sweep of ``network``: hosts with any camera port open.

    ``OutOfScope`` unless ``network`` lies inside a camera subnet; ``ValueError`` above
    ``MAX_SWEEP_HOSTS`` addresses.
    """
    scope.require(network)
    addresses = [str(a) for a in (network.hosts() if network.prefixlen < 31 else network)]
    if len(addresses) > MAX_SWEEP_HOSTS:
        raise ValueError(f"{network} has {len(addresses)} addresses, more than {MAX_SWEEP_HOSTS}")
    gate = asyncio.Semaphore(concurrency)
    wanted = {p + scope.port_offset: p for p in probe_ports}

    async def one(address: str) -> Host | None:
        async with gate:
            states = await ports.scan(address, wanted, timeout_s=timeout_s, concurrency=len(wanted))
        found = tuple(sorted(wanted[p] for p, state in states.items() if state == "open"))
        return Host(address, frozenset({"sweep"}), open_ports=found) if found else None

    return [h for h in await asyncio.gather(*(one(a) for a in addresses)) if h is not None]


def merge(*groups: Iterable[Host]) -> dict[str, Host]:
    """One record per address, sources and facts combined (first non-empty value wins)."""
    out: dict[str, Host] = {}
    for host in (h for group in groups for h in group):
        seen = out.get(host.address)
        if seen is None:
            out[host.address] = host
            continue
        out[host.address] = replace(
            seen,
            sources=seen.sources | host.sources,
            endpoint=seen.endpoint or host.endpoint,
            vendor_hint=seen.vendor_hint or host.vendor_hint,
            open_ports=tuple(sorted(set(seen.open_ports) | set(host.open_ports))),
            xaddrs=seen.xaddrs or host.xaddrs,
            serial=seen.serial or host.serial,
            mac=seen.mac or host.mac,
            model=seen.model or host.model,
            recorder=seen.recorder or host.recorder,
        )
    return out
