"""Where a simulated camera's listening sockets come from.

The fleet never calls ``socket.bind`` itself: it asks a ``Binder``. ``LoopbackBinder`` binds on
127.0.0.0/8 addresses of this host; the network-namespace binder (``lab.netns``) binds inside one
namespace per camera. Services always receive sockets that are already bound.
"""

from __future__ import annotations

import socket
from typing import Protocol

__all__ = ["Binder", "LoopbackBinder"]


class Binder(Protocol):
    def tcp(self, host: str, port: int) -> socket.socket: ...  # bound, listening, non-blocking

    def udp(self, host: str, port: int) -> socket.socket: ...  # bound, non-blocking


class LoopbackBinder:
    """Binds directly on 127.x addresses (every one of them is local on Linux)."""

    backlog = 128

    def tcp(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def udp(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock
