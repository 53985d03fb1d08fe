"""A minimal SNMP v1/v2c agent: the system group, read-only, for the right community only.

Answers ``GetRequest`` and ``GetNextRequest`` for sysDescr.0, sysObjectID.0, sysUpTime.0 and
sysName.0. A request with a community outside ``communities``, an SNMPv3 message or anything
malformed gets no answer at all, exactly like a camera whose community string was guessed wrong.

BER comes from pyasn1 with the SNMP types of pyasn1-modules (RFC 1901 message, RFC 1902 values,
RFC 1905 PDUs and v2c exceptions), the same library the agent's probe uses.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc1901, rfc1902, rfc1905

from lab.services import Service
from lab.services._net import UdpService

GET: Final = "get-request"
GET_NEXT: Final = "get-next-request"
V1, V2C = 0, 1
NO_SUCH_NAME: Final = 2  # SNMPv1 error-status

SYS_DESCR: Final = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID: Final = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Final = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Final = (1, 3, 6, 1, 2, 1, 1, 5, 0)
NET_SNMP_LINUX: Final = "1.3.6.1.4.1.8072.3.2.10"

Oid = tuple[int, ...]
Value = tuple[str, str, object]  # (ObjectSyntax alternative, its alternative, value)
Missing = str  # a v2c exception of the binding: "noSuchObject", "endOfMibView", "unSpecified"


class BerError(ValueError):
    """The datagram is not an SNMP v1/v2c request we answer; the agent stays silent."""


def string_value(text: str) -> Value:
    return ("simple", "string-value", text.encode("utf-8"))


def oid_value(oid: Oid) -> Value:
    return ("simple", "objectID-value", oid)


def timeticks_value(ticks: int) -> Value:
    return ("application-wide", "timeticks-value", ticks & 0xFFFFFFFF)


def parse_oid(text: str) -> Oid:
    return tuple(int(arc) for arc in text.strip(".").split("."))


@dataclass(frozen=True, slots=True)
class Request:
    version: int
    community: str
    pdu: str  # GET or GET_NEXT
    request_id: int
    oids: tuple[Oid, ...]


def decode_request(datagram: bytes) -> Request:
    try:
        message, rest = decoder.decode(datagram, asn1Spec=rfc1901.Message())
        if rest:
            raise BerError("bytes after the message")
        version = int(message["version"])
        pdus, rest = decoder.decode(message["data"].asOctets(), asn1Spec=rfc1905.PDUs())
        kind = pdus.getName()
        if rest or version not in (V1, V2C) or kind not in (GET, GET_NEXT):
            raise BerError(f"unsupported version {version} or PDU {kind}")
        pdu = pdus.getComponent()
        oids = tuple(tuple(int(arc) for arc in bind["name"]) for bind in pdu["variable-bindings"])
        community = bytes(message["community"]).decode("utf-8", "replace")
        return Request(version, community, kind, int(pdu["request-id"]), oids)
    except PyAsn1Error as exc:
        raise BerError(str(exc)) from exc


def _bind(oid: Oid, value: Value | Missing) -> Any:
    bind = rfc1905.VarBind()
    bind["name"] = oid
    if isinstance(value, str):
        bind[""][value] = ""
    else:
        syntax = rfc1902.ObjectSyntax()
        group, alternative, raw = value
        syntax[group][alternative] = raw
        bind[""]["value"] = syntax
    return bind


def encode_response(
    request: Request, binds: list[tuple[Oid, Value | Missing]], error: int, index: int
) -> bytes:
    pdu = rfc1905.ResponsePDU()
    pdu["request-id"] = request.request_id
    pdu["error-status"] = error
    pdu["error-index"] = index
    for oid, value in binds:
        pdu["variable-bindings"].append(_bind(oid, value))
    pdus = rfc1905.PDUs()
    pdus["response"] = pdu
    message = rfc1901.Message()
    message["version"] = request.version
    message["community"] = request.community.encode("utf-8")
    message["data"] = encoder.encode(pdus)
    return bytes(encoder.encode(message))


class SystemGroup:
    """The read-only MIB this agent serves, ordered by OID for GetNext."""

    def __init__(self, values: dict[Oid, Callable[[], Value]]) -> None:
        self._values = dict(sorted(values.items()))

    def get(self, oid: Oid) -> Value | None:
        value = self._values.get(oid)
        return None if value is None else value()

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
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
    binds: list[tuple[Oid, Value | Missing]] = []
    for position, oid in enumerate(request.oids, start=1):
        if request.pdu == GET:
            value = mib.get(oid)
            found = None if value is None else (oid, value)
            missing = "noSuchObject"
        else:
            found = mib.next(oid)
            missing = "endOfMibView"
        if found is not None:
            binds.append(found)
        elif request.version == V1:
            nulls: list[tuple[Oid, Value | Missing]] = [
                (name, "unSpecified") for name in request.oids
            ]
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

    def uptime() -> Value:
        return timeticks_value(int((time.monotonic() - started) * 100))

    mib = SystemGroup(
        {
            SYS_DESCR: lambda: string_value(sys_descr),
            SYS_OBJECT_ID: lambda: oid_value(parse_oid(sys_object_id)),
            SYS_UPTIME: uptime,
            SYS_NAME: lambda: string_value(sys_name),
        }
    )
    return await UdpService.start(sock, lambda data, _: answer(mib, communities, data))
