"""Router persona: UPnP InternetGatewayDevice:1 with a WANIPConnection:1 that reveals its
port mappings (the classic way to find cameras exposed to the internet from inside).

SSDP as in :mod:`lab.services.ssdp`; description at ``/rootDesc.xml``; SOAP control at
``/ctl/IPConn`` with GetExternalIPAddress, GetGenericPortMappingEntry (UPnP error 713
SpecifiedArrayIndexInvalid past the last entry) and GetSpecificPortMappingEntry (714
NoSuchEntryInArray). Every mapping is TCP, enabled and permanent.
"""

from __future__ import annotations

import socket
import uuid as uuidlib
from collections.abc import Callable, Mapping
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from lab.services import Service
from lab.services._http import HttpRequest, HttpResponse, location, serve_http
from lab.services._net import MULTICAST_GROUP, ServiceGroup, UdpService, join_group
from lab.services.ssdp import description_root, element, responder, to_bytes, usn_table

IGD: Final = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WAN_DEVICE: Final = "urn:schemas-upnp-org:device:WANDevice:1"
WAN_CONNECTION_DEVICE: Final = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
WAN_IP: Final = "urn:schemas-upnp-org:service:WANIPConnection:1"
DESCRIPTION_PATH: Final = "/rootDesc.xml"
CONTROL_PATH: Final = "/ctl/IPConn"
SERVER: Final = "Linux/4.14 UPnP/1.1 MiniUPnPd/2.1"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
CONTROL_NS: Final = "urn:schemas-upnp-org:control-1-0"
DESCRIPTION: Final = "camwarden-lab"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

Mapping3 = tuple[int, str, int]
Result = list[tuple[str, str]]


class UpnpError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def description(udn: str, http: socket.socket) -> bytes:
    root, device = description_root()
    element(device, "deviceType", IGD)
    element(device, "friendlyName", "Router")
    element(device, "manufacturer", "camwarden lab")
    element(device, "modelName", "IGD")
    element(device, "UDN", udn)
    chain = device
    for kind in (WAN_DEVICE, WAN_CONNECTION_DEVICE):
        nested = element(chain, "deviceList", "")
        chain = element(nested, "device", "")
        element(chain, "deviceType", kind)
        element(chain, "UDN", udn)
    services = element(chain, "serviceList", "")
    service = element(services, "service", "")
    for tag, text in (
        ("serviceType", WAN_IP),
        ("serviceId", "urn:upnp-org:serviceId:WANIPConn1"),
        ("controlURL", CONTROL_PATH),
        ("eventSubURL", "/evt/IPConn"),
        ("SCPDURL", "/WANIPCn.xml"),
    ):
        element(service, tag, text)
    element(device, "presentationURL", location(http, "/"))
    return to_bytes(root)


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{SOAP_ENV}" '
        f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{body}'
        "</s:Body></s:Envelope>\r\n"
    ).encode()


def fault(error: UpnpError) -> bytes:
    return envelope(
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        f'<UPnPError xmlns="{CONTROL_NS}"><errorCode>{error.code}</errorCode>'
        f"<errorDescription>{error.text}</errorDescription></UPnPError></detail></s:Fault>"
    )


def parse_action(request: HttpRequest) -> tuple[str, dict[str, str]]:
    try:
        root = etree.fromstring(request.body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UpnpError(401, "Invalid Action") from exc
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise UpnpError(401, "Invalid Action")
    call = body[0]
    name = etree.QName(call).localname
    args = {etree.QName(arg).localname: (arg.text or "").strip() for arg in call}
    return name, args


def port_arg(args: Mapping[str, str], name: str) -> int:
    try:
        return int(args[name])
    except (KeyError, ValueError):
        raise UpnpError(402, "Invalid Args") from None


class Gateway:
    def __init__(self, mappings: list[Mapping3], external_ip: str) -> None:
        self.mappings = list(mappings)
        self.external_ip = external_ip
        self.actions: dict[str, Callable[[Mapping[str, str]], Result]] = {
            "GetExternalIPAddress": lambda _: [("NewExternalIPAddress", self.external_ip)],
            "GetGenericPortMappingEntry": self.generic,
            "GetSpecificPortMappingEntry": self.specific,
        }

    @staticmethod
    def entry(mapping: Mapping3) -> Result:
        _, client, internal = mapping
        return [
            ("NewInternalPort", str(internal)),
            ("NewInternalClient", client),
            ("NewEnabled", "1"),
            ("NewPortMappingDescription", DESCRIPTION),
            ("NewLeaseDuration", "0"),
        ]

    def generic(self, args: Mapping[str, str]) -> Result:
        index = port_arg(args, "NewPortMappingIndex")
        if not 0 <= index < len(self.mappings):
            raise UpnpError(713, "SpecifiedArrayIndexInvalid")
        mapping = self.mappings[index]
        head = [("NewRemoteHost", ""), ("NewExternalPort", str(mapping[0])), ("NewProtocol", "TCP")]
        return head + self.entry(mapping)

    def specific(self, args: Mapping[str, str]) -> Result:
        port = port_arg(args, "NewExternalPort")
        protocol = args.get("NewProtocol", "").upper()
        for mapping in self.mappings:
            if mapping[0] == port and protocol == "TCP":
                return self.entry(mapping)
        raise UpnpError(714, "NoSuchEntryInArray")

    def control(self, request: HttpRequest) -> HttpResponse:
        try:
            name, args = parse_action(request)
            action = self.actions.get(name)
            if action is None:
                raise UpnpError(401, "Invalid Action")
            result = action(args)
        except UpnpError as error:
            return HttpResponse(500, fault(error))
        out = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in result)
        reply = f'<u:{name}Response xmlns:u="{WAN_IP}">{out}</u:{name}Response>'
        return HttpResponse(200, envelope(reply))


async def start_igd(
    udp: socket.socket,
    http: socket.socket,
    *,
    mappings: list[tuple[int, str, int]],
    external_ip: str,
) -> Service:
    """A UPnP IGD on ``udp`` (SSDP) and ``http`` (description and SOAP control)."""
    udn = f"uuid:{uuidlib.uuid5(uuidlib.NAMESPACE_URL, f'camwarden-lab-igd:{external_ip}')}"
    gateway = Gateway(mappings, external_ip)
    document = description(udn, http)

    def route(request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path == DESCRIPTION_PATH:
            return HttpResponse(200, document)
        if request.method == "POST" and request.path == CONTROL_PATH:
            return gateway.control(request)
        return HttpResponse(404, b"", "text/plain")

    web = await serve_http(http, route, server=SERVER)
    join_group(udp, MULTICAST_GROUP)
    table = usn_table(udn.removeprefix("uuid:"), [IGD, WAN_DEVICE, WAN_CONNECTION_DEVICE, WAN_IP])
    ssdp = await UdpService.start(udp, responder(table, location(http, DESCRIPTION_PATH), SERVER))
    return ServiceGroup([web, ssdp])
