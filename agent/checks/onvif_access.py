"""AUTH-10: ONVIF operations that answer a caller without credentials.

ONVIF Core lets only the PRE_AUTH operations (GetSystemDateAndTime, GetServices,
GetServiceCapabilities, GetCapabilities, GetHostname, GetWsdlUrl, GetEndpointReference) answer
anonymously. The adapter's ``unauthenticated_operations()`` probes protected ones
(GetDeviceInformation, GetProfiles, GetStreamUri, GetNetworkInterfaces, GetUsers) with no
credential at all, so nothing counts
towards a lockout. A camera identified by its vendor API is probed through its ONVIF interface.

Findings: ``onvif.anonymous_access`` fail, critical, naming the operations; ``onvif.anonymous_
refused`` pass; ``onvif.not_answering`` not_applicable when the camera does not speak ONVIF
(no answer, or no ONVIF adapter); timeouts and garbage on an ONVIF camera stay inconclusive.
"""

from __future__ import annotations

from agent.checks.base import Check, CheckContext
from agent.checks.interfaces import adapter_of, onvif_adapter
from agent.vendors.base import Unreachable, Unsupported
from agent.vendors.models import Capability
from protocol.messages import Finding


class AnonymousOnvifCheck(Check):
    id = "onvif-anonymous"
    controls = ("AUTH-10",)
    requires = frozenset({Capability.IDENTITY})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        async with onvif_adapter(ctx, adapter.credential) as onvif:
            if onvif is None:
                return [self._absent(ctx, "no ONVIF adapter is registered")]
            try:
                answered = await onvif.unauthenticated_operations()
            except (Unsupported, Unreachable) as exc:
                if onvif is adapter:  # the camera was identified over ONVIF: a real failure
                    raise
                return [self._absent(ctx, exc.code)]
        probed = ",".join(sorted(answered))
        open_ops = sorted(op for op, ran in answered.items() if ran)
        if open_ops:
            return [
                self.finding(
                    ctx,
                    "onvif.anonymous_access",
                    "fail",
                    "critical",
                    evidence={"operations": ",".join(open_ops), "probed": probed},
                )
            ]
        return [
            self.finding(
                ctx, "onvif.anonymous_refused", "pass", "info", evidence={"probed": probed}
            )
        ]

    def _absent(self, ctx: CheckContext, error: str) -> Finding:
        return self.finding(
            ctx,
            "onvif.not_answering",
            "not_applicable",
            "info",
            reason="the camera does not answer ONVIF",
            evidence={"error": error},
        )
