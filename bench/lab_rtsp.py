"""RTSP lab cost: start 100 streams in one GStreamer worker (logins are the cameras' RTSP fronts'
work, not the worker's), then print the start time, the worker's RSS idle and while one client
streams, and the first-probe time."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from lab.services.rtsp import RtspFleet, RtspStream

STREAMS = 100
HOST = "127.77.9.1"
BASE_PORT = 28554


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pid() -> int:
    """The worker is this process's only child running gst_rtsp_worker.py."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me and b"gst_rtsp_worker" in cmdline:
                return int(entry.name)
    raise RuntimeError("worker not found")


async def main() -> int:
    streams = [
        RtspStream(None, HOST, BASE_PORT + i, ("/Streaming/Channels/101",)) for i in range(STREAMS)
    ]
    fleet = RtspFleet()
    try:
        started = time.perf_counter()
        await fleet.start([])
        boot = time.perf_counter() - started
        started = time.perf_counter()
        await fleet.start(streams)
        elapsed = time.perf_counter() - started
        pid = worker_pid()
        idle = rss_mib(pid)
        probe = await asyncio.create_subprocess_exec(
            "ffprobe",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            f"rtsp://{HOST}:{BASE_PORT + STREAMS - 1}/Streaming/Channels/101",
            stdout=asyncio.subprocess.PIPE,
        )
        t0 = time.perf_counter()
        out, _ = await probe.communicate()
        first = time.perf_counter() - t0
        streaming = rss_mib(pid)
    finally:
        await fleet.close()
    print(f"rtsp worker ({fleet.encoder}) ready in {boot:.3f} s")
    print(f"{STREAMS} servers started in {elapsed:.3f} s (one worker process)")
    print(f"worker RSS: {idle:.1f} MiB idle, {streaming:.1f} MiB after one client streamed")
    print(f"ffprobe of the last stream: {out.decode().strip()} in {first:.2f} s")
    return 0 if out.strip() else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
