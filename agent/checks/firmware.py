"""FW-01 / FW-02: the firmware against the signed advisory feed. Version matching only.

Findings, one per matched or undecidable CVE:

* ``fw.known_exploited`` fail, critical: a KEV-listed CVE matches (FW-01);
* ``fw.vulnerable`` fail, rule severity: another CVE matches; a fix exists, so the firmware is
  also not the latest security release (FW-01, FW-02), unless the vendor will not fix it;
* ``fw.kev_unscoped`` / ``fw.undetermined`` inconclusive: the rule cannot decide for this camera;
* ``fw.no_known_advisory`` pass (FW-01 only: "latest release" needs the collector's catalogue);
* ``fw.identity_unknown``, ``fw.version_unparsed``, ``fw.feed_unavailable`` inconclusive.
"""

from __future__ import annotations

from agent.advisories.match import Match, MatchResult
from agent.checks.base import Check, CheckContext
from protocol.messages import EvidenceValue, Finding

_FW01 = ("FW-01",)
_FW01_02 = ("FW-01", "FW-02")


def _remedy(match: Match) -> str:
    advisory = match.advisory
    if advisory.no_fix:
        return "replace the device (no fix from the vendor)"
    if advisory.fixed_in is not None:
        return f"update to {advisory.fixed_in} or later"
    return "update to the vendor's fixed release"


class FirmwareCheck(Check):
    id = "firmware"
    controls = _FW01_02
    # No capability: the identity may come from an adapter or from discovery (ONVIF scopes,
    # banners) before any adapter is chosen; an unknown identity is reported as inconclusive.

    async def run(self, ctx: CheckContext) -> list[Finding]:
        identity = ctx.identity
        if ctx.advisories is None:
            reason = "no verified advisory feed is loaded"
            return [
                self.finding(
                    ctx,
                    "fw.feed_unavailable",
                    "inconclusive",
                    "info",
                    reason=reason,
                    evidence={"error": "no_feed"},
                    controls=_FW01,
                )
            ]
        if identity is None or not (identity.vendor and identity.firmware):
            reason = "vendor or firmware version unknown"
            return [
                self.finding(
                    ctx,
                    "fw.identity_unknown",
                    "inconclusive",
                    "info",
                    reason=reason,
                    controls=_FW01,
                )
            ]
        result = ctx.advisories.match(identity)
        base: dict[str, EvidenceValue] = {
            "firmware": identity.firmware,
            "model": identity.model,
            "feed_version": ctx.advisories.version,
        }
        findings = [self._matched(ctx, m, base) for m in result.matches]
        findings += [
            self.finding(
                ctx,
                "fw.undetermined",
                "inconclusive",
                "info",
                reason=f"{u.advisory.cve} needs the {u.missing}",
                evidence={**base, "cve": u.advisory.cve, "field": u.missing},
                controls=_FW01,
            )
            for u in result.undetermined
        ]
        if result.version is None and result.rules_for_vendor and not findings:
            return [self._unparsed(ctx, result, base)]
        if not findings:
            findings.append(
                self.finding(
                    ctx,
                    "fw.no_known_advisory",
                    "pass",
                    "info",
                    evidence={**base, "vendor": result.vendor},
                    controls=_FW01,
                )
            )
        return findings

    def _unparsed(
        self, ctx: CheckContext, result: MatchResult, base: dict[str, EvidenceValue]
    ) -> Finding:
        scheme = "vendor" if result.vendor is None else result.vendor
        return self.finding(
            ctx,
            "fw.version_unparsed",
            "inconclusive",
            "info",
            reason=result.version_error or "firmware version missing",
            evidence={"firmware": base["firmware"], "scheme": scheme},
            controls=_FW01,
        )

    def _matched(self, ctx: CheckContext, match: Match, base: dict[str, EvidenceValue]) -> Finding:
        advisory = match.advisory
        evidence: dict[str, EvidenceValue] = {
            **base,
            "cve": advisory.cve,
            "rule": advisory.id,
            "confidence": match.confidence,
            "remedy": _remedy(match),
            "no_fix": advisory.no_fix,
        }
        if match.confidence == "possible":
            return self.finding(
                ctx,
                "fw.kev_unscoped",
                "inconclusive",
                "info",
                reason=f"{advisory.cve}: no version scope for {advisory.product}",
                evidence={**evidence, "vendor": advisory.vendor, "product": advisory.product},
                controls=_FW01,
            )
        if advisory.kev is not None:
            kev_date = advisory.kev.date_added.isoformat()
            return self.finding(
                ctx,
                "fw.known_exploited",
                "fail",
                "critical",
                evidence={**evidence, "kev_date_added": kev_date},
                controls=_FW01 if advisory.no_fix else _FW01_02,
            )
        return self.finding(
            ctx,
            "fw.vulnerable",
            "fail",
            advisory.severity,
            evidence=evidence,
            controls=_FW01 if advisory.no_fix else _FW01_02,
        )
