"""SNMP v1/v2c ``GetRequest sysDescr.0`` with a community string (COM-05).

The BER encoding is pyasn1's, with the SNMP message and PDU types of pyasn1-modules (RFC 1901
message, RFC 1905 PDUs; an SNMPv1 GetRequest/GetResponse has the same shape). pyasn1 costs about
6 MB of RSS, so it is imported when a camera is probed, not with the checks. Every length is
bounded by the datagram; anything else is ``BadResponse``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from dataclasses import dataclass
from typing import Final, Literal

from agent import scope
from agent.probes._net import camera_error
from agent.vendors.base import BadResponse

__all__ = ["SnmpReply", "decode_response", "encode_get", "get_sys_descr", "probe"]

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


def encode_get(version: Version, community: str, request_id: int) -> bytes:
    from pyasn1.codec.ber import encoder  # noqa: PLC0415  # ~6 MB: only when probing
    from pyasn1_modules import rfc1901, rfc1905  # noqa: PLC0415

    pdu = rfc1905.GetRequestPDU()
    pdu["request-id"] = request_id
    pdu["error-status"] = 0
    pdu["error-index"] = 0
    bind = rfc1905.VarBind()
    bind["name"] = SYS_DESCR
    bind[""]["unSpecified"] = ""
    pdu["variable-bindings"].append(bind)
    pdus = rfc1905.PDUs()
    pdus["get-request"] = pdu
    message = rfc1901.Message()
    message["version"] = _VERSION_NUMBER[version]
    message["community"] = community.encode()
    message["data"] = encoder.encode(pdus)
    return bytes(encoder.encode(message))


def decode_response(data: bytes, request_id: int) -> tuple[int, str, str]:
    """(version number, community, sysDescr) of a GetResponse to ``request_id``."""
    from pyasn1.codec.ber import decoder  # noqa: PLC0415  # see encode_get
    from pyasn1.error import PyAsn1Error  # noqa: PLC0415
    from pyasn1_modules import rfc1901, rfc1905  # noqa: PLC0415

    try:
        message, rest = decoder.decode(data, asn1Spec=rfc1901.Message())
        pdus, _ = decoder.decode(message["data"].asOctets(), asn1Spec=rfc1905.PDUs())
        if rest or pdus.getName() != "response":
            raise BadResponse("not an SNMP GetResponse")
        pdu = pdus.getComponent()
        if int(pdu["request-id"]) != request_id:
            raise BadResponse("SNMP reply to another request")
        if int(pdu["error-status"]) != 0:
            raise BadResponse(f"SNMP error-status {int(pdu['error-status'])}")
        binds = pdu["variable-bindings"]
        if len(binds) != 1:
            raise BadResponse(f"SNMP reply with {len(binds)} variable bindings")
        value = binds[0][""]
        syntax = value.getComponent() if value.getName() == "value" else None
        if syntax is None or syntax.getComponent().getName() != "string-value":
            raise BadResponse(f"sysDescr.0 came back as {value.prettyPrint()[:60]!r}")
        text = bytes(syntax.getComponent().getComponent())
        return (
            int(message["version"]),
            bytes(message["community"]).decode("utf-8", "replace"),
            text.decode("utf-8", "replace"),
        )
    except PyAsn1Error as exc:
        raise BadResponse(f"SNMP reply does not decode: {exc}") from exc


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
    host = await scope.admit(host)  # OutOfScope: nothing sent
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
