"""RTSP for the whole lab: one GStreamer worker process serves every camera's streams.

The worker (``gst_rtsp_worker.py``, shipped next to this module) runs under Debian's
``/usr/bin/python3`` because PyGObject and gst-rtsp-server come from apt, not from the venv.
It keeps one GstRtspServer per (netns, host, port): unknown paths get 404 even without
credentials, known paths 401 until the client authenticates (basic or digest), and each path
streams a live test pattern (H.264 from x264enc, or JPEG when x264enc is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

log = logging.getLogger(__name__)

WORKER: Final = Path(__file__).with_name("gst_rtsp_worker.py")
SYSTEM_PYTHON: Final = "/usr/bin/python3"
REPLY_TIMEOUT: Final = 30.0
QUIT_TIMEOUT: Final = 5.0


class RtspWorkerError(RuntimeError):
    """The GStreamer worker refused a command or died."""


@dataclass(frozen=True, slots=True)
class RtspStream:
    netns: str | None
    host: str
    port: int
    paths: tuple[str, ...]
    auth: Literal["none", "basic", "digest"]
    users: tuple[tuple[str, str], ...]


class RtspFleet:
    """Starts the worker on first use; ``close`` stops it and every server in it."""

    def __init__(self, *, python: str = SYSTEM_PYTHON) -> None:
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.encoder = ""

    async def start(self, streams: Sequence[RtspStream]) -> None:
        """Serve ``streams`` (more can be added by later calls)."""
        async with self._lock:
            if self._process is None:
                self._process = await asyncio.create_subprocess_exec(
                    self._python,
                    "-I",
                    str(WORKER),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                hello = await self._reply()
                self.encoder = str(hello["encoder"])
                log.info("RTSP worker %d started (%s)", self._process.pid, self.encoder)
            await self._call({"op": "add", "streams": [asdict(s) for s in streams]})

    async def set_online(self, host: str, port: int, online: bool) -> None:
        """Close (camera rebooting) or reopen the listener of the server at host:port."""
        async with self._lock:
            await self._call({"op": "online", "host": host, "port": port, "online": online})

    async def close(self) -> None:
        async with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            assert process.stdin is not None
            with contextlib.suppress(ConnectionError):
                process.stdin.write(b'{"op": "quit"}\n')
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), QUIT_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
            log.info("RTSP worker %d stopped", process.pid)

    async def _call(self, command: dict[str, Any]) -> dict[str, Any]:
        if self._process is None or self._process.stdin is None:
            raise RtspWorkerError("the RTSP worker is not running")
        self._process.stdin.write(json.dumps(command).encode() + b"\n")
        await self._process.stdin.drain()
        reply = await self._reply()
        if not reply.get("ok"):
            raise RtspWorkerError(str(reply.get("error")))
        return reply

    async def _reply(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), REPLY_TIMEOUT)
        if not line:
            raise RtspWorkerError(f"the RTSP worker exited ({await self._process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply
