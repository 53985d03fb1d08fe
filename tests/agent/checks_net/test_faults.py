"""Cameras that hang, crawl, drop or send garbage: inconclusive with a reason, in bounded time."""

from __future__ import annotations

import time

import pytest

from agent.checks.base import run_checks
from agent.checks.netprobe import NetSettings
from agent.checks.services import SnmpCheck
from agent.checks.web import HttpAuthCheck, HttpsCheck, SnapshotCheck
from agent.vendors.models import Target
from lab.testing import LabFactory
from tests.agent.checks_net.support import audit, context, lab_settings

FAULTS = """
[[camera]]
id = "hang"
persona = "hikvision"
faults = { hang = true }
[[camera]]
id = "slow"
persona = "dahua"
faults = { slow_ms = 5000 }
[[camera]]
id = "drop"
persona = "axis"
faults = { drop = true }
[[camera]]
id = "huge"
persona = "hikvision"
anonymous_snapshot = true
faults = { garbage = "huge" }
"""


@pytest.mark.parametrize("camera", ["hang", "slow", "drop", "huge"])
async def test_web_checks_are_inconclusive_within_the_timeout(
    lab_fleet: LabFactory, camera: str
) -> None:
    fleet = await lab_fleet(FAULTS)
    settings = lab_settings(fleet, timeout_s=1.0, max_response_bytes=1024 * 1024)
    checks = (HttpAuthCheck(settings), SnapshotCheck(settings), HttpsCheck(settings))
    started = time.monotonic()
    findings = await audit(fleet[camera], checks, timeout_s=10.0)
    assert time.monotonic() - started < 8
    assert [f.status for f in findings] == ["inconclusive"] * 3, findings
    for finding in findings:
        assert finding.reason
        assert finding.code in ("check.camera_error", "check.timeout")


async def test_nothing_is_sent_outside_the_camera_subnets(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(FAULTS)
    node = fleet["hang"]
    ctx = context(node)
    outside = type(ctx)(
        target=Target(camera_id="x", address="192.0.2.10"),
        adapter=None,
        identity=None,
        limits=ctx.limits,
        clock=ctx.clock,
    )
    [finding] = await run_checks((SnmpCheck(lab_settings(fleet)),), outside)
    assert (finding.code, finding.status) == ("net.out_of_scope", "not_applicable")
    [default] = await run_checks((SnmpCheck(NetSettings()),), ctx)
    assert default.code == "net.out_of_scope"  # no subnet configured: nothing is probed
