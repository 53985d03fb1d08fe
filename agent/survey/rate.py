"""Pacing of a survey's packets and connections (``rate_pps``, ``rate_cps``).

Each limit is a pacer without burst: the n-th unit may leave no earlier than n / rate seconds
after the first, so in any window of t seconds at most ``rate * t + 1`` units leave, whatever
the number of tasks asking. Counted as packets: each connection attempt (its SYN), each
request written and each datagram sent; as connections: each connection attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Pacer", "Rate"]


@dataclass(slots=True)
class Pacer:
    """Hands out units at ``per_s`` per second at most, in the order they are asked for."""

    per_s: float
    clock: Callable[[], float] = time.monotonic
    _next: float = 0.0
    sent: int = 0

    def __post_init__(self) -> None:
        if self.per_s <= 0:
            raise ValueError("a rate must be positive")

    async def take(self, units: int = 1) -> None:
        now = self.clock()
        start = max(now, self._next)
        self._next = start + units / self.per_s  # claimed before waiting: the order holds
        self.sent += units
        if start > now:
            await asyncio.sleep(start - now)


@dataclass(slots=True)
class Rate:
    """The two limits of a survey."""

    packets: Pacer
    connections: Pacer = field(default_factory=lambda: Pacer(1.0))

    @classmethod
    def of(cls, pps: float, cps: float) -> Rate:
        return cls(Pacer(pps), Pacer(cps))

    async def connect(self, requests: int = 0) -> None:
        """Before a connection attempt that will write ``requests`` requests."""
        await self.connections.take()
        await self.packets.take(1 + requests)

    async def datagram(self) -> None:
        await self.packets.take()
