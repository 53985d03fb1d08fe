"""Camera reachability: a quick TCP connect to each camera's HTTP port. It is what status
reports carry before the first audit has finished (and for a failed audit), and what the
daemon's liveness check compares."""

from __future__ import annotations

import asyncio
import contextlib

from agent.config import AgentConfig
from protocol.messages import Camera, Identity


async def reachable(host: str, port: int, wait_s: float) -> bool:
    """A quick TCP connect to the camera's HTTP port."""
    try:
        async with asyncio.timeout(wait_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def probe_cameras(config: AgentConfig) -> list[Camera]:
    """Reachability only: what reports carry until the first audit has finished."""
    cameras, wait_s = config.cameras, config.intervals.camera_connect_timeout_s
    results = await asyncio.gather(
        *(reachable(c.address, config.http_port(c), wait_s) for c in cameras)
    )
    return [
        Camera(camera_id=c.id, address=c.address, reachable=ok, identity=Identity())
        for c, ok in zip(cameras, results, strict=True)
    ]
