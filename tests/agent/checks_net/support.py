"""Running the network-probe checks against a lab fleet."""

from __future__ import annotations

import ipaddress

from agent.checks.base import Check, CheckContext, CheckLimits, SystemClock, run_checks
from agent.checks.exposure import RouterMappingCheck
from agent.checks.netprobe import NetSettings
from agent.checks.rtsp import RtspAuthCheck
from agent.checks.services import CleartextCheck, OpenPortsCheck, SnmpCheck, SshCheck, UpnpCheck
from agent.checks.tls import TlsCheck
from agent.checks.web import HttpAuthCheck, HttpsCheck, SnapshotCheck
from agent.vendors.models import Interface, Target
from lab.fleet import CameraNode, Fleet
from protocol.messages import Finding

PORT_SHIFT = 10000  # lab.config.LabSettings.port_shift default


def lab_settings(fleet: Fleet, **overrides: object) -> NetSettings:
    first = next(iter(fleet.cameras.values()))
    subnet = ipaddress.IPv4Network(f"{first.host}/24", strict=False)
    values: dict[str, object] = {
        "timeout_s": 2.0,
        "window_s": 0.3,
        "port_offset": PORT_SHIFT,
        "camera_subnets": (subnet,),
        "routers": tuple(r.host for r in fleet.routers.values()),
    }
    values.update(overrides)
    return NetSettings(**values)  # type: ignore[arg-type]


def net_checks(settings: NetSettings) -> tuple[Check, ...]:
    return (
        HttpAuthCheck(settings),
        SnapshotCheck(settings),
        HttpsCheck(settings),
        TlsCheck(settings),
        RtspAuthCheck(settings),
        OpenPortsCheck(settings),
        CleartextCheck(settings),
        SshCheck(settings),
        SnmpCheck(settings),
        UpnpCheck(settings),
        RouterMappingCheck(settings),
    )


def context(node: CameraNode, *, hint: bool = True, timeout_s: float = 20.0) -> CheckContext:
    ports = node.ports
    target = Target(
        camera_id=node.id,
        address=node.host,
        ports={
            Interface.HTTP: ports["http"],
            Interface.HTTPS: ports["https"],
            Interface.RTSP: ports["rtsp"],
        },
        vendor_hint=node.vendor if hint else None,
    )
    return CheckContext(
        target=target,
        adapter=None,
        identity=None,
        limits=CheckLimits(check_timeout_s=timeout_s),
        clock=SystemClock(),
    )


async def audit(node: CameraNode, checks: tuple[Check, ...], **kwargs: object) -> list[Finding]:
    return await run_checks(checks, context(node, **kwargs))  # type: ignore[arg-type]


def by_control(findings: list[Finding]) -> dict[str, set[str]]:
    """control -> statuses reported for it."""
    out: dict[str, set[str]] = {}
    for finding in findings:
        for control in finding.controls:
            out.setdefault(control, set()).add(finding.status)
    return out
