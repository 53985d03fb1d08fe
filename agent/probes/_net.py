"""Connection and read helpers shared by the probes; foreign errors become ``CameraError``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

from agent import scope
from agent.vendors.base import (
    BadResponse,
    CameraError,
    Timeout,
    Unreachable,
    describe,
    translate,
)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def camera_error(exc: BaseException) -> CameraError:
    """The camera error for a transport failure (anything unknown is a bad response)."""
    if isinstance(exc, TimeoutError):
        return Timeout(f"no answer in time ({type(exc).__name__})")
    if isinstance(exc, ssl.SSLError):
        return BadResponse(f"TLS error: {exc.reason or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable("connection refused")
    return translate(exc) or BadResponse(describe(exc))


@contextlib.asynccontextmanager
async def connected(
    host: str, port: int, timeout_s: float, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Streams]:
    """A TCP (or TLS) connection opened within ``timeout_s`` and always closed afterwards;
    ``OutOfScope`` without a packet sent when ``host`` is outside the audit's scope."""
    host = await scope.admit(host)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname="" if tls is not None else None
            )
    except (OSError, TimeoutError) as exc:
        raise camera_error(exc) from exc
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


async def read_until(reader: asyncio.StreamReader, marker: bytes, limit: int) -> bytes:
    """Everything read until ``marker`` has arrived (it may run past the marker); ``BadResponse``
    beyond ``limit`` bytes or on EOF before the marker."""
    data = bytearray()
    while marker not in data:
        chunk = await reader.read(4096)
        if not chunk:
            raise BadResponse(f"connection closed after {len(data)} bytes, before the end")
        data += chunk
        if len(data) > limit:
            raise BadResponse(f"answer exceeds {limit} bytes")
    return bytes(data)
