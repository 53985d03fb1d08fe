"""Attack surface seen from the network: SVC-01, COM-06/SVC-02, SVC-03, COM-05, SVC-04.

* ``open_ports`` (SVC-01): TCP connect scan of the baseline's camera ports; an open port that is
  neither in the vendor's documented set nor in the site allowlist fails.
* ``cleartext_services`` (COM-06, SVC-02): banner grab on telnet, FTP and the vendor console
  ports (2323, 9527). Telnet fails both controls, FTP fails COM-06, a console fails SVC-02.
* ``ssh`` (SVC-03): an SSH banner fails unless the site allowlist holds port 22.
* ``snmp`` (COM-05): GetRequest sysDescr.0 with ``public`` and ``private`` (v1 and v2c).
* ``upnp`` (SVC-04): unicast SSDP M-SEARCH to the camera.

Nothing logs in anywhere: banners are read, not answered.
"""

from __future__ import annotations

from typing import Final

from agent.checks.base import CheckContext
from agent.checks.netprobe import VENDOR_PORTS, NetCheck, vendor_of
from agent.probes import banners, snmp, ssdp
from protocol.messages import EvidenceValue, Finding, Severity

__all__ = ["CleartextCheck", "OpenPortsCheck", "SnmpCheck", "SshCheck", "UpnpCheck"]

CONSOLE_PORTS: Final = (2323, 9527)  # OEM telnet / debug consoles (baseline SVC-02)


def _ports_text(numbers: list[int]) -> str:
    return ",".join(str(p) for p in sorted(numbers))


