"""ONVIF WS-Discovery (2005/04 drafts, SOAP 1.2) responder for one camera.

Answers a Probe whose Types and Scopes match (no Types: everything matches) with a unicast
ProbeMatches carrying the EndpointReference, ``dn:NetworkVideoTransmitter tds:Device``, the
scopes and the XAddrs. In namespace mode the socket joins 239.255.255.250, a Hello is
multicast on start and a Bye on close; on loopback nothing is ever multicast.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import uuid as uuidlib
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from lab.services._net import MULTICAST_GROUP, UdpService, join_group

PORT: Final = 3702
SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN: Final = "http://www.onvif.org/ver10/network/wsdl"
TDS: Final = "http://www.onvif.org/ver10/device/wsdl"
ANONYMOUS: Final = f"{WSA}/role/anonymous"
DISCOVERY_TO: Final = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
TYPES: Final = frozenset({(DN, "NetworkVideoTransmitter"), (TDS, "Device")})
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def endpoint(uuid: str) -> str:
    return uuid if uuid.startswith("urn:") else f"urn:uuid:{uuid}"


def scope_matches(wanted: str, offered: str) -> bool:
    """RFC 3986 matching of WS-Discovery: equal, or a whole-segment prefix."""
    wanted, offered = wanted.rstrip("/"), offered.rstrip("/")
    return offered == wanted or offered.startswith(wanted + "/")


def probe_of(datagram: bytes) -> tuple[str, set[tuple[str, str]], list[str]] | None:
    """(MessageID, requested types, requested scopes) of a Probe, or None."""
    try:
        root = etree.fromstring(datagram, _PARSER)
    except etree.XMLSyntaxError:
        return None
    probe = root.find(f"{{{SOAP}}}Body/{{{WSD}}}Probe")
    message_id = root.findtext(f"{{{SOAP}}}Header/{{{WSA}}}MessageID")
    if probe is None or not message_id:
        return None
    types: set[tuple[str, str]] = set()
    types_el = probe.find(f"{{{WSD}}}Types")
    if types_el is not None:
        for name in (types_el.text or "").split():
            prefix, _, local = name.rpartition(":")
            namespace = types_el.nsmap.get(prefix or None)
            types.add((namespace or "", local))
    return message_id.strip(), types, (probe.findtext(f"{{{WSD}}}Scopes") or "").split()


class Responder:
    def __init__(self, uuid: str, xaddrs: list[str], scopes: list[str]) -> None:
        self.address = endpoint(uuid)
        self.xaddrs = xaddrs
        self.scopes = scopes
        self.instance = 1
        self.numbers = itertools.count(1)

    def envelope(self, action: str, to: str, body: str, relates_to: str | None = None) -> bytes:
        relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}" '
            f'xmlns:dn="{DN}" xmlns:tds="{TDS}"><s:Header>'
            f"<a:MessageID>{uuidlib.uuid4().urn}</a:MessageID>{relates}"
            f"<a:To>{to}</a:To><a:Action>{WSD}/{action}</a:Action>"
            f'<d:AppSequence InstanceId="{self.instance}" MessageNumber="{next(self.numbers)}"/>'
            f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        ).encode()

    def description(self, *, full: bool = True) -> str:
        epr = f"<a:EndpointReference><a:Address>{self.address}</a:Address></a:EndpointReference>"
        if not full:
            return epr
        return (
            f"{epr}<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
            f"<d:Scopes>{escape(' '.join(self.scopes))}</d:Scopes>"
            f"<d:XAddrs>{escape(' '.join(self.xaddrs))}</d:XAddrs>"
            "<d:MetadataVersion>1</d:MetadataVersion>"
        )

    def hello(self) -> bytes:
        return self.envelope("Hello", DISCOVERY_TO, f"<d:Hello>{self.description()}</d:Hello>")

    def bye(self) -> bytes:
        body = f"<d:Bye>{self.description(full=False)}</d:Bye>"
        return self.envelope("Bye", DISCOVERY_TO, body)

    def respond(self, datagram: bytes, _sender: tuple[str, int]) -> bytes | None:
        probe = probe_of(datagram)
        if probe is None:
            return None
        message_id, types, scopes = probe
        if not types <= TYPES:
            return None
        if not all(any(scope_matches(w, o) for o in self.scopes) for w in scopes):
            return None
        body = f"<d:ProbeMatches><d:ProbeMatch>{self.description()}</d:ProbeMatch></d:ProbeMatches>"
        return self.envelope("ProbeMatches", ANONYMOUS, body, relates_to=message_id)


class WsDiscoveryService:
    def __init__(self, udp: UdpService, responder: Responder, multicast: bool) -> None:
        self._udp = udp
        self._responder = responder
        self._multicast = multicast

    async def close(self) -> None:
        if self._multicast:
            self._udp.transport.sendto(self._responder.bye(), (MULTICAST_GROUP, PORT))
            await asyncio.sleep(0)
        await self._udp.close()


async def start_wsdiscovery(
    sock: socket.socket, *, uuid: str, xaddrs: list[str], scopes: list[str]
) -> WsDiscoveryService:
    """Answer WS-Discovery probes on the bound UDP socket ``sock`` (normally port 3702)."""
    responder = Responder(uuid, xaddrs, scopes)
    multicast = join_group(sock, MULTICAST_GROUP)
    udp = await UdpService.start(sock, responder.respond)
    if multicast:
        udp.transport.sendto(responder.hello(), (MULTICAST_GROUP, PORT))
    return WsDiscoveryService(udp, responder, multicast)
