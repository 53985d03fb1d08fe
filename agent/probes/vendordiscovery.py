"""The vendors' own discovery protocols: Hikvision SADP (UDP 37020) and Dahua DHDiscover
(UDP 37810).

Hikvision, Dahua and their OEM brands (HiLook, EZVIZ; KBVision, Imou) answer these on every
firmware, including recorders, whose WS-Discovery is often off. Both answers name the device's
serial number and MAC, which is what the inventory keys a camera by.

::

    SADP        out: <Probe><Uuid>U</Uuid><Types>inquiry</Types></Probe> (XML)
                in:  <ProbeMatch> echoing Uuid U: DeviceDescription (model), DeviceSN, MAC
                     (dashes), IPv4Address, HttpPort, CommandPort, SoftwareVersion,
                     DigitalChannelNum / AnalogChannelNum, Activated
    DHDiscover  out: a 32-byte DHIP header (0x20 00 00 00 "DHIP", zero session, body length
                     little-endian at offsets 16 and 24) + {"method": "DHDiscover.search"}
                in:  the same framing + {"method": "client.notifyDevInfo", "mac": ...,
                     "params": {"deviceInfo": {DeviceClass, DeviceType, SerialNo, Vendor,
                     Version, HttpPort, Port, IPv4Address: {IPAddress}, ...}}}

Unicast to one address, or multicast (SADP only, 239.255.255.250) on the camera segment. An
answer that is not the protocol's is skipped; when nothing usable came back but something did,
``BadResponse``. Every text is cut to a bound; the sizes of datagrams are bounded by ``_udp``.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.probes._udp import MULTICAST_GROUP, exchange
from agent.probes._xml import parse
from agent.vendors.base import BadResponse

__all__ = [
    "DHDISCOVER_PORT",
    "SADP_PORT",
    "Announcement",
    "dhdiscover_search",
    "dhip_frame",
    "normal_mac",
    "parse_dhdiscover",
    "parse_sadp",
    "sadp_inquiry",
    "search",
]

SADP_PORT: Final = 37020
DHDISCOVER_PORT: Final = 37810
DHIP_MAGIC: Final = b"\x20\x00\x00\x00DHIP"
DHIP_HEADER: Final = 32
MAX_TEXT: Final = 128
MAX_ANSWER: Final = 16 * 1024
_DH_SEARCH: Final = b'{ "method" : "DHDiscover.search", "params" : { "mac" : "", "uni" : 1 } }\n'


@dataclass(frozen=True, slots=True)
class Announcement:
    """One device's answer, vendor-neutral."""

    sender: str  # where the datagram came from
    protocol: str  # "sadp", "dhdiscover"
    family: str  # whose firmware it runs: "hikvision", "dahua"
    brand: str | None  # the maker it names (Dahua's Vendor: "KBVision", "Imou"...)
    model: str | None
    serial: str | None
    mac: str | None  # aa:bb:cc:dd:ee:ff
    address: str | None  # the IPv4 address it says it has
    firmware: str | None
    device_class: str  # "camera", "recorder"
    channels: int  # a recorder's channels (0 for a camera)
    http_port: int | None
    sdk_port: int | None
    activated: bool | None


def sadp_inquiry(token: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{token}</Uuid>'
        "<Types>inquiry</Types></Probe>"
    ).encode()


def dhip_frame(body: bytes) -> bytes:
    length = struct.pack("<I", len(body))
    return DHIP_MAGIC + bytes(8) + length + bytes(4) + length + bytes(4) + body


def dhdiscover_search() -> bytes:
    return dhip_frame(_DH_SEARCH)


def normal_mac(text: str | None) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from any of the vendors' spellings, or None."""
    if not text:
        return None
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    if len(digits) != 12 or len(text) > 17:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:MAX_TEXT] or None


def _int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 <= number <= 65535 else None


