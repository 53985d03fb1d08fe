"""Banner-only services of cheap cameras: telnet, FTP and SSH that never let anyone in.

Banners are text only; each service adds its own framing exactly once (personas must not).

* telnet: BusyBox-style option negotiation, then ``banner`` verbatim and a ``login: `` prompt
  (``banner`` is the issue text and host name before the prompt, e.g. ``"\\r\\nHikvision "``);
  every login fails with ``Login incorrect`` and the connection closes after three attempts.
* ftp: ``220 <banner>``; ``USER`` gets 331, ``PASS`` always 530, ``QUIT`` 221, anything else 530.
* ssh: the identification line ``banner`` (e.g. ``SSH-2.0-dropbear_2019.78``), then, after the
  client's own identification line or a short wait, the connection is closed.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final, Literal

from lab.faults import FaultSource, gate
from lab.services import Service
from lab.services._net import TcpService

# IAC DO ECHO, DO NAWS, DO LFLOW, WILL ECHO, WILL SUPPRESS-GO-AHEAD: what BusyBox telnetd sends.
TELNET_NEGOTIATION: Final = b"\xff\xfd\x01\xff\xfd\x1f\xff\xfd\x21\xff\xfb\x01\xff\xfb\x03"
IAC: Final = 0xFF
LOGIN_ATTEMPTS: Final = 3
IDLE_TIMEOUT: Final = 30.0
SSH_CLIENT_WAIT: Final = 2.0
MAX_LINE: Final = 512

BannerKind = Literal["telnet", "ftp", "ssh"]


def strip_telnet_commands(data: bytes) -> bytes:
    """Drop IAC sequences (2- and 3-byte commands, subnegotiations) from client bytes."""
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte != IAC:
            out.append(byte)
            i += 1
            continue
        command = data[i + 1] if i + 1 < len(data) else None
        if command == IAC:  # escaped 0xff data byte
            out.append(IAC)
            i += 2
        elif command == 0xFA:  # SB ... IAC SE
            end = data.find(b"\xff\xf0", i + 2)
            i = len(data) if end < 0 else end + 2
        elif command is not None and 0xFB <= command <= 0xFE:  # WILL/WONT/DO/DONT option
            i += 3
        else:
            i += 2
    return bytes(out)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """One line of client input, telnet commands removed; EOF raises IncompleteReadError."""
    line = bytearray()
    while True:
        chunk = await asyncio.wait_for(reader.read(MAX_LINE), IDLE_TIMEOUT)
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(line), None)
        line += strip_telnet_commands(chunk)
        for end in (b"\r", b"\n"):
            if end in line:
                return bytes(line[: line.index(end)]).strip(b"\x00")
        if len(line) > MAX_LINE:
            return bytes(line[:MAX_LINE])


async def _telnet(
    banner: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write(TELNET_NEGOTIATION + banner + b"login: ")
    await writer.drain()
    for attempt in range(LOGIN_ATTEMPTS):
        await _read_line(reader)
        writer.write(b"\r\nPassword: ")
        await writer.drain()
        await _read_line(reader)
        writer.write(b"\r\nLogin incorrect\r\n")
        if attempt + 1 < LOGIN_ATTEMPTS:
            writer.write(banner + b"login: ")
        await writer.drain()


FTP_REPLIES: Final = {
    "USER": b"331 Please specify the password.\r\n",
    "PASS": b"530 Login incorrect.\r\n",
    "QUIT": b"221 Goodbye.\r\n",
}
FTP_NOT_LOGGED_IN: Final = b"530 Please login with USER and PASS.\r\n"


async def _ftp(banner: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 " + banner + b"\r\n")
    await writer.drain()
    while True:
        line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
        if not line:
            return
        verb = line.split(maxsplit=1)[0].decode("ascii", "replace").upper() if line.strip() else ""
        writer.write(FTP_REPLIES.get(verb, FTP_NOT_LOGGED_IN))
        await writer.drain()
        if verb == "QUIT":
            return


async def _ssh(banner: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(banner + b"\r\n")
    await writer.drain()
    try:
        await asyncio.wait_for(reader.readline(), SSH_CLIENT_WAIT)
    except TimeoutError:
        return


HANDLERS: Final = {"telnet": _telnet, "ftp": _ftp, "ssh": _ssh}


async def start_banner(
    sock: socket.socket, kind: BannerKind, banner: str, faults: FaultSource | None = None
) -> Service:
    """Serve the ``kind`` banner service on the bound, listening socket ``sock``.

    ``faults`` (read at each connection) applies the camera's seeded faults before the banner.
    """
    handler = HANDLERS[kind]
    text = banner.encode("utf-8")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if faults is None or await gate(faults(), writer.transport):
            await handler(text, reader, writer)

    return await TcpService(serve).start(sock)
