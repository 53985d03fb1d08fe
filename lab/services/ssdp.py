"""Camera UPnP: an SSDP responder plus the device description it points at.

Unicast M-SEARCH is answered always; in namespace mode the UDP socket also joins
239.255.255.250 so multicast M-SEARCH from the agent's namespace is answered too. The
description XML is served on the given TCP socket at ``/upnp/description.xml``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from email.utils import formatdate
from typing import Final

from lxml import etree

from lab.services import Service
from lab.services._http import HttpRequest, HttpResponse, location, serve_http
from lab.services._net import MULTICAST_GROUP, Datagram, ServiceGroup, UdpService, join_group

DEVICE_BASIC: Final = "urn:schemas-upnp-org:device:Basic:1"
DEVICE_NETWORK_CAMERA: Final = "urn:schemas-upnp-org:device:NetworkCamera:1"
DESCRIPTION_PATH: Final = "/upnp/description.xml"
UPNP_DEVICE_NS: Final = "urn:schemas-upnp-org:device-1-0"
MAX_AGE: Final = 1800


def search_target(datagram: bytes) -> str | None:
    """The ST of an M-SEARCH request, or None for anything else."""
    lines = datagram.decode("utf-8", "replace").split("\r\n")
    if not lines[0].upper().startswith("M-SEARCH * HTTP/1.1"):
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().upper()] = value.strip()
    if headers.get("MAN", "").strip('"') != "ssdp:discover":
        return None
    return headers.get("ST")


def search_reply(target: str, usn: str, url: str, server: str) -> bytes:
    return (
        "HTTP/1.1 200 OK\r\n"
        f"CACHE-CONTROL: max-age={MAX_AGE}\r\n"
        f"DATE: {formatdate(usegmt=True)}\r\n"
        "EXT:\r\n"
        f"LOCATION: {url}\r\n"
        f"SERVER: {server}\r\n"
        f"ST: {target}\r\n"
        f"USN: {usn}\r\n\r\n"
    ).encode()


def usn_table(uuid: str, types: list[str]) -> dict[str, str]:
    """ST -> USN for a root device with ``uuid`` advertising device and service ``types``."""
    udn = f"uuid:{uuid}"
    table = {"upnp:rootdevice": f"{udn}::upnp:rootdevice", udn: udn}
    table.update({kind: f"{udn}::{kind}" for kind in types})
    return table


def responder(table: Mapping[str, str], url: str, server: str) -> Datagram:
    def respond(data: bytes, _sender: tuple[str, int]) -> bytes | None:
        target = search_target(data)
        if target == "ssdp:all":
            return b"".join(search_reply(st, usn, url, server) for st, usn in table.items())
        if target is not None and target in table:
            return search_reply(target, table[target], url, server)
        return None

    return respond


def element(parent: etree._Element, tag: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{UPNP_DEVICE_NS}}}{tag}")
    child.text = text
    return child


def description_root() -> tuple[etree._Element, etree._Element]:
    root = etree.fromstring(f'<root xmlns="{UPNP_DEVICE_NS}"/>'.encode())
    spec = etree.SubElement(root, f"{{{UPNP_DEVICE_NS}}}specVersion")
    element(spec, "major", "1")
    element(spec, "minor", "0")
    return root, etree.SubElement(root, f"{{{UPNP_DEVICE_NS}}}device")


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def camera_description(
    *, device_type: str, friendly_name: str, manufacturer: str, model: str, uuid: str
) -> bytes:
    root, device = description_root()
    for tag, text in (
        ("deviceType", device_type),
        ("friendlyName", friendly_name),
        ("manufacturer", manufacturer),
        ("modelDescription", f"{manufacturer} {model}"),
        ("modelName", model),
        ("modelNumber", model),
        ("UDN", f"uuid:{uuid}"),
    ):
        element(device, tag, text)
    return to_bytes(root)


async def start_ssdp(
    udp: socket.socket,
    http: socket.socket,
    *,
    friendly_name: str,
    manufacturer: str,
    model: str,
    uuid: str,
    server_banner: str,
    device_type: str = DEVICE_BASIC,
) -> Service:
    """Answer M-SEARCH on ``udp`` and serve the description on ``http``."""
    document = camera_description(
        device_type=device_type,
        friendly_name=friendly_name,
        manufacturer=manufacturer,
        model=model,
        uuid=uuid,
    )

    def route(request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path == DESCRIPTION_PATH:
            return HttpResponse(200, document)
        return HttpResponse(404, b"", "text/plain")

    web = await serve_http(http, route, server=server_banner)
    join_group(udp, MULTICAST_GROUP)
    table = usn_table(uuid, [device_type])
    ssdp = await UdpService.start(
        udp, responder(table, location(http, DESCRIPTION_PATH), server_banner)
    )
    return ServiceGroup([web, ssdp])
