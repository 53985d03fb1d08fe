"""Loopback sockets for the service tests (the lab's own binders live in lab.binder/lab.netns)."""

from __future__ import annotations

import socket


def tcp(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def udp(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def free_port(host: str) -> int:
    """A TCP port that was free a moment ago, for servers that bind by number themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port
