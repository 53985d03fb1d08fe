"""INV-01: the camera's identity as identification found it (``agent.audit.identify``).

Pass when vendor, model and firmware version are known; inconclusive otherwise, naming what is
missing (a banner-only camera, or no identity at all). The evidence carries every identity field
the camera gave, plus the address and which adapter or method answered.

INV-02 (the model is on the approved list, with a QCVN 135 certificate) is decided by the
collector from this identity against the list ops maintain; the agent emits nothing for it.
"""

from __future__ import annotations

from agent.checks.base import Check, CheckContext
from protocol.messages import EvidenceValue, Finding

_REQUIRED = ("vendor", "model", "firmware")


class IdentityCheck(Check):
    id = "identity"
    controls = ("INV-01",)
    # No capability: a banner-only camera has no adapter and is still reported (inconclusive).

    async def run(self, ctx: CheckContext) -> list[Finding]:
        identity = ctx.identity
        evidence: dict[str, EvidenceValue] = {
            "address": ctx.target.address,
            "source": identity.source if identity and identity.source else "none",
        }
        if identity is not None:
            evidence |= {
                "vendor": identity.vendor,
                "model": identity.model,
                "firmware": identity.firmware,
                "build_date": identity.build_date.isoformat() if identity.build_date else None,
                "serial": identity.serial,
                "hardware_id": identity.hardware_id,
                "mac": identity.mac,
            }
        missing = [name for name in _REQUIRED if not evidence.get(name)]
        if missing:
            names = ",".join(missing)
            return [
                self.finding(
                    ctx,
                    "inv.unidentified",
                    "inconclusive",
                    "info",
                    reason=f"identification left {names} unknown",
                    evidence={**evidence, "missing": names},
                )
            ]
        return [self.finding(ctx, "inv.identified", "pass", "info", evidence=evidence)]
