"""What the network-probe checks share: their settings and the camera's vendor and ports.

``NetSettings`` is built once from config and given to each probe check; the defaults are the
standard camera ports and safe limits. ``port_offset`` moves every standard port by the same
amount (a port-forwarded test site; the camera lab serves its cameras that way); ports the
inventory recorded in ``Target.ports`` (HTTP, HTTPS, RTSP) win over it.
"""

from __future__ import annotations

import ipaddress
from abc import abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from agent.checks.base import Check, CheckContext
from agent.probes import ports
from agent.probes.ports import CAMERA_PORTS, PortState
from agent.vendors.models import Interface
from protocol.messages import Finding

__all__ = ["STANDARD_PORTS", "VENDOR_PORTS", "NetCheck", "NetSettings", "vendor_of"]

STANDARD_PORTS: Final[Mapping[str, int]] = {
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "http": 80,
    "https": 443,
    "rtsp": 554,
    "snmp": 161,
    "ssdp": 1900,
    "wsd": 3702,
}
_INTERFACES: Final = {"http": Interface.HTTP, "https": Interface.HTTPS, "rtsp": Interface.RTSP}
# TCP ports each vendor documents for a camera in normal service (web, TLS, RTSP, SDK)
VENDOR_PORTS: Final[Mapping[str, frozenset[int]]] = {
    "hikvision": frozenset({80, 443, 554, 8000}),
    "dahua": frozenset({80, 443, 554, 37777}),
    "axis": frozenset({80, 443, 554}),
    "generic": frozenset({80, 443, 554}),
}
_VENDOR_WORDS: Final = (("hik", "hikvision"), ("dahua", "dahua"), ("axis", "axis"))


@dataclass(frozen=True, slots=True)
class NetSettings:
    timeout_s: float = 5.0  # per probe (connect + answer)
    window_s: float = 1.0  # how long to collect UDP answers (SNMP, SSDP, WS-Discovery)
    max_response_bytes: int = 2 * 1024 * 1024
    port_offset: int = 0
    scan_ports: tuple[int, ...] = CAMERA_PORTS
    scan_concurrency: int = 8
    site_allowed_ports: frozenset[int] = frozenset()  # standard numbers the site allows
    snmp_communities: tuple[str, ...] = ("public", "private")
    routers: tuple[str, ...] = ()  # site gateways asked for UPnP-IGD port mappings (SVC-05)
    # the only networks probes may be sent to (baseline §5); empty: no camera is probed
    camera_subnets: tuple[ipaddress.IPv4Network, ...] = ()

    def in_scope(self, address: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.camera_subnets)

    def port(self, ctx: CheckContext, service: str) -> int:
        """The camera's port for ``service`` (a key of ``STANDARD_PORTS``)."""
        interface = _INTERFACES.get(service)
        if interface is not None and interface in ctx.target.ports:
            return ctx.target.ports[interface]
        return STANDARD_PORTS[service] + self.port_offset

    def shifted(self, standard: int) -> int:
        return standard + self.port_offset


def vendor_of(ctx: CheckContext) -> str | None:
    """ "hikvision", "dahua", "axis" from the identity or the discovery hint, else None."""
    for name in (ctx.identity.vendor if ctx.identity else None, ctx.target.vendor_hint):
        lowered = (name or "").lower()
        for word, vendor in _VENDOR_WORDS:
            if word in lowered:
                return vendor
    return None


class NetCheck(Check):
    """A check that probes the camera over the network, only inside the camera subnets."""

    def __init__(self, settings: NetSettings | None = None) -> None:
        self.settings = settings or NetSettings()

    async def run(self, ctx: CheckContext) -> list[Finding]:
        if not self.settings.in_scope(ctx.target.address):
            return [
                self.finding(
                    ctx,
                    "net.out_of_scope",
                    "not_applicable",
                    "info",
                    reason="the address is outside the configured camera subnets",
                    evidence={"address": ctx.target.address},
                )
            ]
        return await self.probe(ctx)

    @abstractmethod
    async def probe(self, ctx: CheckContext) -> list[Finding]: ...

    async def scan(self, ctx: CheckContext, wanted: Collection[int]) -> dict[int, PortState]:
        """The TCP state of each port in ``wanted``; a port another check of this camera's
        audit scanned already (``ctx.port_states``) is not connected to again."""
        known = ctx.port_states if ctx.port_states is not None else {}
        missing = [p for p in wanted if p not in known]
        if missing:
            s = self.settings
            known.update(
                await ports.scan(
                    ctx.target.address,
                    missing,
                    timeout_s=s.timeout_s,
                    concurrency=s.scan_concurrency,
                )
            )
        return {p: known[p] for p in wanted}
