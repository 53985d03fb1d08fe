"""AUTH-08 is judged on what the stream answer describes: a real RTSP server on loopback that
answers DESCRIBE 200 with a session description. Without an ``m=`` line there is no media, so
no open stream: inconclusive with the reason, never a critical finding; with one, it fails."""

from __future__ import annotations

import ipaddress

from agent.checks.base import CheckContext, CheckLimits, SystemClock
from agent.checks.netprobe import NetSettings
from agent.checks.rtsp import RtspAuthCheck
from agent.vendors.models import Interface, Target
from tests.agent.rtsp_server import MEDIA, SESSION, rtsp_server, sdp


async def judge(body: bytes) -> list[tuple[str, str, list[str]]]:
    async with rtsp_server(lambda _line, _headers: sdp(body)) as port:
        target = Target("cam", "127.0.0.1", {Interface.RTSP: port})
        net = ipaddress.IPv4Network("127.0.0.0/8")
        settings = NetSettings(timeout_s=5, camera_subnets=(net,))
        ctx = CheckContext(target, None, None, CheckLimits(), SystemClock())
        findings = await RtspAuthCheck(settings).run(ctx)
    return [(f.code, f.status, f.controls) for f in findings]


async def test_an_sdp_without_media_is_not_an_open_stream() -> None:
    [(code, status, controls)] = await judge(SESSION)
    assert (code, status) == ("auth.rtsp_unclear", "inconclusive")
    assert controls == ["AUTH-08", "AUTH-09"]


async def test_an_sdp_with_media_is_an_open_stream() -> None:
    found = await judge(SESSION + MEDIA)
    assert ("auth.rtsp_anonymous", "fail", ["AUTH-08"]) in found
