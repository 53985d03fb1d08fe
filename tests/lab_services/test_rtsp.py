from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.services.rtsp import SYSTEM_PYTHON, RtspFleet, RtspStream, RtspWorkerError
from tests.lab_services.sockets import free_port

pytestmark = [
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (ffmpeg) is not installed"),
    pytest.mark.skipif(
        not Path(SYSTEM_PYTHON).exists(), reason="Debian's python3 with python3-gi is missing"
    ),
]
HIK = "/Streaming/Channels/101"
USERS = (("admin", "12345"), ("viewer", "v1ewer"))


async def ffprobe(url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-analyzeduration",
        "500000",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "compact",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.fixture
async def cameras() -> AsyncIterator[tuple[RtspFleet, dict[str, str]]]:
    hosts = {"digest": "127.77.3.11", "basic": "127.77.3.12", "none": "127.77.3.13"}
    streams = [
        RtspStream(None, host, free_port(host), (HIK, "/cam/realmonitor"), auth, USERS)  # type: ignore[arg-type]
        for auth, host in hosts.items()
    ]
    fleet = RtspFleet()
    try:
        await fleet.start(streams)
        yield fleet, {s.auth: f"{s.host}:{s.port}" for s in streams}
    finally:
        await fleet.close()


async def test_auth_paths_and_stream(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    fleet, at = cameras
    assert fleet.encoder in {"x264enc", "jpegenc"}
    codec = "h264" if fleet.encoder == "x264enc" else "mjpeg"
    probes = {
        "digest ok": f"rtsp://admin:12345@{at['digest']}{HIK}",
        "digest second user": f"rtsp://viewer:v1ewer@{at['digest']}/cam/realmonitor?channel=1",
        "digest wrong": f"rtsp://admin:admin@{at['digest']}{HIK}",
        "digest anonymous": f"rtsp://{at['digest']}{HIK}",
        "digest unknown path": f"rtsp://{at['digest']}/live",
        "basic ok": f"rtsp://admin:12345@{at['basic']}{HIK}",
        "basic wrong": f"rtsp://admin:1234@{at['basic']}{HIK}",
        "basic anonymous": f"rtsp://{at['basic']}{HIK}",
        "none anonymous": f"rtsp://{at['none']}/cam/realmonitor",
        "none unknown path": f"rtsp://{at['none']}/h264",
    }
    results = dict(zip(probes, await asyncio.gather(*map(ffprobe, probes.values())), strict=True))
    for name in ("digest ok", "digest second user", "basic ok", "none anonymous"):
        assert results[name] == (0, f"stream|codec_name={codec}|width=320|height=240\n"), name
    for name in ("digest wrong", "digest anonymous", "basic wrong", "basic anonymous"):
        assert results[name][0] != 0, name
        assert "401 Unauthorized" in results[name][1], name
    for name in ("digest unknown path", "none unknown path"):
        assert "404 Not Found" in results[name][1], name


async def test_offline_refuses_connections(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    fleet, at = cameras
    host, port = at["basic"].split(":")
    await fleet.set_online(host, int(port), online=False)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    assert "404 Not Found" in (await ffprobe(f"rtsp://{at['none']}/x"))[1]  # others stay up
    await fleet.set_online(host, int(port), online=True)
    assert (await ffprobe(f"rtsp://admin:12345@{at['basic']}{HIK}"))[0] == 0


async def test_port_clash_is_reported(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    fleet, at = cameras
    host, port = at["none"].split(":")
    with pytest.raises(RtspWorkerError, match="already served"):
        await fleet.start([RtspStream(None, host, int(port), ("/x",), "none", ())])
