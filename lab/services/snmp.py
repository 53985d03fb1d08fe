"""A minimal SNMP v1/v2c agent: the system group, read-only, for the right community only.

Answers ``GetRequest`` and ``GetNextRequest`` for sysDescr.0, sysObjectID.0, sysUpTime.0 and
sysName.0. A request with a community outside ``communities``, an SNMPv3 message or anything
malformed gets no answer at all, exactly like a camera whose community string was guessed wrong.

BER subset (X.690): definite lengths, INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER, SEQUENCE,
TimeTicks and the context-tagged PDUs and v2c exceptions.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lab.services import Service
from lab.services._net import UdpService

INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OID: Final = 0x06
SEQUENCE: Final = 0x30
TIMETICKS: Final = 0x43
GET: Final = 0xA0
GET_NEXT: Final = 0xA1
RESPONSE: Final = 0xA2
NO_SUCH_OBJECT: Final = 0x80
END_OF_MIB_VIEW: Final = 0x82
V1, V2C = 0, 1
NO_SUCH_NAME: Final = 2  # SNMPv1 error-status

SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID: Final = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Final = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Final = (1, 3, 6, 1, 2, 1, 1, 5, 0)
NET_SNMP_LINUX: Final = "1.3.6.1.4.1.8072.3.2.10"

Oid = tuple[int, ...]


class BerError(ValueError):
    """The datagram is not the BER we understand; the agent stays silent."""


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(value)) + value


def encode_integer(value: int, tag: int = INTEGER) -> bytes:
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_unsigned(value: int, tag: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(tag, body)


def encode_oid(oid: Oid) -> bytes:
    if len(oid) < 2:
        raise BerError(f"OID {oid} is too short")
    body = bytearray([oid[0] * 40 + oid[1]])
    for arc in oid[2:]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return tlv(OID, bytes(body))


def parse_oid(text: str) -> Oid:
    return tuple(int(arc) for arc in text.strip(".").split("."))


def decode_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Returns (tag, value, offset after the element)."""
    if offset + 2 > len(data):
        raise BerError("truncated header")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise BerError("unsupported length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    if offset + length > len(data):
        raise BerError("truncated value")
    return tag, data[offset : offset + length], offset + length


def decode_sequence(data: bytes) -> list[tuple[int, bytes]]:
    items = []
    offset = 0
    while offset < len(data):
        tag, value, offset = decode_tlv(data, offset)
        items.append((tag, value))
    return items


def decode_integer(value: bytes) -> int:
    if not value:
        raise BerError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


def decode_oid(value: bytes) -> Oid:
    if not value:
        raise BerError("empty OID")
    arcs = [value[0] // 40, value[0] % 40] if value[0] < 80 else [2, value[0] - 80]
    arc = 0
    for byte in value[1:]:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    return tuple(arcs)


@dataclass(frozen=True, slots=True)
class Request:
    version: int
    community: str
    pdu: int
    request_id: int
    oids: tuple[Oid, ...]


def decode_request(datagram: bytes) -> Request:
    tag, body, end = decode_tlv(datagram)
    if tag != SEQUENCE or end != len(datagram):
        raise BerError("not an SNMP message")
    fields = decode_sequence(body)
    if len(fields) != 3 or fields[0][0] != INTEGER or fields[1][0] != OCTET_STRING:
        raise BerError("not an SNMP v1/v2c message")
    version = decode_integer(fields[0][1])
    pdu, pdu_body = fields[2]
    if version not in (V1, V2C) or pdu not in (GET, GET_NEXT):
        raise BerError(f"unsupported version {version} or PDU {pdu:#x}")
    parts = decode_sequence(pdu_body)
    if len(parts) != 4 or parts[0][0] != INTEGER or parts[3][0] != SEQUENCE:
        raise BerError("malformed PDU")
    oids = []
    for bind_tag, bind in decode_sequence(parts[3][1]):
        name = decode_sequence(bind)
        if bind_tag != SEQUENCE or not name or name[0][0] != OID:
            raise BerError("malformed varbind")
        oids.append(decode_oid(name[0][1]))
    community = fields[1][1].decode("utf-8", "replace")
    return Request(version, community, pdu, decode_integer(parts[0][1]), tuple(oids))


def encode_response(
    request: Request, binds: list[tuple[Oid, bytes]], error: int, index: int
) -> bytes:
    varbinds = b"".join(tlv(SEQUENCE, encode_oid(oid) + value) for oid, value in binds)
    pdu = tlv(
        RESPONSE,
        encode_integer(request.request_id)
        + encode_integer(error)
        + encode_integer(index)
        + tlv(SEQUENCE, varbinds),
    )
    community = tlv(OCTET_STRING, request.community.encode("utf-8"))
    return tlv(SEQUENCE, encode_integer(request.version) + community + pdu)


class SystemGroup:
    """The read-only MIB this agent serves, ordered by OID for GetNext."""

    def __init__(self, values: dict[Oid, Callable[[], bytes]]) -> None:
        self._values = dict(sorted(values.items()))

    def get(self, oid: Oid) -> bytes | None:
        value = self._values.get(oid)
        return None if value is None else value()

    def next(self, oid: Oid) -> tuple[Oid, bytes] | None:
        for candidate, value in self._values.items():
            if candidate > oid:
                return candidate, value()
        return None


def answer(mib: SystemGroup, communities: frozenset[str], datagram: bytes) -> bytes | None:
    """The response datagram for ``datagram``, or None when the agent must stay silent."""
    try:
        request = decode_request(datagram)
    except BerError:
        return None
    if request.community not in communities:
        return None
    binds: list[tuple[Oid, bytes]] = []
    for position, oid in enumerate(request.oids, start=1):
        if request.pdu == GET:
            value = mib.get(oid)
            found = None if value is None else (oid, value)
            missing = tlv(NO_SUCH_OBJECT, b"")
        else:
            found = mib.next(oid)
            missing = tlv(END_OF_MIB_VIEW, b"")
        if found is not None:
            binds.append(found)
        elif request.version == V1:
            nulls = [(name, tlv(NULL, b"")) for name in request.oids]
            return encode_response(request, nulls, NO_SUCH_NAME, position)
        else:
            binds.append((oid, missing))
    return encode_response(request, binds, 0, 0)


async def start_snmp(
    sock: socket.socket,
    communities: frozenset[str],
    sys_descr: str,
    *,
    sys_name: str = "",
    sys_object_id: str = NET_SNMP_LINUX,
) -> Service:
    """Answer SNMP v1/v2c system-group gets on the bound UDP socket ``sock``."""
    started = time.monotonic()

    def uptime() -> bytes:
        return encode_unsigned(int((time.monotonic() - started) * 100) & 0xFFFFFFFF, TIMETICKS)

    mib = SystemGroup(
        {
            SYS_DESCR: lambda: tlv(OCTET_STRING, sys_descr.encode("utf-8")),
            SYS_OBJECT_ID: lambda: encode_oid(parse_oid(sys_object_id)),
            SYS_UPTIME: uptime,
            SYS_NAME: lambda: tlv(OCTET_STRING, sys_name.encode("utf-8")),
        }
    )
    return await UdpService.start(sock, lambda data, _: answer(mib, communities, data))
