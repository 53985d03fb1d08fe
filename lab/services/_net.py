"""Socket plumbing shared by the lab services: TCP and UDP services on bound sockets,
groups of services, and the one rule for multicast (lab namespaces only)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, cast

from lab.services import Service

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SIOCGSKNS: Final = 0x894C  # ioctl: an fd for the network namespace a socket lives in
MULTICAST_GROUP: Final = "239.255.255.250"  # SSDP and WS-Discovery alike


class TcpService:
    """Serves ``handler`` for every connection; ``close`` stops listening and drops clients."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self, sock: socket.socket) -> TcpService:
        self._server = await asyncio.start_server(self._serve, sock=sock)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # a stream callback always runs inside its own task
            raise RuntimeError("a connection handler ran outside a task")
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away, idled out or sent garbage: drop the connection
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None


Datagram = Callable[[bytes, tuple[str, int]], bytes | None]


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, respond: Datagram) -> None:
        self._respond = respond
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self._respond(data, addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class UdpService:
    """Answers each datagram with ``respond(data, sender)`` (None: stay silent)."""

    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    @classmethod
    async def start(cls, sock: socket.socket, respond: Datagram) -> UdpService:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Responder(respond), sock=sock)
        return cls(transport)

    async def close(self) -> None:
        self.transport.close()
        await asyncio.sleep(0)  # the transport closes its socket on the next loop iteration


class ServiceGroup:
    """Several services that stop together, last started first."""

    def __init__(self, services: Sequence[Service]) -> None:
        self._services = list(services)

    async def close(self) -> None:
        while self._services:
            await self._services.pop().close()


def in_lab_namespace(sock: socket.socket) -> bool:
    """True when ``sock`` lives in a network namespace other than this process's own.

    Only such sockets (made by the namespace binder) may join or send multicast: the lab
    namespaces' only interface is the lab bridge, while the process's own namespace may
    route 239.255.255.250 out to a real network.
    """
    try:
        ns_fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    except OSError:
        return False
    try:
        theirs = os.fstat(ns_fd)
    finally:
        os.close(ns_fd)
    ours = os.stat("/proc/self/ns/net")
    return (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino)


def join_group(sock: socket.socket, group: str) -> bool:
    """Join ``group`` on a lab-namespace socket (TTL 1); returns False, doing nothing, elsewhere."""
    if not in_lab_namespace(sock):
        return False
    membership = socket.inet_aton(group) + bytes(4)  # INADDR_ANY: the 224.0.0.0/4 route picks eth0
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return True
