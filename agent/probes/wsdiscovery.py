"""ONVIF WS-Discovery Probe (2005/04 drafts, SOAP 1.2) for NetworkVideoTransmitters.

Unicast to one address (loopback lab, SVC-08-style checks) or multicast to 239.255.255.250:3702
on the camera segment (inventory). Only ProbeMatches that relate to our MessageID are kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from agent.probes._udp import MULTICAST_GROUP, exchange
from agent.probes._xml import parse
from agent.vendors.base import BadResponse

__all__ = ["ProbeMatch", "parse_matches", "probe", "probe_message"]

PORT: Final = 3702
SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN: Final = "http://www.onvif.org/ver10/network/wsdl"


@dataclass(frozen=True, slots=True)
class ProbeMatch:
    sender: str
    endpoint: str  # EndpointReference address, e.g. urn:uuid:...
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]
    types: tuple[str, ...]


def probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}">'
        f"<s:Header><a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        f"<a:Action>{WSD}/Probe</a:Action></s:Header>"
        "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    ).encode()


def parse_matches(sender: str, datagram: bytes, message_id: str) -> list[ProbeMatch]:
    root = parse(datagram, max_bytes=64 * 1024)
    relates = (root.findtext(f"{{{SOAP}}}Header/{{{WSA}}}RelatesTo") or "").strip()
    if relates != message_id:
        return []
    matches = root.findall(f"{{{SOAP}}}Body/{{{WSD}}}ProbeMatches/{{{WSD}}}ProbeMatch")
    out = []
    for match in matches:
        address = (match.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address") or "").strip()
        if not address:
            raise BadResponse("ProbeMatch without an EndpointReference")
        out.append(
            ProbeMatch(
                sender=sender,
                endpoint=address[:200],
                xaddrs=tuple((match.findtext(f"{{{WSD}}}XAddrs") or "").split()[:8]),
                scopes=tuple((match.findtext(f"{{{WSD}}}Scopes") or "").split()[:32]),
                types=tuple((match.findtext(f"{{{WSD}}}Types") or "").split()[:8]),
            )
        )
    return out


async def probe(
    host: str, port: int = PORT, *, window_s: float, multicast: bool = False
) -> list[ProbeMatch]:
    """Probe ``host`` (or the group when ``multicast``); answers that do not parse are skipped
    when others did, and raise ``BadResponse`` when nothing usable came back."""
    if multicast and host != MULTICAST_GROUP:
        raise ValueError(f"multicast Probe goes to {MULTICAST_GROUP}, not {host}")
    message_id = uuid.uuid4().urn
    datagrams = await exchange(
        host, port, probe_message(message_id), window_s=window_s, multicast=multicast
    )
    found: list[ProbeMatch] = []
    bad: list[BadResponse] = []
    for sender, data in datagrams:
        try:
            found.extend(parse_matches(sender, data, message_id))
        except BadResponse as exc:
            bad.append(exc)
    if bad and not found:
        raise bad[0]
    return found
