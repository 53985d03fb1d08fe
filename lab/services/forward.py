"""A recorder's virtual host: the web interface of each channel's camera on a port of the
recorder (Hikvision NVRs: "Virtual Host", one port per channel from 65001), so that a client
reaches a camera on the recorder's internal PoE network through the recorder.

Every connection to the port is relayed, byte for byte, to the camera's HTTP port, opened from
where the recorder is (its namespace in netns mode); the recorder reads nothing of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from lab.services._net import TcpService

__all__ = ["Connector", "start_forward"]

Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
_CHUNK = 64 * 1024


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    finally:
        if sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()


async def start_forward(
    sock: socket.socket, connect: Connector, target: tuple[str, int]
) -> TcpService:
    """Relay every connection on the bound socket ``sock`` to ``target`` (host, port)."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await connect(*target)
        except OSError:
            return  # the camera is down: the client sees the connection closed
        try:
            await asyncio.gather(_pump(reader, upstream), _pump(upstream_reader, writer))
        finally:
            upstream.close()
            with contextlib.suppress(OSError):
                await upstream.wait_closed()

    return await TcpService(relay).start(sock)
