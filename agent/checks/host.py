"""Findings about the agent's own box, from psutil (no network traffic).

The box sits on the camera segment, so the camera baseline is applied to it where it fits:

* listening services (SVC-11, undocumented listeners): every TCP listener reachable from the
  network (loopback-only ones are left out unless asked) must be in ``expected_ports``;
* disk space (LOG-02): the outbox of signed reports lives on this disk; below ``min_free_bytes``
  or ``min_free_percent`` reports would be lost;
* OS and kernel (INV-01): recorded as identification, always a pass.
"""

from __future__ import annotations

import ipaddress
import platform
from dataclasses import dataclass
from pathlib import Path

from agent.checks.base import make_finding
from protocol.messages import EvidenceValue, Finding

__all__ = ["HostSettings", "host_findings"]

CHECK_ID = "host"


@dataclass(frozen=True, slots=True)
class HostSettings:
    expected_ports: frozenset[int] = frozenset({22})
    include_loopback: bool = False
    min_free_bytes: int = 200 * 1024 * 1024
    min_free_percent: float = 5.0


def _listeners(include_loopback: bool) -> list[tuple[str, int]]:
    import psutil  # noqa: PLC0415  # the host check runs rarely

    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        address, port = conn.laddr.ip, conn.laddr.port
        if not include_loopback and ipaddress.ip_address(address.split("%")[0]).is_loopback:
            continue
        found.add((address, port))
    return sorted(found)


def _first_entries(entries: list[str], limit: int) -> str:
    """Whole entries, space-separated, within ``limit`` characters (evidence stays bounded)."""
    text = ""
    for entry in entries:
        if len(text) + len(entry) + 1 > limit:
            break
        text = f"{text} {entry}" if text else entry
    return text


def host_findings(state_dir: Path, settings: HostSettings | None = None) -> list[Finding]:
    import psutil  # noqa: PLC0415

    s = settings or HostSettings()
    listeners = _listeners(s.include_loopback)
    unexpected = [f"{a}:{p}" for a, p in listeners if p not in s.expected_ports]
    listen_evidence: dict[str, EvidenceValue] = {
        "listening": len(listeners),
        "expected": ",".join(str(p) for p in sorted(s.expected_ports)),
    }
    if unexpected:
        services = make_finding(
            check=CHECK_ID,
            code="host.unexpected_listeners",
            status="fail",
            severity="medium",
            controls=("SVC-11",),
            evidence={
                **listen_evidence,
                "unexpected_count": len(unexpected),
                "unexpected": _first_entries(unexpected, 400),
            },
        )
    else:
        services = make_finding(
            check=CHECK_ID,
            code="host.expected_listeners",
            status="pass",
            severity="info",
            controls=("SVC-11",),
            evidence=listen_evidence,
        )
    usage = psutil.disk_usage(str(state_dir))
    free_percent = round(100.0 - usage.percent, 1)
    disk_evidence: dict[str, EvidenceValue] = {
        "path": str(state_dir),
        "free_bytes": usage.free,
        "free_percent": free_percent,
    }
    low = usage.free < s.min_free_bytes or free_percent < s.min_free_percent
    disk = make_finding(
        check=CHECK_ID,
        code="host.disk_low" if low else "host.disk_ok",
        status="fail" if low else "pass",
        severity="medium" if low else "info",
        controls=("LOG-02",),
        evidence=disk_evidence,
    )
    uname = platform.uname()
    system = make_finding(
        check=CHECK_ID,
        code="host.system",
        status="pass",
        severity="info",
        controls=("INV-01",),
        evidence={
            "os": uname.system,
            "kernel": uname.release,
            "machine": uname.machine,
            "python": platform.python_version(),
        },
    )
    return [services, disk, system]
