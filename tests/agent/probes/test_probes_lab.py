"""The probes against lab services on loopback: what they see, and garbage peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent.probes import banners, igd, ports, rtsp, snmp, tls
from agent.vendors.base import BadResponse, Timeout, Unreachable
from agent.vendors.models import Credential
from lab.testing import LabFactory

LAB = """
[[camera]]
id = "cam"
persona = "hikvision"
snmp_public = true
telnet = true
https = true
[[router]]
id = "gw"
"""


async def test_rtsp_describe_with_digest_confirmation(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    node = fleet["cam"]
    path = "/Streaming/Channels/101"
    anonymous = await rtsp.describe(node.host, node.ports["rtsp"], path, timeout_s=5)
    assert (anonymous.status, anonymous.schemes, anonymous.sdp) == (401, ("digest",), b"")
    assert "DESCRIBE" in anonymous.public
    good = Credential("admin", "12345")
    ok = await rtsp.describe(node.host, node.ports["rtsp"], path, timeout_s=5, credential=good)
    assert (ok.status, ok.authenticated, ok.sdp[:3]) == (200, True, b"v=0")


async def test_snmp_tls_banner_and_empty_igd(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    node = fleet["cam"]
    replies = await snmp.probe(node.host, node.ports["snmp"], ("public", "private"), timeout_s=0.5)
    assert {(r.version, r.community) for r in replies} == {("v1", "public"), ("v2c", "public")}
    report = await tls.scan(node.host, node.ports["https"], timeout_s=3)
    assert report.accepted == {"TLSv1": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert report.certificate.self_signed
    banner = await banners.grab(node.host, node.ports["telnet"], timeout_s=2)
    assert banner.kind == "telnet"
    router = fleet.routers["gw"]
    assert await igd.port_mappings(router.host, router.ports["ssdp"], timeout_s=2) == []
    closed = await ports.scan(node.host, [node.ports["ftp"]], timeout_s=1)
    assert closed == {node.ports["ftp"]: "closed"}


@pytest.fixture
async def garbage_server() -> AsyncIterator[tuple[str, int]]:
    """A peer on loopback that answers anything with noise, or stays silent after 'hang'."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            data = await reader.read(4096)
            if b"hang" not in data:
                writer.write(b"\x00garbage\xff" * 2000 + b"\r\n\r\n")
                await writer.drain()
            await asyncio.sleep(5)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield "127.0.0.1", server.sockets[0].getsockname()[1]
    server.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()


async def test_garbage_and_silence_become_camera_errors(garbage_server: tuple[str, int]) -> None:
    host, port = garbage_server
    with pytest.raises(BadResponse):
        await rtsp.describe(host, port, "/x", timeout_s=2)
    with pytest.raises(BadResponse):
        await tls.scan(host, port, timeout_s=2)
    with pytest.raises(Timeout):
        await rtsp.describe(host, port, "/hang", timeout_s=0.5)
    unknown = await banners.grab(host, port, timeout_s=0.5)
    assert unknown.kind == "silent"  # it waits for the client to speak first
    with pytest.raises(Unreachable):
        await rtsp.describe(host, 1, "/x", timeout_s=1)
