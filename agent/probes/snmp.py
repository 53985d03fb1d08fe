"""SNMP v1/v2c ``GetRequest sysDescr.0`` with a community string (COM-05).

A minimal BER codec of our own (X.690 definite lengths; INTEGER, OCTET STRING, NULL, OID,
SEQUENCE and the GetResponse PDU), about 100 lines, instead of pysnmp: the check needs one
request and one reply, and pysnmp (with pyasn1) costs several MB of RSS and an import of tens
of modules on a 60 MB agent. Every length is bounded by the datagram; anything else is
``BadResponse``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from dataclasses import dataclass
from typing import Final, Literal

from agent.probes._net import camera_error
from agent.vendors.base import BadResponse

__all__ = ["SnmpReply", "decode_response", "encode_get", "get_sys_descr", "probe"]

INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OID: Final = 0x06
SEQUENCE: Final = 0x30
GET: Final = 0xA0
RESPONSE: Final = 0xA2
SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
MAX_DATAGRAM: Final = 4096
Version = Literal["v1", "v2c"]
_VERSION_NUMBER: Final = {"v1": 0, "v2c": 1}
_VERSIONS: Final[tuple[Version, ...]] = ("v2c", "v1")


@dataclass(frozen=True, slots=True)
class SnmpReply:
    version: Version
    community: str
    sys_descr: str


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _integer(value: int) -> bytes:
    return _tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def _oid(oid: tuple[int, ...]) -> bytes:
    body = bytearray([40 * oid[0] + oid[1]])
    for arc in oid[2:]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return _tlv(OID, bytes(body))


def encode_get(version: Version, community: str, request_id: int) -> bytes:
    varbind = _tlv(SEQUENCE, _oid(SYS_DESCR) + _tlv(NULL, b""))
    pdu = _tlv(GET, _integer(request_id) + _integer(0) + _integer(0) + _tlv(SEQUENCE, varbind))
    head = _integer(_VERSION_NUMBER[version]) + _tlv(OCTET_STRING, community.encode())
    return _tlv(SEQUENCE, head + pdu)


def _read(data: bytes, pos: int, tag: int | None = None) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise BadResponse("SNMP reply truncated")
    found, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise BadResponse("SNMP reply has a bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if pos + length > len(data):
        raise BadResponse("SNMP reply truncated")
    if tag is not None and found != tag:
        raise BadResponse(f"SNMP reply: tag 0x{found:02x} where 0x{tag:02x} was expected")
    return found, data[pos : pos + length], pos + length


def decode_response(data: bytes, request_id: int) -> tuple[int, str, str]:
    """(version number, community, sysDescr) of a GetResponse to ``request_id``."""
    _, message, _ = _read(data, 0, SEQUENCE)
    _, version, pos = _read(message, 0, INTEGER)
    _, community, pos = _read(message, pos, OCTET_STRING)
    _, pdu, _ = _read(message, pos, RESPONSE)
    _, rid, pos = _read(pdu, 0, INTEGER)
    if int.from_bytes(rid, "big", signed=True) != request_id:
        raise BadResponse("SNMP reply to another request")
    _, error, pos = _read(pdu, pos, INTEGER)
    _, _, pos = _read(pdu, pos, INTEGER)
    if int.from_bytes(error, "big") != 0:
        raise BadResponse(f"SNMP error-status {int.from_bytes(error, 'big')}")
    _, varbinds, _ = _read(pdu, pos, SEQUENCE)
    _, varbind, _ = _read(varbinds, 0, SEQUENCE)
    _, _, pos = _read(varbind, 0, OID)
    tag, value, _ = _read(varbind, pos)
    if tag != OCTET_STRING:
        raise BadResponse(f"sysDescr.0 came back as tag 0x{tag:02x}")
    return (
        int.from_bytes(version, "big"),
        community.decode("utf-8", "replace"),
        value.decode("utf-8", "replace"),
    )


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data[:MAX_DATAGRAM])


async def get_sys_descr(
    host: str, port: int, version: Version, community: str, *, timeout_s: float
) -> SnmpReply | None:
    """sysDescr.0 if the agent answers ``community`` within ``timeout_s``, else None."""
    request_id = secrets.randbelow(2**31 - 1) + 1
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _Client, remote_addr=(host, port), family=socket.AF_INET
    )
    try:
        transport.sendto(encode_get(version, community, request_id))
        try:
            async with asyncio.timeout(timeout_s):
                data = await client.replies.get()
        except TimeoutError:
            return None
    finally:
        transport.close()
    _, answered_community, descr = decode_response(data, request_id)
    return SnmpReply(version, answered_community, descr[:200])


async def probe(
    host: str, port: int, communities: tuple[str, ...], *, timeout_s: float
) -> list[SnmpReply]:
    """Every (version, community) the agent answers; all requests are sent at once."""
    results = await asyncio.gather(
        *(
            get_sys_descr(host, port, version, community, timeout_s=timeout_s)
            for community in communities
            for version in _VERSIONS
        ),
        return_exceptions=True,
    )
    replies = [r for r in results if isinstance(r, SnmpReply)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors and not replies:
        raise camera_error(errors[0])
    return replies