def parse_sadp(sender: str, datagram: bytes, token: str) -> Announcement | None:
    """The ProbeMatch answering inquiry ``token``; None for another document (our own Probe
    looped back, another inquirer's answer); ``BadResponse`` when it is not XML."""
    root = parse(datagram, max_bytes=MAX_ANSWER)
    if root.tag != "ProbeMatch" or (root.findtext("Uuid") or "").strip() != token:
        return None

    def get(tag: str) -> str | None:
        return _text(root.findtext(tag))

    digital, analog = _int(get("DigitalChannelNum")) or 0, _int(get("AnalogChannelNum")) or 0
    # a camera or an intercom names one channel (digital or analog: real answers show both)
    recorder = analog > 1 or digital > 1
    activated = get("Activated")
    return Announcement(
        sender=sender,
        protocol="sadp",
        family="hikvision",
        brand=None,
        model=get("DeviceDescription"),
        serial=get("DeviceSN"),
        mac=normal_mac(get("MAC")),
        address=get("IPv4Address"),
        firmware=get("SoftwareVersion"),
        device_class="recorder" if recorder else "camera",
        channels=digital + analog if recorder else 0,
        http_port=_int(get("HttpPort")),
        sdk_port=_int(get("CommandPort")),
        activated=None if activated is None else activated.lower() == "true",
    )


def parse_dhdiscover(sender: str, datagram: bytes) -> Announcement | None:
    """A ``client.notifyDevInfo`` answer; None for other DHIP traffic (a search looped back);
    ``BadResponse`` when it is not DHIP with a JSON body."""
    if len(datagram) < DHIP_HEADER or not datagram.startswith(DHIP_MAGIC):
        raise BadResponse("not a DHIP datagram")
    (length,) = struct.unpack_from("<I", datagram, 16)
    body = datagram[DHIP_HEADER : DHIP_HEADER + min(length, MAX_ANSWER)]
    try:
        message = json.loads(body.rstrip(b"\x00\n"))
    except ValueError as exc:
        raise BadResponse(f"DHIP body is not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("method") != "client.notifyDevInfo":
        return None
    params = message.get("params")
    info = params.get("deviceInfo") if isinstance(params, dict) else None
    if not isinstance(info, dict):
        raise BadResponse("client.notifyDevInfo without deviceInfo")
    ipv4 = info.get("IPv4Address")
    kind = (_text(info.get("DeviceClass")) or "").upper()
    remote = _int(info.get("RemoteVideoInputChannels")) or 0
    # IP channels make a recorder whatever its class word (an Intelbras DVR says "MHDX")
    recorder = remote > 0 or any(word in kind for word in ("NVR", "DVR", "XVR", "HCVR"))
    channels = remote + (_int(info.get("VideoInputChannels")) or 0)
    return Announcement(
        sender=sender,
        protocol="dhdiscover",
        family="dahua",
        brand=_text(info.get("Vendor")),
        model=_text(info.get("DeviceType")),
        serial=_text(info.get("SerialNo")),
        mac=normal_mac(_text(message.get("mac"))),
        address=_text(ipv4.get("IPAddress")) if isinstance(ipv4, dict) else None,
        firmware=_text(info.get("Version")),
        device_class="recorder" if recorder else "camera",
        channels=channels if recorder else 0,
        http_port=_int(info.get("HttpPort")),
        sdk_port=_int(info.get("Port")),
        activated=None,
    )


async def search(
    protocol: str, host: str, port: int, *, window_s: float, multicast: bool = False
) -> list[Announcement]:
    """Ask ``host`` (or, SADP only, the group when ``multicast``) with ``protocol`` ("sadp",
    "dhdiscover")."""
    read: Callable[[str, bytes], Announcement | None]
    if protocol == "sadp":
        token = str(uuid.uuid4()).upper()
        payload = sadp_inquiry(token)

        def read(sender: str, data: bytes) -> Announcement | None:
            return parse_sadp(sender, data, token)
    elif protocol == "dhdiscover":
        payload, read = dhdiscover_search(), parse_dhdiscover
    else:
        raise ValueError(f"unknown discovery protocol {protocol!r}")
    if multicast and (protocol != "sadp" or host != MULTICAST_GROUP):
        raise ValueError(f"multicast {protocol} is SADP to {MULTICAST_GROUP} only")
    datagrams = await exchange(host, port, payload, window_s=window_s, multicast=multicast)
    found: list[Announcement] = []
    bad: list[BadResponse] = []
    for sender, data in datagrams:
        try:
            answer = read(sender, data)
        except BadResponse as exc:
            bad.append(exc)
            continue
        if answer is not None:
            found.append(answer)
    if bad and not found:
        raise bad[0]
    return found
