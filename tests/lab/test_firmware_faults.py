"""Firmware upgrades (offline, new version, rejected images) and seeded faults."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import socket
import ssl
import time

import httpx
import pytest

from lab import netns
from lab.camera import Camera
from lab.config import Faults
from lab.errors import BadImage
from lab.faults import GARBAGE
from lab.firmware import make_image, parse_image
from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory

NEW = dt.date(2023, 1, 1)


def test_image_round_trip_and_rejection() -> None:
    image = make_image("hikvision", "V5.7.3", NEW, 4096, model="DS-2CD2143G2-I")
    assert len(image) == 4096
    assert parse_image("hikvision", image).version == "V5.7.3"
    with pytest.raises(BadImage):
        parse_image("dahua", image)
    with pytest.raises(BadImage):
        parse_image("hikvision", image[:12])


async def _wait_version(camera: Camera, version: str) -> None:
    """Poll the camera state (what a client would see after the reboot), at most 5 s."""
    for _ in range(100):
        if camera.version == version and camera.online:
            break
        await asyncio.sleep(0.05)
    assert (camera.version, camera.online) == (version, True)


async def _offline(node: CameraNode) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(node.host, node.ports["http"])
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


UPGRADE_LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
firmware_upgrade = {reboot_s = 0.5}
[[camera]]
id = "axis"
persona = "axis"
firmware_upgrade = {reboot_s = 0.3}
[[camera]]
id = "flaky"
persona = "dahua"
firmware_upgrade = {reboot_s = 0.3, fail_mid_upgrade = true}
[[camera]]
id = "stuck"
persona = "onvif-generic"
firmware_upgrade = {reboot_s = 0.3, comes_back_old = true}
"""


@pytest.fixture
async def upgrade_fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(UPGRADE_LAB)


async def test_isapi_upgrade_reboots_into_new_version(upgrade_fleet: Fleet) -> None:
    node = upgrade_fleet["hik"]
    auth = httpx.DigestAuth("admin", "12345")
    async with httpx.AsyncClient(auth=auth) as client:
        bad = await client.put(node.url("/ISAPI/System/updateFirmware"), content=b"garbage" * 100)
        assert bad.status_code == 400
        assert "badFirmware" in bad.text
        good = await client.put(
            node.url("/ISAPI/System/updateFirmware"),
            content=make_image("hikvision", "V5.7.3", NEW),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert good.status_code == 200
        await asyncio.sleep(0.2)
        assert await _offline(node)
        await _wait_version(node.camera, "V5.7.3")
        info = await client.get(node.url("/ISAPI/System/deviceInfo"))
    assert "<firmwareReleasedDate>build 230101</firmwareReleasedDate>" in info.text


async def test_vapix_multipart_upgrade(upgrade_fleet: Fleet) -> None:
    node = upgrade_fleet["axis"]
    meta = json.dumps({"apiVersion": "1.4", "method": "upgrade"})
    image = make_image("axis", "11.0.89", NEW)
    files: dict[str, tuple[str, bytes, str]] = {
        "json": ("json", meta.encode(), "application/json"),
        "file": ("fw.bin", image, "application/octet-stream"),
    }
    async with httpx.AsyncClient(auth=httpx.DigestAuth("root", "pass")) as client:
        reply = await client.post(node.url("/axis-cgi/firmwaremanagement.cgi"), files=files)
    assert json.loads(reply.text)["data"]["firmwareVersion"] == "11.0.89"
    await _wait_version(node.camera, "11.0.89")


async def test_dahua_fail_mid_upgrade_keeps_old_version(upgrade_fleet: Fleet) -> None:
    node = upgrade_fleet["flaky"]
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", "admin")) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(
                node.url("/cgi-bin/upgrader.cgi?action=uploadFirmware"),
                content=make_image("dahua", "2.840.0000000.1.R", NEW),
                headers={"Content-Type": "application/octet-stream"},
            )
    await asyncio.sleep(0.1)
    await _wait_version(node.camera, "2.800.0000000.25.R")
    assert node.camera.reboots == 1


async def test_onvif_upload_415_and_comes_back_old(upgrade_fleet: Fleet) -> None:
    node = upgrade_fleet["stuck"]
    upload = node.url("/onvif/firmware/" + node.camera.secret.hex()[:16])
    async with httpx.AsyncClient() as client:
        bad = await client.post(upload, content=make_image("axis", "9", NEW))
        good = await client.post(upload, content=make_image("onvif-generic", "V3.0.0", NEW))
    assert (bad.status_code, good.status_code) == (415, 200)
    await asyncio.sleep(0.1)
    assert not node.camera.online
    await _wait_version(node.camera, "V2.1.4")
    assert node.camera.reboots == 1


