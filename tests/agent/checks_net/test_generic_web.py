"""AUTH-07 on a camera of unknown vendor: after the vendors' own URLs, the generic protected
URLs are asked, so an unbranded Hi3510 board that offers Basic over plain HTTP is found (a
real HTTP server on loopback answering as such boards do)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from agent.checks.base import CheckContext, CheckLimits, SystemClock
from agent.checks.netprobe import NetSettings
from agent.checks.web import HttpAuthCheck
from agent.vendors.models import Interface, Target

PARAM = "/web/cgi-bin/hi3510/param.cgi"


@asynccontextmanager
async def board(challenge: str) -> AsyncIterator[int]:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == PARAM:
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(status=404)

    server = web.Server(handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def judge(challenge: str) -> tuple[str, str, object]:
    async with board(challenge) as port:
        target = Target("cam", "127.0.0.1", {Interface.HTTP: port})
        net = ipaddress.IPv4Network("127.0.0.0/8")
        ctx = CheckContext(target, None, None, CheckLimits(), SystemClock())
        settings = NetSettings(timeout_s=5, camera_subnets=(net,))
        [finding] = await HttpAuthCheck(settings).run(ctx)
    return finding.code, finding.status, finding.evidence.get("path")


async def test_generic_board_with_basic_fails() -> None:
    code, status, path = await judge('Basic realm="index.html"')
    assert (code, status) == ("auth.http_basic", "fail")
    assert str(path).startswith(PARAM)


async def test_generic_board_with_digest_passes() -> None:
    code, status, _path = await judge('Digest realm="IPC", nonce="abc", qop="auth"')
    assert (code, status) == ("auth.http_digest", "pass")
