"""Within one camera's audit a TCP port is connected to once (``CheckContext.port_states``):
SVC-01's scan answers the telnet, FTP, console and SSH checks; the next audit connects again."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter

from agent.checks.base import CheckContext, CheckLimits, SystemClock, run_checks
from agent.checks.netprobe import NetSettings
from agent.checks.services import CleartextCheck, OpenPortsCheck, SshCheck
from agent.vendors.models import Target
from lab.testing import private_base

OFFSET = 20000


async def test_a_port_is_scanned_once_per_camera_audit() -> None:
    host = str(private_base() + 7)
    accepted: Counter[int] = Counter()

    async def listen(port: int) -> asyncio.Server:
        def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted[port] += 1
            writer.close()

        return await asyncio.start_server(hello, host, port)

    ftp = 21 + OFFSET
    server = await listen(ftp)  # open; the other ports refuse
    settings = NetSettings(
        timeout_s=2.0,
        port_offset=OFFSET,
        camera_subnets=(ipaddress.IPv4Network(f"{host}/32"),),
    )
    checks = (OpenPortsCheck(settings), CleartextCheck(settings), SshCheck(settings))

    def audit_context() -> CheckContext:
        target = Target(camera_id="cam", address=host, ports={})
        return CheckContext(target, None, None, CheckLimits(), SystemClock(), port_states={})

    try:
        ctx = audit_context()
        findings = await run_checks(checks, ctx)
        codes = {f.code for f in findings}
        assert {"svc.unexpected_ports", "svc.console_closed", "svc.ssh_closed"} <= codes
        assert ctx.port_states is not None
        assert ctx.port_states[ftp] == "open"
        assert ctx.port_states[22 + OFFSET] == "closed"
        # the scan and the banner grab: FTP's state was not asked a second time
        assert accepted[ftp] == 2
        await run_checks(checks, audit_context())  # the next audit asks afresh
        assert accepted[ftp] == 4
        # without the audit's memo each check connects for itself (scan, scan, banner)
        target = Target(camera_id="cam", address=host, ports={})
        await run_checks(checks, CheckContext(target, None, None, CheckLimits(), SystemClock()))
        assert accepted[ftp] == 7
    finally:
        server.close()
        await server.wait_closed()
