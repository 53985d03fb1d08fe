"""SVC-06 vendor P2P cloud, SVC-07 dynamic DNS, SVC-08 WS-Discovery: read from the camera.

The vendor API is read first (Hikvision EZVIZ, Dahua T2UServer and DDNS, Axis RemoteService)
with the configured credential; what it leaves unknown is read over ONVIF with the same
credential (GetDynamicDNS, GetDiscoveryMode). A failing vendor read makes the whole check
inconclusive; a failing ONVIF fill only leaves its fields unknown. A service neither interface
reports is not_applicable (``svc.unknown``), never a pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from agent.checks.base import Check, CheckContext
from agent.checks.interfaces import ONVIF, adapter_of, onvif_adapter
from agent.vendors.base import CameraError
from agent.vendors.models import Capability, ServiceState
from protocol.messages import Finding, Severity


@dataclass(frozen=True, slots=True)
class _Service:
    field: str  # ServiceState attribute
    control: str
    on: str  # finding code when enabled (fail)
    off: str  # finding code when disabled (pass)
    severity: Severity


SERVICES = (
    _Service("p2p", "SVC-06", "svc.p2p_enabled", "svc.p2p_disabled", "high"),
    _Service("ddns", "SVC-07", "svc.ddns_enabled", "svc.ddns_disabled", "medium"),
    _Service("discoverable", "SVC-08", "svc.discoverable", "svc.not_discoverable", "low"),
)


class RemoteServicesCheck(Check):
    id = "remote-services"
    controls = ("SVC-06", "SVC-07", "SVC-08")
    requires = frozenset({Capability.SERVICES})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        states = [(adapter.vendor, await adapter.services())]
        if adapter.vendor != ONVIF and any(
            getattr(states[0][1], s.field) is None for s in SERVICES
        ):
            async with onvif_adapter(ctx, adapter.credential) as onvif:
                # No ONVIF, or it refuses us: those fields stay unknown.
                with contextlib.suppress(CameraError):
                    if onvif is not None:
                        states.append((ONVIF, await onvif.services()))
        return [self._judge(ctx, service, states) for service in SERVICES]

    def _judge(
        self, ctx: CheckContext, service: _Service, states: list[tuple[str, ServiceState]]
    ) -> Finding:
        controls = (service.control,)
        for source, state in states:
            value = getattr(state, service.field)
            if value is None:
                continue
            return self.finding(
                ctx,
                service.on if value else service.off,
                "fail" if value else "pass",
                service.severity if value else "info",
                evidence={"source": source},
                controls=controls,
            )
        return self.finding(
            ctx,
            "svc.unknown",
            "not_applicable",
            "info",
            reason=f"{service.field} is not reported by {'/'.join(s for s, _ in states)}",
            evidence={"service": service.field},
            controls=controls,
        )
