"""SSDP M-SEARCH (SVC-04, INV-04, and the gateway discovery of SVC-05).

Unicast to one camera's UDP 1900 for the per-camera check; multicast to 239.255.255.250 only
for discovery on the camera segment (see ``agent.probes._udp``). Answers are HTTP-over-UDP
header blocks; several may share one datagram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agent.probes._udp import MULTICAST_GROUP, exchange

__all__ = ["SsdpReply", "msearch", "parse_replies", "search"]

PORT: Final = 1900


@dataclass(frozen=True, slots=True)
class SsdpReply:
    sender: str
    st: str
    usn: str
    location: str
    server: str


def msearch(target: str, host: str, port: int, mx: int = 1) -> bytes:
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {host}:{port}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {target}\r\n"
        "USER-AGENT: camwarden-agent UPnP/1.1\r\n\r\n"
    ).encode()


def parse_replies(sender: str, datagram: bytes) -> list[SsdpReply]:
    """Every ``HTTP/1.1 200`` header block in ``datagram``; anything else is skipped."""
    out: list[SsdpReply] = []
    for block in datagram.decode("utf-8", "replace").split("\r\n\r\n"):
        lines = block.strip().split("\r\n")
        if not lines[0].upper().startswith("HTTP/1.1 200"):
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().upper()] = value.strip()[:256]
        out.append(
            SsdpReply(
                sender,
                headers.get("ST", ""),
                headers.get("USN", ""),
                headers.get("LOCATION", ""),
                headers.get("SERVER", ""),
            )
        )
    return out


async def search(
    host: str,
    port: int = PORT,
    *,
    target: str = "ssdp:all",
    window_s: float,
    multicast: bool = False,
) -> list[SsdpReply]:
    """M-SEARCH ``target`` at ``host`` (a camera, or the group when ``multicast``)."""
    if multicast and host != MULTICAST_GROUP:
        raise ValueError(f"multicast M-SEARCH goes to {MULTICAST_GROUP}, not {host}")
    datagrams = await exchange(
        host, port, msearch(target, host, port), window_s=window_s, multicast=multicast
    )
    return [reply for sender, data in datagrams for reply in parse_replies(sender, data)]
