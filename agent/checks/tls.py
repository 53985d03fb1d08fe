"""TLS of the HTTPS interface: COM-02 (protocol versions, key, certificate dates) and COM-03
(the key's SPKI SHA-256 as evidence).

COM-02 fails on TLS 1.0/1.1 accepted, an expired or not-yet-valid certificate, an RSA key under
2048 bits (EC under 256), or a NULL/EXPORT/RC4/3DES/DES cipher chosen. A self-signed certificate
is recorded, not failed (cameras ship them; the baseline does not forbid it).

COM-03 cannot be decided on one camera: the finding carries the SPKI hash and says that the
collector compares it across the fleet (the same key on two devices is the failure). Within
the site, ``SharedTlsKeyCheck`` (a site check) fails every camera whose key another audited
camera presents too; a key unique here stays inconclusive.
"""

from __future__ import annotations

from typing import Final

from agent.checks.base import CheckContext, make_finding
from agent.checks.netprobe import NetCheck
from agent.checks.site import Site, SiteCheck, SiteFindings
from agent.probes import ports, tls
from agent.vendors.base import Unreachable
from protocol.messages import Camera, EvidenceValue, Finding

__all__ = ["SharedTlsKeyCheck", "TlsCheck"]

OLD_VERSIONS: Final = ("TLSv1", "TLSv1.1")
WEAK_CIPHER_WORDS: Final = ("NULL", "EXP", "RC4", "3DES", "DES-CBC", "ANON")
MIN_RSA_BITS: Final = 2048
MIN_EC_BITS: Final = 256


def problems(report: tls.TlsReport, now_ts: float) -> list[str]:
    """What breaks COM-02 in ``report`` at time ``now_ts`` (POSIX seconds)."""
    cert = report.certificate
    found = [f"{v} accepted" for v in OLD_VERSIONS if report.accepted.get(v)]
    if cert.not_after.timestamp() < now_ts:
        found.append("certificate expired")
    if cert.not_before.timestamp() > now_ts:
        found.append("certificate not yet valid")
    if cert.key_type == "RSA" and cert.key_bits < MIN_RSA_BITS:
        found.append(f"RSA-{cert.key_bits} key")
    if cert.key_type.startswith("EC") and cert.key_bits < MIN_EC_BITS:
        found.append(f"{cert.key_type} key")
    weak = sorted(
        {c for c in report.ciphers.values() if any(w in c.upper() for w in WEAK_CIPHER_WORDS)}
    )
    found += [f"weak cipher {c}" for c in weak]
    return found


class TlsCheck(NetCheck):
    id = "tls"
    controls = ("COM-02", "COM-03")

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        host, port = ctx.target.address, self.settings.port(ctx, "https")
        try:
            report = await tls.scan(host, port, timeout_s=self.settings.timeout_s)
        except Unreachable:
            closed = await ports.scan(host, [port], timeout_s=self.settings.timeout_s)
            if closed[port] != "closed":
                raise
            return [
                self.finding(
                    ctx,
                    "com.tls_no_https",
                    "not_applicable",
                    "info",
                    reason=f"nothing listens on HTTPS port {port} (see COM-01)",
                    evidence={"port": port},
                )
            ]
        cert = report.certificate
        now = ctx.clock.now()
        accepted = ",".join(v for v, ok in report.accepted.items() if ok)
        untested = ",".join(v for v, ok in report.accepted.items() if ok is None)
        evidence: dict[str, EvidenceValue] = {
            "port": port,
            "versions": accepted,
            "untested": untested,
            "key": f"{cert.key_type}-{cert.key_bits}",
            "not_after": cert.not_after.isoformat(),
            "days_left": int((cert.not_after - now).total_seconds() // 86400),
            "self_signed": cert.self_signed,
            "issuer": cert.issuer,
            "signature_hash": cert.signature_hash,
        }
        found = problems(report, now.timestamp())
        if found:
            com02 = self.finding(
                ctx,
                "com.tls_weak",
                "fail",
                "high",
                evidence={**evidence, "problems": "; ".join(found)},
                controls=("COM-02",),
            )
        else:
            com02 = self.finding(
                ctx, "com.tls_ok", "pass", "info", evidence=evidence, controls=("COM-02",)
            )
        com03 = self.finding(
            ctx,
            "com.tls_key_fingerprint",
            "inconclusive",
            "info",
            reason="key uniqueness is decided by the collector across the fleet (SPKI hashes)",
            evidence={"port": port, "spki_sha256": cert.spki_sha256, "key": evidence["key"]},
            controls=("COM-03",),
        )
        return [com02, com03]


class SharedTlsKeyCheck(SiteCheck):
    """COM-03 within this site: a TLS key that more than one audited camera presents fails."""

    id = "tls_shared_key"
    controls = ("COM-03",)

    def run(self, site: Site) -> SiteFindings:
        holders: dict[str, list[str]] = {}
        for camera in site.cameras:
            for spki, _ in _fingerprints(camera):
                holders.setdefault(spki, []).append(camera.camera_id)
        shared: dict[str, list[Finding]] = {}
        for camera in site.cameras:
            for spki, check in _fingerprints(camera):
                peers = [c for c in holders[spki] if c != camera.camera_id]
                if peers:
                    shared.setdefault(camera.camera_id, []).append(
                        make_finding(
                            check=check,
                            code="com.tls_key_shared",
                            status="fail",
                            severity="high",
                            controls=("COM-03",),
                            evidence={"spki_sha256": spki, "peers": len(peers)},
                        )
                    )
        return SiteFindings(shared)


def _fingerprints(camera: Camera) -> list[tuple[str, str]]:
    """(SPKI SHA-256, check id) of each key fingerprint the camera's findings carry."""
    return [
        (str(f.evidence["spki_sha256"]), f.check)
        for f in camera.findings
        if f.code == "com.tls_key_fingerprint"
    ]
