"""Pure parts of the probes: golden bytes, and garbage that must become BadResponse."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.probes import banners, snmp, ssdp, wsdiscovery
from agent.probes._xml import parse
from agent.probes.rtsp import parse_challenges
from agent.vendors.base import BadResponse
from agent.vendors.hikvision.parsers import parse_xml as hikvision_xml

# GetRequest v2c, community "public", request-id 1, sysDescr.0 (as Net-SNMP's snmpget sends it)
GET_PUBLIC = bytes.fromhex(
    "302602010104067075626c6963a019020101020100020100300e300c06082b060102010101000500"
)
RESPONSE = bytes.fromhex(
    "303002010104067075626c6963a2230201010201000201003018301606082b06010201010100"
    "040a48696b2063616d657261"
)


def test_snmp_request_golden_bytes() -> None:
    assert snmp.encode_get("v2c", "public", 1) == GET_PUBLIC


def test_snmp_response_round_trip_and_garbage() -> None:
    reply = RESPONSE
    assert snmp.decode_response(reply, 1) == (1, "public", "Hik camera")
    with pytest.raises(BadResponse, match="another request"):
        snmp.decode_response(reply, 2)
    for garbage in (b"", b"\x30\x84\xff\xff\xff\xff", reply[:20], b"\x02\x01\x01"):
        with pytest.raises(BadResponse):
            snmp.decode_response(garbage, 1)


def test_www_authenticate_challenges() -> None:
    [basic, digest] = parse_challenges(
        ['Basic realm="cam", Digest realm="cam", nonce="a,b", algorithm=SHA-256, qop="auth"']
    )
    assert basic.scheme == "basic"
    assert (digest.scheme, digest.params["nonce"], digest.params["algorithm"]) == (
        "digest",
        "a,b",
        "SHA-256",
    )
    assert parse_challenges(["", "Negotiate"]) == parse_challenges(["Negotiate"])


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"SSH-2.0-dropbear_2019.78\r\n", "ssh"),
        (b"220 (vsFTPd 3.0.3)\r\n", "ftp"),
        (b"\xff\xfd\x01\xff\xfb\x03\r\nIPC login: ", "telnet"),
        (b"(none) login:", "telnet"),
        (b"\x00\x01binary", "unknown"),
        (b"", "silent"),
    ],
)
def test_banner_classification(data: bytes, kind: str) -> None:
    banner = banners.classify(data)
    assert banner.kind == kind
    assert banner.text.isprintable()


def test_ssdp_reply_blocks() -> None:
    datagram = (
        b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:1::upnp:rootdevice\r\n"
        b"LOCATION: http://10.0.0.5/d.xml\r\n\r\nHTTP/1.1 200 OK\r\nST: uuid:1\r\nUSN: uuid:1\r\n"
        b"\r\nNOTIFY * HTTP/1.1\r\n\r\n\xff\xfe"
    )
    replies = ssdp.parse_replies("10.0.0.5", datagram)
    assert [r.st for r in replies] == ["upnp:rootdevice", "uuid:1"]


def test_xml_guards() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
    with pytest.raises(BadResponse, match="DTD"):
        parse(bomb)
    with pytest.raises(BadResponse, match="malformed"):
        parse(b"<a><b></a>")
    with pytest.raises(BadResponse, match="exceeds"):
        parse(b"<a/>" * 100, max_bytes=10)


BOMB = '<?xml version="1.0" encoding="{}"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'


@pytest.mark.parametrize(
    ("codec", "declared"),
    [
        ("utf-16", "UTF-16"),  # byte-order mark: no "<!DOCTYPE" among the bytes
        ("utf-16-le", "UTF-16"),  # no mark: expat tells it from the first bytes
        ("utf-16-be", "UTF-16"),
        ("cp1252", "windows-1252"),
        ("utf-8-sig", "UTF-8"),
    ],
)
@pytest.mark.parametrize(
    "parser", [parse, lambda body: hikvision_xml(body, "a")], ids=["probes", "isapi"]
)
def test_a_dtd_is_refused_in_any_encoding(
    codec: str, declared: str, parser: Callable[[bytes], object]
) -> None:
    with pytest.raises((BadResponse, ValueError), match="DTD"):  # ISAPI parsers: ValueError
        parser(BOMB.format(declared).encode(codec))


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-le", "utf-32-be"])
def test_an_encoding_the_check_cannot_read_is_refused(codec: str) -> None:
    with pytest.raises(BadResponse):
        parse('<?xml version="1.0" encoding="UTF-32"?><a/>'.encode(codec))


def test_an_unknown_declared_encoding_is_a_bad_answer() -> None:
    with pytest.raises(BadResponse, match="cannot be checked"):
        parse(b'<?xml version="1.0" encoding="UT8"?><a/>')  # expat: LookupError, found by fuzzing


def test_an_entity_declared_outside_a_doctype_is_refused_and_utf16_still_parses() -> None:
    assert parse('<?xml version="1.0" encoding="UTF-16"?><a>x</a>'.encode("utf-16")).text == "x"
    with pytest.raises(BadResponse):
        parse(b"<!ENTITY x 'y'><a/>")


def test_ws_discovery_ignores_foreign_replies() -> None:
    message = wsdiscovery.probe_message("urn:uuid:1")
    assert b"NetworkVideoTransmitter" in message
    assert wsdiscovery.parse_matches("10.0.0.5", message, "urn:uuid:1") == []
    with pytest.raises(BadResponse):
        wsdiscovery.parse_matches("10.0.0.5", b"garbage", "urn:uuid:1")
