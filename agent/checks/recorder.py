"""Recorders (NVR/DVR): the IP channels and the cameras on them (INV-01, REC-01, REC-03).

``Adapter.channels()`` lists a recorder's IP channels (Hikvision ``ContentMgmt/InputProxy``,
Dahua ``RemoteDevice``); a device without any (a camera) is not applicable. Each channel is
reported as found (``rec.channel``: number, address, model, serial, state), which is what the
audit uses to seat the channel cameras under their recorder (``agent.audit``).

* REC-01: a recorder whose channel list carries its cameras' stored passwords hands them to any
  account allowed to read its configuration (Dahua ``RemoteDevice`` answers ``Password`` in
  clear). Proven only by the answer itself holding a non-empty password for a camera; a list
  without one passes. The password is never kept: only the count of channels that showed one.
* REC-03: a channel the recorder says it cannot reach (``online`` false, Dahua ``Unconnect``)
  fails, one finding per channel; a recorder that does not tell leaves the state unknown.
"""

from __future__ import annotations

from agent.checks.base import Check, CheckContext
from agent.checks.interfaces import adapter_of
from agent.vendors.base import Unsupported
from agent.vendors.models import Capability, RecorderChannel
from protocol.messages import EvidenceValue, Finding

__all__ = ["RecorderCheck", "channel_evidence"]


def _state(channel: RecorderChannel) -> str:
    return {True: "online", False: "offline", None: "unknown"}[channel.online]


def channel_evidence(channel: RecorderChannel) -> dict[str, EvidenceValue]:
    """What a ``rec.channel`` finding says about one channel (no login name, no password)."""
    return {
        "channel": channel.number,
        "address": channel.address,
        "port": channel.port,
        "protocol": channel.protocol,
        "model": channel.model,
        "serial": channel.serial,
        "mac": channel.mac,
        "firmware": channel.firmware,
        "state": _state(channel),
    }


class RecorderCheck(Check):
    id = "recorder"
    controls = ("INV-01",)
    requires = frozenset({Capability.CHANNELS})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        try:
            channels = await adapter_of(ctx).channels()
        except Unsupported:
            return [
                self.finding(
                    ctx,
                    "rec.not_recorder",
                    "not_applicable",
                    "info",
                    reason="the device lists no IP channels",
                )
            ]
        if not channels:  # a DVR's analog inputs, or an NVR with no camera added yet
            return [self.finding(ctx, "rec.no_ip_channels", "not_applicable", "info")]
        out = [
            self.finding(ctx, "rec.channel", "pass", "info", evidence=channel_evidence(c))
            for c in channels
        ]
        out += [
            self.finding(
                ctx,
                "rec.channel_offline",
                "fail",
                "medium",
                controls=("REC-03",),
                evidence=channel_evidence(c),
            )
            for c in channels
            if c.online is False
        ]
        shown = [c for c in channels if c.password_shown]
        if shown:
            out.append(
                self.finding(
                    ctx,
                    "rec.passwords_exposed",
                    "fail",
                    "critical",
                    controls=("REC-01",),
                    evidence={"count": len(shown), "channels": len(channels)},
                )
            )
        else:
            out.append(
                self.finding(
                    ctx,
                    "rec.passwords_withheld",
                    "pass",
                    "info",
                    controls=("REC-01",),
                    evidence={"channels": len(channels)},
                )
            )
        return out
