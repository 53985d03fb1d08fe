"""SVC-05: the site router forwards no port to a camera (UPnP-IGD mappings); REC-02: above
all not the vendor SDK/DVRIP port of a recorder or camera (Hikvision 8000, Dahua 37777).

A site-level fact attached to the camera it concerns: the routers in ``NetSettings.routers``
are asked once per ``CACHE_S`` for their mapping tables (not once per camera), and each camera
gets a fail for every mapping whose internal client is its address. Static NAT rules that the
router does not publish through UPnP-IGD cannot be seen this way; the pass says so.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from agent.checks.base import CheckContext
from agent.checks.netprobe import NetCheck, NetSettings
from agent.probes import igd, ssdp
from agent.vendors.base import CameraError
from protocol.messages import EvidenceValue, Finding

__all__ = ["RouterMappingCheck"]

CACHE_S: Final = 60.0
SDK_PORTS: Final = frozenset({8000, 37777})  # Hikvision SDK, Dahua DVRIP (standard numbers)


class RouterMappingCheck(NetCheck):
    id = "router_mappings"
    controls = ("SVC-05",)

    def __init__(self, settings: NetSettings | None = None) -> None:
        super().__init__(settings)
        self._cache: dict[str, tuple[float, list[igd.PortMapping]]] = {}
        self._lock = asyncio.Lock()

    async def _mappings(self, router: str) -> list[igd.PortMapping]:
        async with self._lock:
            cached = self._cache.get(router)
            if cached is not None and time.monotonic() - cached[0] < CACHE_S:
                return cached[1]
            s = self.settings
            found = await igd.port_mappings(router, s.shifted(ssdp.PORT), timeout_s=s.timeout_s)
            self._cache[router] = (time.monotonic(), found)
            return found

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        if not self.settings.routers:
            return [
                self.finding(
                    ctx,
                    "exp.no_router",
                    "not_applicable",
                    "info",
                    reason="no site router is configured for UPnP-IGD queries",
                )
            ]
        findings = []
        for router in self.settings.routers:
            try:
                mappings = await self._mappings(router)
            except CameraError as exc:
                findings.append(
                    self.finding(
                        ctx,
                        "exp.router_unanswered",
                        "inconclusive",
                        "info",
                        reason=f"router {router}: {exc.detail}"[:200],
                        evidence={"router": router, "error": exc.code},
                    )
                )
                continue
            mine = [m for m in mappings if m.internal_client == ctx.target.address]
            findings += [
                self.finding(
                    ctx,
                    "exp.port_forward",
                    "fail",
                    "critical",
                    evidence={
                        "router": router,
                        "protocol": m.protocol,
                        "external_port": m.external_port,
                        "internal_port": m.internal_port,
                        "enabled": m.enabled,
                        "description": m.description,
                    },
                )
                for m in mine
            ]
            sdk = {self.settings.shifted(p) for p in SDK_PORTS}
            findings += [
                self.finding(
                    ctx,
                    "exp.sdk_port_forward",
                    "fail",
                    "critical",
                    controls=("REC-02",),
                    evidence={
                        "router": router,
                        "external_port": m.external_port,
                        "internal_port": m.internal_port,
                    },
                )
                for m in mine
                if m.internal_port in sdk
            ]
            if not mine:
                evidence: dict[str, EvidenceValue] = {"router": router, "count": len(mappings)}
                findings.append(
                    self.finding(ctx, "exp.no_port_forward", "pass", "info", evidence=evidence)
                )
        return findings
