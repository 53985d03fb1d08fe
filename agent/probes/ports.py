"""TCP connect scan (SVC-01 and friends): a full handshake, then an immediate close.

Bounded concurrency per camera (``concurrency``), a connect timeout per port. A refused
connection is ``closed``; no answer within the timeout is ``filtered``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Final, Literal

from agent import scope

__all__ = ["CAMERA_PORTS", "PortState", "scan"]

PortState = Literal["open", "closed", "filtered"]

# baseline SVC-01: camera-specific TCP ports
CAMERA_PORTS: Final = (
    21, 22, 23, 80, 322, 443, 554, 1935, 2323, 8000, 8080, 8443, 8554, 8899, 9000, 9527,
    34567, 37777, 37778,
)  # fmt: skip


async def _probe(host: str, port: int, timeout_s: float) -> PortState:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return "filtered"
    except OSError:
        return "closed"
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(timeout_s):
            await writer.wait_closed()
    return "open"


async def scan(
    host: str, ports: Iterable[int], *, timeout_s: float, concurrency: int = 8
) -> dict[int, PortState]:
    """The state of each of ``ports`` on ``host``; ``OutOfScope`` (nothing sent) when ``host``
    is outside the audit's scope."""
    host = await scope.admit(host)
    gate = asyncio.Semaphore(concurrency)

    async def one(port: int) -> tuple[int, PortState]:
        async with gate:
            return port, await _probe(host, port, timeout_s)

    wanted = sorted(set(ports))
    return dict(await asyncio.gather(*(one(p) for p in wanted)))
