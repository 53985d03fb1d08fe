"""The RTSP port of a camera: the camera's own front in front of the GStreamer server.

GStreamer (``lab.services.rtsp``) only makes the media; it listens on a port no client is told
about and asks for no login. Everything a client can tell a vendor from is answered here, the
way the persona's real RTSP server answers (``[rtsp]`` of the persona file):

* the seeded faults first (``lab.faults.gate``), per connection;
* ``OPTIONS`` with the vendor's ``Public`` list and ``Server`` header (none when the vendor sends
  none), behind a login where the vendor asks for one (Dahua);
* logins (Digest, and Basic too unless the camera's ``rtsp_digest_only`` setting, seeded
  from ``rtsp_auth``, refuses it) on the persona's stream paths, checked against the
  camera's RTSP accounts through ``Camera.login``: a wrong password counts toward the
  camera's one lockout, like a failure on the web or ONVIF, and a locked account is refused;
* anything that is not an RTSP/1.0 request gets ``400 Bad Request`` and the connection closes;
* the rest goes to GStreamer without the ``Authorization`` header, and its answers come back with
  the ``Server`` header replaced; interleaved media (``$`` frames) passes through untouched.

Every request is written to the camera's request log (path only: never the URL's userinfo).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from lab import httpauth
from lab.camera import AuthScheme, Camera, RequestRecord
from lab.config import User
from lab.faults import gate
from lab.render import render
from lab.services._net import TcpService

__all__ = ["RtspFront"]

MAX_HEAD: Final = 16 * 1024
MAX_BODY: Final = 64 * 1024
INTERLEAVED: Final = b"$"
# ``rtsp_no_media``: a session description with no media section (RFC 8866 ``m=``)
NO_MEDIA_SDP: Final = (
    b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=Media Presentation\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
)
Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class BadMessage(ValueError):
    """Not an RTSP message (or one over our limits): answered with 400, then closed."""


@dataclass(slots=True)
class Message:
    """An RTSP request or response: the first line, headers in order, the body."""

    first: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def without(self, *names: str) -> list[tuple[str, str]]:
        drop = {n.lower() for n in names}
        return [(k, v) for k, v in self.headers if k.lower() not in drop]

    def encode(self) -> bytes:
        lines = [self.first, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


async def read_message(reader: asyncio.StreamReader, first: bytes) -> Message:
    """The rest of a message whose first byte was ``first`` (bounded head and body)."""
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise BadMessage("head too large") from exc
    if len(head) > MAX_HEAD:
        raise BadMessage("head too large")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadMessage("header line without a colon")
            headers.append((name.strip(), value.strip()))
    message = Message(lines[0], headers, b"")
    length = message.header("Content-Length") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        raise BadMessage("bad Content-Length")
    message.body = await reader.readexactly(int(length))
    return message


class RtspFront:
    """Serves one camera's RTSP port; ``connect`` reaches its GStreamer server."""

    def __init__(self, camera: Camera, connect: Connect) -> None:
        self.camera = camera
        self._connect = connect
        self._service = TcpService(self._serve)

    async def start(self, sock: socket.socket) -> RtspFront:
        await self._service.start(sock)
        return self

    async def close(self) -> None:
        await self._service.close()

    @property
    def realm(self) -> str:
        cam = self.camera
        template = cam.persona.rtsp.realm
        if not template:
            return cam.realm
        context = {
            "serial": cam.serial,
            "serial_tail": cam.serial[-5:],
            "token32": cam.secret.hex()[:32],  # a per-camera 32-hex-digit token (Dahua's realm)
        }
        return render(template, context)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await gate(self.camera.faults, writer.transport):
            return
        session = _Session(self, writer)
        try:
            while first := await reader.read(1):
                if first == INTERLEAVED:
                    head = await reader.readexactly(3)
                    data = await reader.readexactly(int.from_bytes(head[1:], "big"))
                    await session.forward_raw(first + head + data)
                    continue
                try:
                    request = await read_message(reader, first)
                except BadMessage:
                    await session.answer(None, 400, "Bad Request", [])
                    return
                if not await session.handle(request):
                    return
        finally:
            await session.close()


