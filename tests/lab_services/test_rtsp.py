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
    hosts = {"hik": "127.77.3.11", "other": "127.77.3.12"}
    streams = [
        RtspStream(None, host, free_port(host), (HIK, "/cam/realmonitor"))
        for host in hosts.values()
    ]
    fleet = RtspFleet()
    try:
        await fleet.start(streams)
        yield fleet, {name: f"{s.host}:{s.port}" for name, s in zip(hosts, streams, strict=True)}
    finally:
        await fleet.close()


async def test_paths_and_stream(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    """The worker only makes media: no login (the camera's RTSP front asks for one)."""
    fleet, at = cameras
    assert fleet.encoder in {"x264enc", "jpegenc"}
    codec = "h264" if fleet.encoder == "x264enc" else "mjpeg"
    probes = {
        "stream": f"rtsp://{at['hik']}{HIK}",
        "second path": f"rtsp://{at['other']}/cam/realmonitor?channel=1",
        "unknown path": f"rtsp://{at['hik']}/live",
    }
    results = dict(zip(probes, await asyncio.gather(*map(ffprobe, probes.values())), strict=True))
    for name in ("stream", "second path"):
        assert results[name] == (0, f"stream|codec_name={codec}|width=320|height=240\n"), name
    assert "404 Not Found" in results["unknown path"][1]


async def test_offline_refuses_connections(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    fleet, at = cameras
    host, port = at["hik"].split(":")
    await fleet.set_online(host, int(port), online=False)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    assert "404 Not Found" in (await ffprobe(f"rtsp://{at['other']}/x"))[1]  # others stay up
    await fleet.set_online(host, int(port), online=True)
    assert (await ffprobe(f"rtsp://{at['hik']}{HIK}"))[0] == 0


async def test_port_clash_is_reported(cameras: tuple[RtspFleet, dict[str, str]]) -> None:
    fleet, at = cameras
    host, port = at["other"].split(":")
    with pytest.raises(RtspWorkerError, match="already served"):
        await fleet.start([RtspStream(None, host, int(port), ("/x",))])
