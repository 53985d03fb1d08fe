"""RTSP for the whole lab: one GStreamer worker process serves every camera's streams.

The worker (``gst_rtsp_worker.py``, shipped next to this module) runs under Debian's
``/usr/bin/python3`` because PyGObject and gst-rtsp-server come from apt, not from the venv.
It keeps one GstRtspServer per (netns, host, port), without any login (each camera's RTSP front,
``lab.rtsp``, authenticates clients): unknown paths get 404, and each path streams a live test
pattern (H.264 from x264enc, or JPEG when x264enc is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from lab.errors import ServiceUnavailable

log = logging.getLogger(__name__)

WORKER: Final = Path(__file__).with_name("gst_rtsp_worker.py")
SYSTEM_PYTHON: Final = "/usr/bin/python3"
REPLY_TIMEOUT: Final = 30.0
QUIT_TIMEOUT: Final = 5.0
SYSTEM_PACKAGES: Final = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly gstreamer1.0-rtsp"
)


class RtspWorkerError(RuntimeError):
    """The GStreamer worker refused a command or died."""


class GstreamerMissing(ServiceUnavailable):
    """The worker cannot start: Debian's python3 with GStreamer's RTSP server is not installed."""

    def __init__(self, python: str, reason: str) -> None:
        super().__init__(
            f"RTSP needs GStreamer for {python} ({reason}): install the Debian packages "
            f"{SYSTEM_PACKAGES} (scripts/install-system-deps.sh does), "
            "or set `rtsp = false` under [lab]"
        )


@dataclass(frozen=True, slots=True)
class RtspStream:
    netns: str | None
    host: str
    port: int
    paths: tuple[str, ...]


class RtspFleet:
    """Starts the worker on first use; ``close`` stops it and every server in it."""

    def __init__(self, *, python: str = SYSTEM_PYTHON) -> None:
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._stderr: asyncio.Task[None] | None = None
        self.encoder = ""

    async def start(self, streams: Sequence[RtspStream]) -> list[int]:
        """Serve ``streams`` (more can be added by later calls); the ports they listen on
        (a stream asking for port 0 gets a free one)."""
        async with self._lock:
            if self._process is None:
                await self._spawn()
            reply = await self._call({"op": "add", "streams": [asdict(s) for s in streams]})
        return [int(port) for port in reply["ports"]]

    async def _spawn(self) -> None:
        """Start the worker and wait for its hello; ``GstreamerMissing`` if it cannot run."""
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._python,
                "-I",
                str(WORKER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise GstreamerMissing(self._python, exc.strerror or str(exc)) from exc
        try:
            hello = await self._reply()
        except RtspWorkerError as exc:
            stderr = self._process.stderr
            text = b"" if stderr is None else await stderr.read()
            lines = text.decode(errors="replace").splitlines()
            self._process = None
            raise GstreamerMissing(self._python, lines[-1] if lines else str(exc)) from exc
        self.encoder = str(hello["encoder"])
        self._stderr = asyncio.get_running_loop().create_task(self._relay_stderr())
        log.info("RTSP worker %d started (%s)", self._process.pid, self.encoder)

    async def _relay_stderr(self) -> None:
        """Pass the worker's own diagnostics on to our log (GStreamer warnings, tracebacks)."""
        if self._process is None or self._process.stderr is None:
            return  # stopped before its diagnostics were read
        async for line in self._process.stderr:
            log.warning("RTSP worker: %s", line.decode(errors="replace").rstrip())

    async def set_online(
        self, host: str, port: int, online: bool, *, netns: str | None = None
    ) -> None:
        """Close (camera rebooting) or reopen the listener of the server at host:port (in
        namespace ``netns``)."""
        command = {"op": "online", "netns": netns, "host": host, "port": port, "online": online}
        async with self._lock:
            await self._call(command)

    async def close(self) -> None:
        async with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            with contextlib.suppress(ConnectionError):
                if process.stdin is not None:  # always a pipe (started with stdin=PIPE)
                    process.stdin.write(b'{"op": "quit"}\n')
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), QUIT_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
            if self._stderr is not None:
                await self._stderr
                self._stderr = None
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
        if self._process is None or self._process.stdout is None:
            raise RtspWorkerError("the RTSP worker is not running")
        line = await asyncio.wait_for(self._process.stdout.readline(), REPLY_TIMEOUT)
        if not line:
            raise RtspWorkerError(f"the RTSP worker exited ({await self._process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply
