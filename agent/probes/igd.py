"""UPnP Internet Gateway Device client (SVC-05): the router's port mappings.

Unicast M-SEARCH for an InternetGatewayDevice at the configured router, its description (only
from the router's own address: a LOCATION pointing elsewhere is refused), then
``GetGenericPortMappingEntry`` for index 0, 1, ... until UPnP error 713
(SpecifiedArrayIndexInvalid), or ``max_entries``. Read-only: no mapping is ever added or removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin
from xml.etree.ElementTree import Element  # a type; parsing goes through _xml

from agent.probes import ssdp, web
from agent.probes._xml import parse
from agent.scope import own_url
from agent.vendors.base import BadResponse, Unsupported

__all__ = ["PortMapping", "port_mappings"]

IGD: Final = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WAN_SERVICES: Final = (
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
DEVICE_NS: Final = "urn:schemas-upnp-org:device-1-0"
END_OF_TABLE: Final = frozenset({713, 714, 402})  # index invalid / no entry / args (some routers)
_ERROR_CODE = re.compile(rb"<(?:\w+:)?errorCode>\s*(\d+)\s*<")


@dataclass(frozen=True, slots=True)
class PortMapping:
    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    enabled: bool
    description: str


def _field(root: Element, name: str) -> str:
    found = root.find(f".//{name}")
    return (found.text or "").strip() if found is not None else ""


async def _control_url(router: str, port: int, *, timeout_s: float) -> tuple[str, str]:
    replies = await ssdp.search(router, port, target=IGD, window_s=timeout_s)
    locations = [r.location for r in replies if r.sender == router and r.location]
    if not locations:
        raise Unsupported(f"{router} did not answer an M-SEARCH for {IGD}")
    location = own_url(locations[0], router, "IGD description URL")
    reply = await web.request(location, timeout_s=timeout_s, max_bytes=128 * 1024)
    if reply.status != 200:
        raise BadResponse(f"IGD description: HTTP {reply.status}")
    root = parse(reply.body)
    base = (root.findtext(f"{{{DEVICE_NS}}}URLBase") or location).strip()
    for service in root.iter(f"{{{DEVICE_NS}}}service"):
        kind = (service.findtext(f"{{{DEVICE_NS}}}serviceType") or "").strip()
        control = (service.findtext(f"{{{DEVICE_NS}}}controlURL") or "").strip()
        if kind in WAN_SERVICES and control:
            return own_url(urljoin(base, control), router, "IGD control URL"), kind
    raise Unsupported("the IGD offers no WANIPConnection or WANPPPConnection service")


def _envelope(service: str, index: int) -> bytes:
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:GetGenericPortMappingEntry xmlns:u="{service}">'
        f"<NewPortMappingIndex>{index}</NewPortMappingIndex>"
        "</u:GetGenericPortMappingEntry></s:Body></s:Envelope>"
    ).encode()


def _int(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, int() refuses it
        raise BadResponse(f"IGD mapping: {what} {text[:20]!r} is not a number")
    return int(text)


def parse_mapping(body: bytes) -> PortMapping:
    """A ``GetGenericPortMappingEntry`` answer (``BadResponse`` if it is not one)."""
    root = parse(body, max_bytes=64 * 1024)
    return PortMapping(
        external_port=_int(_field(root, "NewExternalPort"), "external port"),
        protocol=_field(root, "NewProtocol").upper()[:8],
        internal_client=_field(root, "NewInternalClient")[:64],
        internal_port=_int(_field(root, "NewInternalPort"), "internal port"),
        enabled=_field(root, "NewEnabled") in ("1", "true"),
        description=_field(root, "NewPortMappingDescription")[:80],
    )


async def port_mappings(
    router: str, ssdp_port: int = ssdp.PORT, *, timeout_s: float, max_entries: int = 256
) -> list[PortMapping]:
    """The router's port mappings (``Unsupported`` if it runs no IGD with a WAN service)."""
    url, service = await _control_url(router, ssdp_port, timeout_s=timeout_s)
    headers = {
        "Content-Type": 'text/xml; charset="utf-8"',
        "SOAPAction": f'"{service}#GetGenericPortMappingEntry"',
    }
    mappings: list[PortMapping] = []
    for index in range(max_entries):
        reply = await web.request(
            url,
            method="POST",
            body=_envelope(service, index),
            headers=headers,
            timeout_s=timeout_s,
            max_bytes=64 * 1024,
        )
        if reply.status == 500:
            code = _ERROR_CODE.search(reply.body)
            if code is not None and int(code.group(1)) in END_OF_TABLE:
                return mappings
            raise BadResponse(f"IGD fault at entry {index}: {reply.body[:120]!r}")
        if reply.status != 200:
            raise BadResponse(f"IGD: HTTP {reply.status} at entry {index}")
        mappings.append(parse_mapping(reply.body))
    return mappings  # the table is longer than max_entries; the first ones are reported