FAULT_LAB = """
[[camera]]
id = "cam"
persona = "hikvision"
"""
URL = "/SDK/activateStatus"


@pytest.fixture
async def fault_node(lab_fleet: LabFactory) -> CameraNode:
    return (await lab_fleet(FAULT_LAB))["cam"]


async def test_hang(fault_node: CameraNode) -> None:
    fault_node.camera.faults = Faults(hang=True)
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(fault_node.url(URL))


async def test_slow(fault_node: CameraNode) -> None:
    fault_node.camera.faults = Faults(slow_ms=300)
    async with httpx.AsyncClient() as client:
        started = time.monotonic()
        reply = await client.get(fault_node.url(URL))
    assert reply.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_drop(fault_node: CameraNode) -> None:
    fault_node.camera.faults = Faults(drop=True)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(fault_node.url(URL))


@pytest.mark.parametrize(
    ("garbage", "check"),
    [
        ("truncated", lambda r: not r.text.rstrip().endswith("</ActivateStatus>")),
        ("content_type", lambda r: r.headers["content-type"] == "text/html"),
        ("huge", lambda r: len(r.content) > 5_000_000),
    ],
)
async def test_garbage(fault_node: CameraNode, garbage: str, check: object) -> None:
    fault_node.camera.faults = Faults(garbage=garbage)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as client:
        reply = await client.get(fault_node.url(URL))
    assert callable(check)
    assert check(reply)


STREAM_FAULT_LAB = """
[[camera]]
id = "cam"
persona = "hikvision"
https = true
ssh = true
faults = { slow_ms = 1 }
"""
Outcome = str  # "answered", "silent", "closed" or "garbage"


async def _first_bytes(node: CameraNode, kind: str, hello: bytes) -> Outcome:
    """What a client sees on ``kind`` after sending ``hello`` (nothing for banners)."""
    reader, writer = await asyncio.open_connection(node.host, node.ports[kind])
    try:
        if hello:
            writer.write(hello)
        try:
            data = await asyncio.wait_for(reader.read(64), 1.0)
        except TimeoutError:
            return "silent"
        except ConnectionResetError:
            return "closed"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not data:
        return "closed"
    return "garbage" if data.startswith(GARBAGE[:16]) else "answered"


def _tls(node: CameraNode) -> Outcome:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((node.host, node.ports["https"]), 1.0) as raw,
            ctx.wrap_socket(raw),
        ):
            return "answered"
    except TimeoutError:
        return "silent"
    except ssl.SSLError as exc:
        return "garbage" if "WRONG_VERSION_NUMBER" in str(exc) else "closed"
    except (ConnectionResetError, ssl.SSLEOFError):
        return "closed"


RTSP_OPTIONS = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"


@pytest.mark.parametrize(
    ("faults", "seen"),
    [
        (Faults(), "answered"),
        (Faults(slow_ms=400), "answered"),
        (Faults(hang=True), "silent"),
        (Faults(drop=True), "closed"),
        (Faults(garbage="truncated"), "garbage"),
    ],
)
async def test_faults_hit_banners_tls_and_rtsp(
    lab_fleet: LabFactory, faults: Faults, seen: Outcome
) -> None:
    fleet = await lab_fleet(STREAM_FAULT_LAB)
    node = fleet["cam"]
    node.camera.faults = faults
    started = time.monotonic()
    outcomes = {
        "ssh": await _first_bytes(node, "ssh", b""),
        "rtsp": await _first_bytes(node, "rtsp", RTSP_OPTIONS),
        "tls": await asyncio.to_thread(_tls, node),
    }
    assert outcomes == {"ssh": seen, "rtsp": seen, "tls": seen}
    if faults.slow_ms:
        assert time.monotonic() - started >= 3 * faults.slow_ms / 1000


async def test_rtsp_streams_through_the_cameras_rtsp_front(lab_fleet: LabFactory) -> None:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is missing")
    node = (await lab_fleet(STREAM_FAULT_LAB))["cam"]
    assert node.backstage is not None
    assert node.backstage != (node.host, node.ports["rtsp"])
    url = f"rtsp://admin:12345@{node.host}:{node.ports['rtsp']}/Streaming/Channels/101"
    probe = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries"]
    probe += ["stream=codec_name", "-of", "csv=p=0", url]
    async with asyncio.timeout(30):
        done = await netns.arun(probe)
    assert done.stdout.strip() in {"h264", "mjpeg"}, done.stderr