class _Session:
    """One client connection: its upstream connection (opened on first use) and the requests
    waiting for GStreamer's answer."""

    def __init__(self, front: RtspFront, writer: asyncio.StreamWriter) -> None:
        self.front = front
        self.camera = front.camera
        self.writer = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.pending: deque[tuple[str, str, AuthScheme, str | None]] = deque()

    async def handle(self, request: Message) -> bool:
        """Answer or forward one request; False: close the connection."""
        parts = request.first.split(" ")
        if len(parts) != 3 or parts[2] != "RTSP/1.0":
            await self.answer(request, 400, "Bad Request", [])
            return False
        method, url = parts[0], parts[1]
        split = urlsplit(url)
        target = split.path + (f"?{split.query}" if split.query else "")
        cam, persona = self.camera, self.camera.persona
        # OPTIONS (any path) as the vendor does; else the persona's streams only (an unknown
        # path gets GStreamer's 404 before any login)
        protected = persona.rtsp.options_auth if method == "OPTIONS" else self._known(split.path)
        if cam.settings["rtsp_auth"] and protected:
            scheme, user, name = self._login(request, method)
            if user is None:
                cam.record(RequestRecord("rtsp", method, target, scheme, None, 401))
                await self.answer(request, 401, "Unauthorized", self._challenge())
                return True
        else:
            scheme, name = "none", None
        if method == "OPTIONS":
            cam.record(RequestRecord("rtsp", method, target, scheme, name, 200))
            await self.answer(request, 200, "OK", [("Public", persona.rtsp.public)])
            return True
        if method == "DESCRIBE" and cam.spec.rtsp_no_media:
            cam.record(RequestRecord("rtsp", method, target, scheme, name, 200))
            sdp = [("Content-Type", "application/sdp"), ("Content-Base", url.rstrip("/") + "/")]
            await self.answer(request, 200, "OK", sdp, NO_MEDIA_SDP)
            return True
        self.pending.append((method, target, scheme, name))
        request.headers = request.without("Authorization")
        await self.forward_raw(request.encode())
        return True

    def _known(self, path: str) -> bool:
        """A path under one of the persona's mount points (SETUP adds a track to it)."""
        return any(
            path == mount or path.startswith(mount.rstrip("/") + "/")
            for mount in self.camera.persona.rtsp_paths
        )

    def _login(self, request: Message, method: str) -> tuple[AuthScheme, User | None, str | None]:
        cam = self.camera
        header = request.header("Authorization")
        presented = httpauth.parse(header, method, self.front.realm, cam.secret, cam.clock())
        if presented is None:
            return "none", None, None
        if presented.scheme == "basic" and cam.settings["rtsp_digest_only"]:
            return presented.scheme, None, presented.username
        user = cam.login(presented.username, presented.check, "rtsp")
        return presented.scheme, user, presented.username

    def _challenge(self) -> list[tuple[str, str]]:
        """Digest, and Basic too unless the camera is set to Digest only (a client that never
        sends Basic still logs in to a camera taking both)."""
        cam = self.camera
        schemes = (False,) if cam.settings["rtsp_digest_only"] else (False, True)
        realm, now = self.front.realm, cam.clock()
        return [
            ("WWW-Authenticate", httpauth.challenge(realm, cam.secret, now, basic=basic))
            for basic in schemes
        ]

    async def answer(
        self,
        request: Message | None,
        status: int,
        reason: str,
        extra: list[tuple[str, str]],
        body: bytes = b"",
    ) -> None:
        """An answer the front gives itself, with the vendor's headers."""
        headers = [("CSeq", request.header("CSeq") or "0")] if request is not None else []
        headers.extend(extra)
        if body:
            headers.append(("Content-Length", str(len(body))))
        headers.append(("Date", email.utils.formatdate(usegmt=True)))
        server = self.camera.persona.rtsp.server
        if server:
            headers.append(("Server", server))
        self.writer.write(Message(f"RTSP/1.0 {status} {reason}", headers, body).encode())
        await self.writer.drain()

    async def forward_raw(self, data: bytes) -> None:
        if self.upstream is None:
            reader, self.upstream = await self.front._connect()
            self.pump = asyncio.get_running_loop().create_task(self._pump(reader))
        self.upstream.write(data)
        await self.upstream.drain()

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        """GStreamer's answers to the client, in the vendor's dress; media as it comes."""
        server = self.camera.persona.rtsp.server
        try:
            while first := await reader.read(1):
                if first == INTERLEAVED:
                    head = await reader.readexactly(3)
                    data = await reader.readexactly(int.from_bytes(head[1:], "big"))
                    self.writer.write(first + head + data)
                else:
                    answer = await read_message(reader, first)
                    answer.headers = answer.without("Server")
                    if server:
                        answer.headers.append(("Server", server))
                    self._log(answer)
                    self.writer.write(answer.encode())
                await self.writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, BadMessage):
            pass
        finally:
            self.writer.close()

    def _log(self, answer: Message) -> None:
        parts = answer.first.split(" ", 2)
        if not self.pending or len(parts) < 2 or not parts[0].startswith("RTSP/"):
            return  # a request from the server (none from GStreamer's): nothing to pair
        method, target, scheme, name = self.pending.popleft()
        status = int(parts[1]) if parts[1].isdigit() else 0
        self.camera.record(RequestRecord("rtsp", method, target, scheme, name, status))

    async def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.upstream is not None:
            self.upstream.close()
            with contextlib.suppress(ConnectionError):
                await self.upstream.wait_closed()
