"""Nothing a scanner sees names the simulator: nmap -sV on the cameras' web and RTSP ports, and
malformed requests answered with the persona's own error pages (loopback only)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from lab.config import parse_config
from lab.fleet import CameraNode, Fleet
from lab.services.rtsp import SYSTEM_PYTHON
from lab.testing import LabFactory
from lab.truth import camera_findings
from tests.lab.test_rtsp_front import LAB as RTSP_LAB

GIVEAWAYS = ("GStreamer", "aiohttp", "Python")
LAB = f"""{RTSP_LAB}
[[camera]]
id = "reo"
persona = "reolink"
"""


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


def raw_http(node: CameraNode, request: bytes) -> bytes:
    with socket.create_connection((node.host, node.ports["http"]), 10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.skipif(
    shutil.which("nmap") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="nmap and Debian's python3 with GStreamer are needed",
)
async def test_nmap_service_scan_sees_no_simulator(fleet: Fleet) -> None:
    nodes = list(fleet.cameras.values())
    ports = sorted({n.ports[k] for n in nodes for k in ("http", "rtsp", "onvif") if k in n.ports})
    argv = ["nmap", "-n", "-sT", "-sV", "--version-light", "-p", ",".join(map(str, ports))]
    async with asyncio.timeout(180):
        done = await fleet.run_in_agent([*argv, *(n.host for n in nodes)])
    assert done.returncode == 0, done.stderr
    for word in GIVEAWAYS:
        assert word not in done.stdout, done.stdout
    assert done.stdout.count("rtsp") >= len(nodes), done.stdout


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01 NOT HTTP\r\n\r\n",  # a TLS hello to the plain port
        b"GET / HTTP/1.1\r\nHost: x\r\nNo colon in this header\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
async def test_malformed_requests_get_the_personas_error_page(
    fleet: Fleet, request_bytes: bytes
) -> None:
    for node in fleet.cameras.values():
        answer = await asyncio.to_thread(raw_http, node, request_bytes)
        head = answer.partition(b"\r\n\r\n")[0]
        assert head.split(b" ", 2)[1] in (b"400", b"414", b"431"), head
        banner = node.camera.persona.banners["http"]
        assert f"\r\nServer: {banner}\r\n".encode() in head + b"\r\n", head
        for word in GIVEAWAYS:
            assert word.encode() not in answer, answer[:300]
    hik = await asyncio.to_thread(raw_http, fleet["hik"], request_bytes)
    assert b"<h2>Access Error: 4" in hik


async def test_unknown_paths_and_refusals_are_worded_by_the_vendor(fleet: Fleet) -> None:
    hik = await asyncio.to_thread(
        raw_http, fleet["hik"], b"GET /ISAPI/Nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert hik.startswith(b"HTTP/1.1 404 ")
    assert b"<statusString>Invalid Operation</statusString>" in hik
    assert b"<requestURL>/ISAPI/Nope</requestURL>" in hik
    dahua = await asyncio.to_thread(
        raw_http,
        fleet["dahua"],
        b"GET /cgi-bin/magicBox.cgi?action=getSerialNo HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert dahua.startswith(b"HTTP/1.1 401 ")
    assert b"Access Error: 401 -- Unauthorized" in dahua
    wrong_method = await asyncio.to_thread(
        raw_http,
        fleet["hik"],
        b"DELETE /ISAPI/System/deviceInfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert wrong_method.startswith(b"HTTP/1.1 405 ")
    assert b"<h2>Access Error: 405 -- Method Not Allowed</h2>" in wrong_method


def test_a_default_password_on_the_rtsp_account_is_in_the_truth() -> None:
    spec = parse_config(
        '[[camera]]\nid = "c"\npersona = "hikvision"\n'
        'users = [{name = "admin", password = "Str0ng-Web-Pass"}]\n'
        'rtsp_users = [{name = "admin", password = "12345"}]\n'
    ).cameras[0]
    found = camera_findings(spec)
    assert found["AUTH-01"] == ["RTSP account admin has the vendor default password"]
