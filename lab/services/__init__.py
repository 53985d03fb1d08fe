"""Network services of the simulated cameras that are not HTTP/ONVIF.

Every ``start_*`` coroutine takes sockets that a ``Binder`` already bound (on loopback or inside
a lab network namespace) and returns a running :class:`Service`. Multicast (SSDP, WS-Discovery)
is only ever joined or sent when the socket lives in a lab namespace other than the process's
own, so a loopback lab never emits a datagram towards the host's network.
"""

from __future__ import annotations

from typing import Protocol


class Service(Protocol):
    """A running lab service; ``close`` stops it and releases its sockets."""

    async def close(self) -> None: ...


__all__ = ["Service"]
