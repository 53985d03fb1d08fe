"""Seeded faults on the byte-stream interfaces: banners, the TLS handshake and RTSP.

HTTP applies the faults per request (``lab.http``). Every other TCP interface of a camera passes
each new connection through :func:`gate` before the service speaks, reading the camera's faults
at that moment (tests may change ``camera.faults`` while the fleet runs):

=========  ==================================================================================
hang       the connection is accepted and never answered (until the client or the lab gives up)
slow_ms    the service starts ``slow_ms`` late
drop       the connection is closed at once, without a byte (RST)
garbage    bytes that are not the protocol, then close (``huge``: 6 MiB of them)
=========  ==================================================================================

Interfaces: telnet, FTP and SSH banners (before the banner), HTTPS (before the TLS handshake; the
HTTP faults apply after it), and RTSP (before the camera's RTSP front reads a request:
``lab.rtsp``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final

from lab.config import Faults

__all__ = ["GARBAGE", "FaultGate", "gate"]

GARBAGE: Final = b"\x00\x8f\xfe\x13 not the protocol you expected \xff\x00\r\n"
HUGE: Final = 6 * 1024 * 1024
FaultSource = Callable[[], Faults]


async def gate(faults: Faults, transport: asyncio.WriteTransport) -> bool:
    """Apply ``faults`` to a new connection; False when the fault ended it."""
    if faults.hang:
        await asyncio.Event().wait()  # cancelled when the service closes
    if faults.slow_ms:
        await asyncio.sleep(faults.slow_ms / 1000)
    if faults.drop:
        transport.abort()
        return False
    if faults.garbage is not None:
        junk = GARBAGE * (HUGE // len(GARBAGE) if faults.garbage == "huge" else 1)
        transport.write(junk)
        transport.close()
        return False
    return True


class FaultGate(asyncio.Protocol):
    """A TLS listener's protocol: the gate first, then the handshake, then ``inner``.

    Serve with ``loop.create_server(lambda: FaultGate(...), sock=sock)`` and no ``ssl``: the
    handshake starts only after the gate, so a hang or drop happens before any ServerHello.
    """

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        ctx: ssl.SSLContext,
        faults: FaultSource,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._inner = inner
        self._ctx = ctx
        self._faults = faults
        self._tasks = tasks
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"a TLS gate needs a stream transport, not {type(transport).__name__}")
        transport.pause_reading()  # the ClientHello waits in the kernel until the gate opens
        task = asyncio.get_running_loop().create_task(self._open(transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, transport: asyncio.Transport) -> None:
        try:
            if not await gate(self._faults(), transport):
                return
            loop = asyncio.get_running_loop()
            secure = await loop.start_tls(transport, self, self._ctx, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError):
            transport.abort()
            return
        except asyncio.CancelledError:
            transport.abort()
            raise
        if secure is None:  # the transport closed during the handshake
            return
        inner = self._inner()
        secure.set_protocol(inner)
        inner.connection_made(secure)
        for data in self._early:
            inner.data_received(data)
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        """Before the gate opens nothing arrives (reading is paused); a client that sends its
        request with the last flight of the handshake (aiohttp always, httpx at times) has it
        decrypted before ``_open`` hands the connection to ``inner``: kept for ``inner``."""
        self._early.append(data)
