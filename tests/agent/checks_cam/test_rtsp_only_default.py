"""A default password kept on RTSP alone (its account differs from the web's): the lab's Dahua
camera has a strong web and ONVIF password, and its RTSP port is a real Digest RTSP server on
the camera's own loopback address that still takes the vendor default. One budget and one
failure count serve HTTP, ONVIF and RTSP, so RTSP gets its attempts and the default is found,
proven by a refused wrong password; no interface passes with zero attempts."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.audit.identify import identify, prepare
from agent.checks.base import CheckContext, SystemClock, run_checks
from agent.checks.credentials import DefaultCredentialCheck
from agent.vendors.models import Credential, Interface, Target
from lab import httpauth
from lab.testing import LabFactory
from tests.agent.checks_cam.test_checks_lab import CONFIG, GUESS, LIMITS, STRONG
from tests.agent.rtsp_server import MEDIA, SESSION, Reply, rtsp_server, sdp

pytestmark = pytest.mark.integration

LAB = f"""
[lab]
rtsp = false
[[camera]]
id = "dahua-rtsp-default"
persona = "dahua"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
lockout = {{threshold = 5, window_s = 1, lock_s = 300}}
"""
REALM, SECRET = "Login to rtsp", b"lab-rtsp-secret"
RTSP_ACCOUNT = ("admin", "admin")  # Dahua's factory default, left on the RTSP service


class DigestStream:
    """DESCRIBE behind Digest: the stream for ``RTSP_ACCOUNT``, 401 for anything else."""

    def __init__(self) -> None:
        self.failures: list[float] = []
        self.accepted = 0

    def __call__(self, _line: str, headers: dict[str, str]) -> Reply:
        now = time.time()
        presented = httpauth.parse(headers.get("authorization", ""), "DESCRIBE", REALM, SECRET, now)
        user, password = RTSP_ACCOUNT
        if presented is not None and presented.username == user and presented.check(password):
            self.accepted += 1
            return sdp(SESSION + MEDIA)
        if presented is not None:
            self.failures.append(time.monotonic())
        challenge = httpauth.challenge(REALM, SECRET, now, basic=False)
        return 401, "Unauthorized", [f"WWW-Authenticate: {challenge}"], b""


async def test_a_default_on_rtsp_alone_is_found(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    node = fleet["dahua-rtsp-default"]
    stream = DigestStream()
    await prepare()
    async with rtsp_server(stream, host=node.host) as port:
        target = Target(
            node.id, node.host, {Interface.HTTP: node.ports["http"], Interface.RTSP: port}
        )
        vault = Credential("admin", STRONG)
        found = await identify(target, CONFIG, vault)
        assert found.adapter is not None
        ctx = CheckContext(
            target, found.adapter, found.identity, LIMITS, SystemClock(), None, vault
        )
        try:
            findings = await run_checks([DefaultCredentialCheck([target], limits=GUESS)], ctx)
        finally:
            await found.adapter.close()
    hits = [f for f in findings if f.status == "fail"]
    assert [(f.code, f.evidence["interface"]) for f in hits] == [
        ("auth.default_credential", "rtsp")
    ]
    [hit] = hits
    assert hit.evidence["entry"] == "dc-005"
    assert int(str(hit.evidence["attempts_rtsp"])) >= 2  # the default, then a wrong password
    assert stream.failures  # the control attempt was refused: the hit is proven
    assert not any(node.camera.locked(name) for name in node.camera.users)


async def test_an_rtsp_port_that_answers_late_is_untested_not_absent(
    lab_fleet: LabFactory,
) -> None:
    """RTSP takes the connection and says nothing within the time limit (a slow camera, or a
    loaded agent machine): AUTH-01 names RTSP as not tested, with the reason; it never drops
    the interface and passes on what is left."""
    fleet = await lab_fleet(LAB)
    node = fleet["dahua-rtsp-default"]
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, node.host, 0)
    port = server.sockets[0].getsockname()[1]
    await prepare()
    try:
        target = Target(
            node.id, node.host, {Interface.HTTP: node.ports["http"], Interface.RTSP: port}
        )
        vault = Credential("admin", STRONG)
        found = await identify(target, CONFIG, vault)
        assert found.adapter is not None
        ctx = CheckContext(
            target, found.adapter, found.identity, LIMITS, SystemClock(), None, vault
        )
        try:
            findings = await run_checks([DefaultCredentialCheck([target], limits=GUESS)], ctx)
        finally:
            await found.adapter.close()
    finally:
        server.close()
        await server.wait_closed()
    assert connected.is_set()
    assert not [f for f in findings if f.status == "fail"]
    untested = [f for f in findings if f.code == "auth.guessing_stopped"]
    assert [f.evidence["untested"] for f in untested if "rtsp" in str(f.evidence["untested"])]
    assert all(f.status == "inconclusive" and f.reason for f in untested)
    passed = [f for f in findings if f.status == "pass"]
    assert all("rtsp" not in str(f.evidence["interfaces"]).split(",") for f in passed)
