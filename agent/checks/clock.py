"""LOG-01: the camera clock against the agent's, and whether it is kept by NTP.

Log timestamps and WS-UsernameToken both depend on the camera clock. The vendor API's time read
comes first; what it leaves unknown (Axis has no clock read, some Hikvision firmware no
``/ISAPI/System/time``) is filled from ONVIF ``GetSystemDateAndTime``, which is PRE_AUTH: no
credential is sent for it.

Skew thresholds: up to 30 s passes; over 30 s fails low (a warning); over 300 s fails medium
(WS-Security tokens are refused and logs cannot be correlated). A clock set manually fails
medium; NTP passes. A fact neither interface reports is not_applicable.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from agent.checks.base import Check, CheckContext
from agent.checks.interfaces import adapter_of, onvif_adapter
from agent.vendors.base import CameraError, Unsupported
from agent.vendors.models import Capability, TimeInfo
from protocol.messages import EvidenceValue, Finding

WARN_SKEW_S = 30.0
FAIL_SKEW_S = 300.0


class ClockCheck(Check):
    id = "clock"
    controls = ("LOG-01",)
    requires = frozenset({Capability.IDENTITY})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        info, skew = TimeInfo(), None
        if adapter.supports(Capability.TIME):
            with contextlib.suppress(Unsupported):  # firmware without the time endpoint
                info = await adapter.time()
                skew = _skew(info, ctx.clock.now())
        if skew is None or info.ntp is None:
            async with onvif_adapter(ctx, None) as onvif:
                with contextlib.suppress(CameraError):  # no ONVIF: the facts stay unknown
                    if onvif is not None:
                        pre_auth = await onvif.time()
                        skew = skew if skew is not None else _skew(pre_auth, ctx.clock.now())
                        info = TimeInfo(
                            ntp=info.ntp if info.ntp is not None else pre_auth.ntp,
                            ntp_servers=info.ntp_servers or pre_auth.ntp_servers,
                        )
        return [self._clock(ctx, skew), self._source(ctx, info)]

    def _clock(self, ctx: CheckContext, skew: int | None) -> Finding:
        if skew is None:
            return self.finding(
                ctx,
                "log.clock_unknown",
                "not_applicable",
                "info",
                reason="no interface reports the camera clock",
            )
        evidence: dict[str, EvidenceValue] = {"skew_s": skew}
        if abs(skew) > FAIL_SKEW_S:
            return self.finding(ctx, "log.clock_skew", "fail", "medium", evidence=evidence)
        if abs(skew) > WARN_SKEW_S:
            return self.finding(ctx, "log.clock_skew", "fail", "low", evidence=evidence)
        return self.finding(ctx, "log.clock_ok", "pass", "info", evidence=evidence)

    def _source(self, ctx: CheckContext, info: TimeInfo) -> Finding:
        if info.ntp is None:
            return self.finding(
                ctx,
                "log.time_source_unknown",
                "not_applicable",
                "info",
                reason="no interface reports NTP or manual time",
            )
        if not info.ntp:
            return self.finding(ctx, "log.time_manual", "fail", "medium")
        servers = ",".join(info.ntp_servers) or "servers not reported"
        return self.finding(ctx, "log.time_ntp", "pass", "info", evidence={"servers": servers})


def _skew(info: TimeInfo, now: datetime) -> int | None:
    """Whole seconds the camera is ahead of ``now`` (negative: behind); None if unknown."""
    if info.camera_utc is None:
        return None
    return round((info.camera_utc - now).total_seconds())
