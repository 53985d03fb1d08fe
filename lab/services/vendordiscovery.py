"""The vendors' own discovery responders: Hikvision SADP (UDP 37020) and Dahua DHDiscover
(UDP 37810), for one camera or recorder.

SADP: an XML ``<Probe>`` with ``<Types>inquiry</Types>`` is answered with a ``<ProbeMatch>``
that echoes its ``Uuid`` and carries the device's model, serial (``DeviceSN``), MAC (dashes,
lower case), address, ports, firmware (``V5.7.3build 221114``: no space before ``build``),
channel counts and activation state. The element set and spellings follow answers recorded from
real devices (see ``tests/fixtures/real/INDEX.json``, endpoint "SADP inquiry"), down to the
device lock flag of newer firmware.

DHDiscover: a 32-byte DHIP header (``0x20 00 00 00 "DHIP"``, a zero session, the body length
as little-endian 32-bit at offsets 16 and 24) and the JSON ``{"method": "DHDiscover.search"}``
are answered with the same framing around ``client.notifyDevInfo`` (``params.deviceInfo``:
``DeviceClass``, ``DeviceType``, ``SerialNo``, ``Version``, ``IPv4Address.IPAddress``, ...;
the MAC at the top level), as recorded from real devices (endpoint "DHDiscover.search").

Both answer unicast to the sender. In namespace mode the socket also joins 239.255.255.250 (SADP)
so that a multicast inquiry reaches it; on loopback nothing is multicast.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from lab.services._net import MULTICAST_GROUP, UdpService, join_group

SADP_PORT: Final = 37020
DHDISCOVER_PORT: Final = 37810
DHIP_MAGIC: Final = b"\x20\x00\x00\x00DHIP"
DHIP_HEADER: Final = 32
MAX_DATAGRAM: Final = 4096
NO_GATEWAY: Final = "0.0.0.0"  # noqa: S104  # an address in the answer, nothing is bound to it
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What a discovery answer tells about the device."""

    vendor: str
    model: str
    serial: str
    mac: str  # aa:bb:cc:dd:ee:ff
    host: str
    http_port: int
    sdk_port: int
    version: str
    build: str  # the vendor's build string ("build 221114", "2021-08-12")
    device_class: str  # "IPC", "NVR", "DVR"
    channels: int
    activated: bool
    booted: str = "2026-01-01 00:00:00"  # the device's clock at boot (SADP BootTime)


def dhip_frame(body: bytes) -> bytes:
    """``body`` behind a DHIP header."""
    length = struct.pack("<I", len(body))
    return DHIP_MAGIC + bytes(8) + length + bytes(4) + length + bytes(4) + body


def dhip_body(datagram: bytes) -> bytes | None:
    """The JSON body of a DHIP datagram, or None when it is not one."""
    if len(datagram) < DHIP_HEADER or not datagram.startswith(DHIP_MAGIC):
        return None
    (length,) = struct.unpack_from("<I", datagram, 16)
    body = datagram[DHIP_HEADER:]
    return body if length <= len(body) else None


def sadp_answer(facts: DeviceFacts, datagram: bytes) -> bytes | None:
    """The ProbeMatch answering an SADP inquiry, or None for anything else."""
    if len(datagram) > MAX_DATAGRAM:
        return None
    try:
        root = etree.fromstring(datagram, _PARSER)
    except etree.XMLSyntaxError:
        return None
    if root.tag != "Probe" or (root.findtext("Types") or "").strip() != "inquiry":
        return None
    fields = {
        "Uuid": (root.findtext("Uuid") or "").strip(),
        "Types": "inquiry",
        "DeviceType": "142378" if facts.device_class == "IPC" else "139711",
        "DeviceDescription": facts.model,
        "DeviceSN": facts.serial,
        "CommandPort": str(facts.sdk_port),
        "HttpPort": str(facts.http_port),
        "MAC": facts.mac.replace(":", "-").lower(),
        "IPv4Address": facts.host,
        "IPv4SubnetMask": "255.255.255.0",
        "IPv4Gateway": NO_GATEWAY,
        "DHCP": "false",
        "AnalogChannelNum": str(facts.channels if facts.device_class == "DVR" else 0),
        "DigitalChannelNum": str(facts.channels if facts.device_class == "NVR" else 1),
        "SoftwareVersion": f"{facts.version}{facts.build}",
        "DSPVersion": f"V1.0, {facts.build}",
        "BootTime": facts.booted,
        "OEMInfo": "N/A",
        "Activated": "true" if facts.activated else "false",
        "PasswordResetAbility": "true",
        "DeviceLock": "false",
    }
    items = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<ProbeMatch>{items}</ProbeMatch>'.encode()


def dhdiscover_answer(facts: DeviceFacts, datagram: bytes) -> bytes | None:
    """The ``client.notifyDevInfo`` answering a ``DHDiscover.search``, or None."""
    body = dhip_body(datagram[:MAX_DATAGRAM])
    try:
        request = json.loads(body) if body is not None else None
    except ValueError:
        return None
    if not isinstance(request, dict) or request.get("method") != "DHDiscover.search":
        return None
    info = {
        "AlarmInputChannels": 0,
        "AlarmOutputChannels": 0,
        "DeviceClass": facts.device_class,
        "DeviceID": "",
        "DeviceType": facts.model,
        "Find": "BC",
        "FindVersion": 1,
        "HttpPort": facts.http_port,
        "IPv4Address": {
            "DefaultGateway": NO_GATEWAY,
            "DhcpEnable": False,
            "IPAddress": facts.host,
            "SubnetMask": "255.255.255.0",
        },
        "IPv6Address": {
            "DefaultGateway": None,
            "DhcpEnable": False,
            "IPAddress": "/0",
            "LinkLocalAddress": f"{_link_local(facts.mac)}/64",
        },
        "Init": 2714,
        "MachineName": facts.serial,
        "Manufacturer": facts.vendor,
        "Port": facts.sdk_port,
        "RemoteVideoInputChannels": facts.channels if facts.device_class == "NVR" else 0,
        "SerialNo": facts.serial,
        "UnLoginFuncMask": 1,
        "Vendor": facts.vendor,
        "Version": facts.version,
        "VideoInputChannels": facts.channels if facts.device_class == "DVR" else 1,
        "VideoOutputChannels": 1 if facts.channels else 0,
    }
    params = {"deviceInfo": info}
    answer = {"mac": facts.mac.lower(), "method": "client.notifyDevInfo", "params": params}
    return dhip_frame(json.dumps(answer).encode())


def _link_local(mac: str) -> str:
    """The IPv6 link-local address a device derives from its MAC (modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    groups = ":".join(f"{eui[i]:02x}{eui[i + 1]:02x}" for i in range(0, 8, 2))
    return f"fe80::{groups}"


async def start_sadp(sock: socket.socket, facts: DeviceFacts) -> UdpService:
    """Answer SADP inquiries on the bound UDP socket ``sock`` (normally port 37020)."""
    join_group(sock, MULTICAST_GROUP)
    return await UdpService.start(sock, lambda data, _sender: sadp_answer(facts, data))


async def start_dhdiscover(sock: socket.socket, facts: DeviceFacts) -> UdpService:
    """Answer DHDiscover searches on the bound UDP socket ``sock`` (normally port 37810)."""
    return await UdpService.start(sock, lambda data, _sender: dhdiscover_answer(facts, data))
