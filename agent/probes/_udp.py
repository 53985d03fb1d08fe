"""Request/collect over UDP: one datagram out, every answer within a window back.

Multicast (SSDP and WS-Discovery discovery) is sent only when the caller asks for it, with
TTL 1 so that it never leaves the local segment.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

from agent import scope
from agent.probes._net import camera_error

__all__ = ["MULTICAST_GROUP", "exchange"]

MULTICAST_GROUP: Final = "239.255.255.250"
MAX_DATAGRAM: Final = 64 * 1024
MAX_REPLIES: Final = 4096


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[tuple[str, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.replies) < MAX_REPLIES:
            self.replies.append((addr[0], data[:MAX_DATAGRAM]))


async def exchange(
    host: str, port: int, payload: bytes, *, window_s: float, multicast: bool = False
) -> list[tuple[str, bytes]]:
    """Send ``payload`` to ``host:port`` and return (sender, datagram) pairs seen in the window.

    With ``multicast`` the datagram goes to ``host`` as a group address (TTL 1); unicast
    answers are taken from any sender, which is how multicast discovery replies arrive.
    """
    if not multicast:  # the group address is the operator's choice (agent.scope)
        host = await scope.admit(host)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if multicast:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind(("0.0.0.0", 0))  # noqa: S104  # replies to multicast come from any member
        transport, collector = await loop.create_datagram_endpoint(_Collector, sock=sock)
    except OSError as exc:
        sock.close()
        raise camera_error(exc) from exc
    try:
        transport.sendto(payload, (host, port))
        await asyncio.sleep(window_s)
    finally:
        transport.close()
    return list(collector.replies)
