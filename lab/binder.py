"""Where a simulated camera's listening sockets come from.

The fleet never calls ``socket.bind`` itself: it asks a ``Binder``. ``LoopbackBinder`` binds on
127.0.0.0/8 addresses of this host; the network-namespace binder (``lab.netns``) binds inside one
namespace per camera. Services always receive sockets that are already bound.
"""

from __future__ import annotations

import socket
from typing import Protocol

__all__ = ["Binder", "LoopbackBinder", "bound"]

BACKLOG = 128


class Binder(Protocol):
    def tcp(self, host: str, port: int) -> socket.socket: ...  # bound, listening, non-blocking

    def udp(self, host: str, port: int) -> socket.socket: ...  # bound, non-blocking


def bound(sock: socket.socket, address: tuple[str, int], *, reuse: bool = True) -> socket.socket:
    """``sock``, new (made wherever the binder makes it), bound to ``address`` with
    ``SO_REUSEADDR`` unless not ``reuse``, listening if it is TCP, non-blocking; closed if any
    of that fails."""
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if sock.type == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackBinder:
    """Binds directly on 127.x addresses (every one of them is local on Linux)."""

    def tcp(self, host: str, port: int) -> socket.socket:
        return bound(socket.socket(socket.AF_INET, socket.SOCK_STREAM), (host, port))

    def udp(self, host: str, port: int) -> socket.socket:
        return bound(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), (host, port))
