"""Listeners on loopback that count what reaches them: proof that nothing was sent."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field


@dataclass
class Listeners:
    host: str
    tcp: dict[int, int] = field(default_factory=dict)  # port -> connections accepted
    udp: dict[int, int] = field(default_factory=dict)  # port -> datagrams received

    @property
    def reached(self) -> int:
        return sum(self.tcp.values()) + sum(self.udp.values())


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, counts: dict[int, int], port: int) -> None:
        self.counts, self.port = counts, port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counts[self.port] += 1


@contextlib.asynccontextmanager
async def listening(
    host: str, tcp: Iterable[int] = (), udp: Iterable[int] = ()
) -> AsyncIterator[Listeners]:
    """TCP and UDP listeners on ``host`` (port 0: any free port, named in the counts)."""
    found = Listeners(host)
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    transports: list[asyncio.BaseTransport] = []

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.tcp[writer.get_extra_info("sockname")[1]] += 1
        writer.close()

    try:
        for wanted in tcp:
            server = await asyncio.start_server(accepted, host, wanted)
            servers.append(server)
            found.tcp[server.sockets[0].getsockname()[1]] = 0
        for wanted in udp:
            port = wanted or next(iter(found.tcp), 0)  # 0: the first TCP port's number
            found.udp[port] = 0
            made = functools.partial(_Datagrams, found.udp, port)
            udp_transport, _ = await loop.create_datagram_endpoint(made, local_addr=(host, port))
            transports.append(udp_transport)
        yield found
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
        for transport in transports:
            transport.close()