class OpenPortsCheck(NetCheck):
    id = "open_ports"
    controls = ("SVC-01",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        s = self.settings
        standard = {s.shifted(p): p for p in s.scan_ports}
        states = await self.scan(ctx, standard)
        open_ports = sorted(standard[p] for p, state in states.items() if state == "open")
        filtered = sum(1 for state in states.values() if state == "filtered")
        vendor = vendor_of(ctx) or "generic"
        allowed = VENDOR_PORTS[vendor] | s.site_allowed_ports
        evidence: dict[str, EvidenceValue] = {
            "open": _ports_text(open_ports),
            "vendor": vendor,
            "documented": _ports_text(sorted(VENDOR_PORTS[vendor])),
            "filtered": filtered,
            "port_offset": s.port_offset,
        }
        if not open_ports:
            return [
                self.finding(
                    ctx,
                    "svc.no_open_ports",
                    "inconclusive",
                    "info",
                    reason="no scanned port is open: the camera may be down or filtered",
                    evidence=evidence,
                )
            ]
        unexpected = [p for p in open_ports if p not in allowed]
        if ctx.identity is None and vendor == "generic":
            # not identified (login refused, no answer): a port some vendor documents may be
            # this camera's own, so only a port no vendor documents can fail
            anyone = frozenset().union(*VENDOR_PORTS.values()) | s.site_allowed_ports
            unsure = [p for p in unexpected if p in anyone]
            unexpected = [p for p in unexpected if p not in anyone]
            if unsure and not unexpected:
                evidence["undetermined"] = _ports_text(unsure)
                return [
                    self.finding(
                        ctx,
                        "svc.ports_vendor_unknown",
                        "inconclusive",
                        "info",
                        reason="the camera is not identified: its vendor's ports are unknown",
                        evidence=evidence,
                    )
                ]
        if unexpected:
            evidence["unexpected"] = _ports_text(unexpected)
            return [self.finding(ctx, "svc.unexpected_ports", "fail", "high", evidence=evidence)]
        return [self.finding(ctx, "svc.expected_ports", "pass", "info", evidence=evidence)]


class CleartextCheck(NetCheck):
    id = "cleartext_services"
    controls = ("COM-06", "SVC-02")

    async def _banner(self, ctx: CheckContext, port: int) -> banners.Banner | None:
        s = self.settings
        state = await self.scan(ctx, [port])
        if state[port] != "open":
            return None
        return await banners.grab(ctx.target.address, port, timeout_s=s.timeout_s)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        s = self.settings
        telnet, ftp = s.port(ctx, "telnet"), s.port(ctx, "ftp")
        consoles = [s.shifted(p) for p in CONSOLE_PORTS]
        findings: list[Finding] = []
        failed: set[str] = set()
        for port, code, controls in (
            (telnet, "svc.telnet_open", ("COM-06", "SVC-02")),
            (ftp, "svc.ftp_open", ("COM-06",)),
            *((p, "svc.console_open", ("SVC-02",)) for p in consoles),
        ):
            banner = await self._banner(ctx, port)
            if banner is None:
                continue
            severity: Severity = "high" if controls == ("COM-06",) else "critical"
            evidence: dict[str, EvidenceValue] = {
                "port": port,
                "kind": banner.kind,
                "banner": banner.text,
            }
            findings.append(
                self.finding(ctx, code, "fail", severity, evidence=evidence, controls=controls)
            )
            failed.update(controls)
        if "COM-06" not in failed:
            evidence = {"ports": _ports_text([telnet, ftp])}
            findings.append(
                self.finding(
                    ctx,
                    "svc.cleartext_closed",
                    "pass",
                    "info",
                    evidence=evidence,
                    controls=("COM-06",),
                )
            )
        if "SVC-02" not in failed:
            evidence = {"ports": _ports_text([telnet, *consoles])}
            findings.append(
                self.finding(
                    ctx,
                    "svc.console_closed",
                    "pass",
                    "info",
                    evidence=evidence,
                    controls=("SVC-02",),
                )
            )
        return findings


class SshCheck(NetCheck):
    id = "ssh"
    controls = ("SVC-03",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        s = self.settings
        port = s.port(ctx, "ssh")
        state = await self.scan(ctx, [port])
        if state[port] != "open":
            evidence: dict[str, EvidenceValue] = {"port": port, "state": state[port]}
            return [self.finding(ctx, "svc.ssh_closed", "pass", "info", evidence=evidence)]
        banner = await banners.grab(ctx.target.address, port, timeout_s=s.timeout_s)
        evidence = {"port": port, "kind": banner.kind, "banner": banner.text}
        if 22 in s.site_allowed_ports:
            return [self.finding(ctx, "svc.ssh_allowed", "pass", "info", evidence=evidence)]
        return [self.finding(ctx, "svc.ssh_open", "fail", "high", evidence=evidence)]


class SnmpCheck(NetCheck):
    id = "snmp"
    controls = ("COM-05",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        s = self.settings
        port = s.port(ctx, "snmp")
        replies = await snmp.probe(
            ctx.target.address, port, s.snmp_communities, timeout_s=s.window_s
        )
        evidence: dict[str, EvidenceValue]
        if not replies:
            evidence = {"port": port, "communities": ",".join(s.snmp_communities)}
            return [self.finding(ctx, "com.snmp_silent", "pass", "info", evidence=evidence)]
        findings = []
        for community in sorted({r.community for r in replies}):
            answered = [r for r in replies if r.community == community]
            evidence = {
                "port": port,
                "community": community,
                "versions": ",".join(sorted(r.version for r in answered)),
                "sys_descr": answered[0].sys_descr,
            }
            findings.append(
                self.finding(ctx, "com.snmp_community", "fail", "high", evidence=evidence)
            )
        return findings


class UpnpCheck(NetCheck):
    id = "upnp"
    controls = ("SVC-04",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        s = self.settings
        port = s.port(ctx, "ssdp")
        replies = [
            r
            for r in await ssdp.search(ctx.target.address, port, window_s=s.window_s)
            if r.sender == ctx.target.address
        ]
        if not replies:
            evidence: dict[str, EvidenceValue] = {"port": port}
            return [self.finding(ctx, "svc.upnp_silent", "pass", "info", evidence=evidence)]
        evidence = {
            "port": port,
            "count": len(replies),
            "server": replies[0].server,
            "location": replies[0].location,
        }
        return [self.finding(ctx, "svc.upnp_answers", "fail", "high", evidence=evidence)]
