"""Fuzz targets over everything that parses bytes from a camera, an agent or the network.

Each ``Target`` names the code under test (``run``: bytes in), the hypothesis strategy of its
hostile inputs (realistic seeds, mostly answers rendered by the camera lab's personas and the
golden envelopes, mutated byte-wise and with a dictionary of troublesome fragments, plus raw
bytes), and the contract: ``run`` returns, or raises an exception ``allowed`` accepts (the
typed errors of that side: ``ProtocolError`` on the wire, whatever ``agent.vendors.base.
translate`` turns into a ``CameraError`` in the agent). Anything else is a finding.

The CI module (``test_fuzz.py``) runs every target for a bounded number of examples; the long
run is ``bench/fuzz.py``. Both use this table.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from agent.probes import _xml, banners, igd, rtsp, snmp, ssdp, tls, wsdiscovery
from agent.vendors.axis import parsers as axis
from agent.vendors.base import CameraError, translate
from agent.vendors.dahua import parsers as dahua
from agent.vendors.hikvision import parsers as hikvision
from agent.vendors.models import Credential
from lab.camera import Camera
from lab.config import load_config
from lab.render import render
from lab.services import igd as lab_igd
from lab.services import snmp as lab_snmp
from lab.services import ssdp as lab_ssdp
from lab.services._http import HttpRequest
from lab.services.wsdiscovery import Responder
from protocol.envelope import verify
from protocol.errors import ProtocolError, UnknownKey
from protocol.messages import decode_agent_message, decode_collector_message

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "envelopes.json"
LAB = ROOT / "configs" / "lab" / "demo.toml"
MESSAGE_ID = "urn:uuid:7b0b6f5e-4c43-4c1f-9b36-2f0c6a1d1e01"
MAX_INPUT = 8 * 1024

# fragments that broke or nearly broke parsers elsewhere: markup that changes the parser's
# mode, encodings, control and non-ASCII digits, separators of the text formats, huge numbers
FRAGMENTS: tuple[bytes, ...] = (
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"<!ENTITY",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version='1.0' encoding='UTF-16'?>",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x1b[2J",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    "²".encode(),
    "١٢".encode(),
    "Ⅻ".encode(),
    b"-1",
    b"99999999999999999999999999",
    b"1e999",
    b"NaN",
    b"=",
    b"==",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b":",
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"true",
    b"</",
    b"/>",
    b"xmlns:a='urn:x'",
    b"Content-Length: ",
    b"WWW-Authenticate: Digest ",
    b'realm="',
    b"nonce=",
    b"%s%n",
    b"\xd8\x00",
    b"A" * 300,
)


@st.composite
def _mutant(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 5))
        at = draw(st.integers(0, len(data)))
        if op == 0 and data:  # flip one byte
            at = min(at, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif op == 1:  # insert a troublesome fragment
            data[at:at] = draw(st.sampled_from(FRAGMENTS))
        elif op == 2:  # cut a range
            data[at : at + draw(st.integers(1, 64))] = b""
        elif op == 3:  # repeat a range
            chunk = data[at : at + draw(st.integers(1, 32))]
            data[at:at] = bytes(chunk) * draw(st.integers(1, 8))
        elif op == 4:  # splice the head of another seed
            other = draw(st.sampled_from(seeds))
            data = data[:at] + other[draw(st.integers(0, len(other))) :]
        else:  # random bytes
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data[:MAX_INPUT])


def hostile(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Mutated seeds, mostly; sometimes a seed as is, sometimes raw bytes."""
    return st.one_of(
        _mutant(seeds),
        _mutant(seeds),
        _mutant(seeds),
        st.sampled_from(seeds),
        st.binary(max_size=256),
    )


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    seeds: tuple[bytes, ...]
    run: Callable[[bytes], object]
    allowed: Callable[[BaseException], bool]

    def inputs(self) -> st.SearchStrategy[bytes]:
        return hostile(self.seeds)

    def check(self, data: bytes) -> None:
        """Run the target on ``data``; re-raises whatever the contract does not allow."""
        try:
            self.run(data)
        except Exception as exc:
            if not self.allowed(exc):
                raise


def protocol_error(exc: BaseException) -> bool:
    return isinstance(exc, ProtocolError)


def translated(exc: BaseException) -> bool:
    """Vendor parsers: what the adapter edge (``agent.vendors.base``) turns into a typed camera
    error (their ``ValueError`` and ``LookupError`` included)."""
    return translate(exc) is not None


def camera_error(exc: BaseException) -> bool:
    """Probes: called without that edge, they raise ``CameraError`` themselves."""
    return isinstance(exc, CameraError)


# -- seeds ------------------------------------------------------------------------------------


@cache
def _vectors() -> dict[str, object]:
    return dict(json.loads(VECTORS.read_text()))


def envelopes() -> tuple[bytes, ...]:
    cases = _vectors()["cases"]
    assert isinstance(cases, list)
    return tuple(str(case["jws"]).encode() for case in cases)


def payloads() -> tuple[bytes, ...]:
    out = []
    for jws in envelopes():
        parts = jws.split(b".")
        if len(parts) == 3:
            try:
                out.append(base64.urlsafe_b64decode(parts[1] + b"=" * (-len(parts[1]) % 4)))
            except ValueError:
                continue
    return tuple(out)


@cache
def lab_bodies() -> dict[str, tuple[bytes, ...]]:
    """Every templated answer of the demo lab's cameras, by vendor, as the lab serves them."""
    out: dict[str, list[bytes]] = {}
    for spec in load_config(LAB).cameras:
        camera = Camera(spec, "127.0.0.1", {})
        for route in camera.persona.api:
            if route.kind != "template":
                continue
            context = camera.context()
            if route.rows:
                context["rows"] = camera.rows(route.rows, route.row)
            body = render(route.body, context).encode()
            if body not in out.setdefault(camera.persona.vendor, []):
                out[camera.persona.vendor].append(body)
    return {vendor: tuple(bodies) for vendor, bodies in out.items()}


def _all_bodies() -> tuple[bytes, ...]:
    return tuple(b for bodies in lab_bodies().values() for b in bodies)


def _wsd_replies() -> tuple[bytes, ...]:
    responder = Responder(
        "2f9c2a5e-1b1d-4f1e-9d6a-0c5c1e0f7a11",
        ["http://127.0.0.1:10080/onvif/device_service"],
        ["onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/name/Lab"],
    )
    reply = responder.respond(wsdiscovery.probe_message(MESSAGE_ID), ("127.0.0.1", 3702))
    assert reply is not None
    return (reply, responder.hello(), responder.bye())


def _ssdp_replies() -> tuple[bytes, ...]:
    one = lab_ssdp.search_reply(
        "upnp:rootdevice",
        "uuid:2f9c2a5e-1b1d-4f1e-9d6a-0c5c1e0f7a11::upnp:rootdevice",
        "http://127.0.0.1:49152/description.xml",
        "Linux/3.10 UPnP/1.0 IpCam/1.0",
    )
    return (one, one + one)


SNMP_REQUEST_ID = 4242


def _snmp_replies() -> tuple[bytes, ...]:
    mib = lab_snmp.SystemGroup(
        {snmp.SYS_DESCR: lambda: lab_snmp.string_value("Hikvision IP Camera DS-2CD2143G2-I")}
    )
    out = []
    for version in ("v1", "v2c"):
        request = snmp.encode_get(version, "public", SNMP_REQUEST_ID)
        reply = lab_snmp.answer(mib, frozenset({"public"}), request)
        assert reply is not None
        out.append(reply)
    return tuple(out)


def _igd_replies() -> tuple[bytes, ...]:
    gateway = lab_igd.Gateway([(8080, "192.168.1.10", 80), (554, "192.168.1.11", 554)], "")
    out = []
    for index in (0, 1, 2):  # two entries, then the end-of-table fault
        request = HttpRequest("POST", "/ctl", {}, igd._envelope(igd.WAN_SERVICES[0], index))
        out.append(gateway.control(request).body)
    return tuple(out)


@cache
def certificates() -> tuple[bytes, ...]:
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    from server.pki import CertificateAuthority  # noqa: PLC0415

    ca = CertificateAuthority.create()
    return (
        ca.certificate.public_bytes(Encoding.DER),
        ca.issue_agent_certificate("agent-a").certificate.public_bytes(Encoding.DER),
    )


RTSP_REPLIES: tuple[bytes, ...] = (
    b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n",
    b'RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm="IP Camera(12345)'
    b'", nonce="9d6a0c5c1e0f7a11", stale="FALSE"\r\nWWW-Authenticate: Basic realm="IP Camera'
    b'(12345)"\r\n\r\n',
    b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: 54\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nm=video 0 RTP/AVP 96\r\n",
)
CHALLENGES: tuple[bytes, ...] = (
    b'Digest realm="IP Camera(12345)", nonce="9d6a0c5c1e0f7a11", stale="FALSE"',
    b'Basic realm="IP Camera(12345)"',
    b'Digest realm="a", nonce="b", algorithm=MD5, qop="auth", Basic realm="a"',
)
BANNERS: tuple[bytes, ...] = (
    b"SSH-2.0-dropbear_2014.63\r\n",
    b"220 DVR FTP server ready.\r\n",
    b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27\r\nHikvision login: ",
    b"\r\n(none) login: ",
)


# -- targets that need a peer ----------------------------------------------------------------


ANSWERS = b"\x00\x00\x00"  # separates the answers to OPTIONS, DESCRIBE, DESCRIBE


class RtspPeer:
    """A loopback RTSP server: answer n of the input (split at ``ANSWERS``, the last repeated)
    to request n; it hangs up when the client asks nothing more within ``PATIENCE_S`` (after an
    incomplete answer the client waits for the rest, and gets the end of the stream)."""

    PATIENCE_S = 0.05

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fuzz-rtsp", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    for n in range(3):  # OPTIONS, DESCRIBE, the authenticated DESCRIBE
                        if not conn.recv(4096):
                            break
                        conn.sendall(self.answers[min(n, len(self.answers) - 1)])
                        conn.settimeout(self.PATIENCE_S)
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def describe(self, data: bytes) -> object:
        self.answers = data.split(ANSWERS)[:3]
        return asyncio.run(
            rtsp.describe(
                "127.0.0.1",
                self.port,
                "/Streaming/Channels/101",
                timeout_s=5,
                max_bytes=4096,
                credential=Credential("admin", "12345"),
                basic=True,
            )
        )


@dataclass(frozen=True, slots=True)
class Registry:
    targets: tuple[Target, ...]

    def __iter__(self) -> Iterator[Target]:
        return iter(self.targets)

    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def get(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)


def _resolver() -> Callable[[str], OKPKey]:
    jwk = _vectors()["agent_public_jwk"]
    assert isinstance(jwk, dict)
    key = OKPKey.import_key(jwk)

    def resolve(kid: str) -> OKPKey:
        if kid != jwk["kid"]:
            raise UnknownKey(f"no key {kid[:64]!r}")
        return key

    return resolve


def _vendor(vendor: str, parsers: dict[str, Callable[[bytes], object]]) -> list[Target]:
    own = lab_bodies()[vendor]
    seeds = own + tuple(b for b in _all_bodies() if b not in own)
    return [
        Target(f"{vendor.lower()}.{name}", seeds, parse, translated)
        for name, parse in parsers.items()
    ]


def _both(parse: Callable[[bytes, bytes | None], object]) -> Callable[[bytes], object]:
    """A two-body parser (time and NTP answers) fed one input split in two."""

    def run(data: bytes) -> object:
        first, _, second = data.partition(b"\x00\x00")
        return parse(first, second or None)

    return run


def targets(rtsp_peer: RtspPeer | None = None) -> Registry:
    resolve = _resolver()
    xml_seeds = tuple(b for b in _all_bodies() if b.lstrip().startswith(b"<")) + _wsd_replies()
    found: list[Target] = [
        Target("envelope.verify", envelopes(), lambda d: verify(d, resolve), protocol_error),
        Target("messages.decode_agent", payloads(), decode_agent_message, protocol_error),
        Target("messages.decode_collector", payloads(), decode_collector_message, protocol_error),
        *_vendor(
            "Hikvision",
            {
                "parse_device_info": hikvision.parse_device_info,
                "parse_users": hikvision.parse_users,
                "user_id": lambda d: hikvision.user_id(d, "admin"),
                "status_ok": hikvision.status_ok,
                "parse_activated": hikvision.parse_activated,
                "parse_enabled": lambda d: hikvision.parse_enabled(d, "Telnetd"),
                "parse_lockout": hikvision.parse_lockout,
                "parse_time": _both(hikvision.parse_time),
                "lock_signal": hikvision.lock_signal,
            },
        ),
        *_vendor(
            "Dahua",
            {
                "parse_kv": dahua.parse_kv,
                "parse_software_version": dahua.parse_software_version,
                "parse_identity": lambda d: dahua.parse_identity(*(d.split(b"\x00\x00") * 4)[:4]),
                "parse_users": dahua.parse_users,
                "parse_time": _both(dahua.parse_time),
            },
        ),
        *_vendor(
            "Axis",
            {
                "parse_basic_device_info": lambda d: axis.parse_basic_device_info(
                    d, "getAllProperties"
                ),
                "parse_params": lambda d: axis.parse_params(d, "Network"),
                "parse_pwdgrp": axis.parse_pwdgrp,
                "parse_time": axis.parse_time,
            },
        ),
        Target("probes.xml", xml_seeds, _xml.parse, camera_error),
        Target(
            "probes.wsdiscovery",
            _wsd_replies(),
            lambda d: wsdiscovery.parse_matches("127.0.0.1", d, MESSAGE_ID),
            camera_error,
        ),
        Target(
            "probes.ssdp",
            _ssdp_replies(),
            lambda d: ssdp.parse_replies("127.0.0.1", d),
            camera_error,
        ),
        Target(
            "probes.snmp",
            _snmp_replies(),
            lambda d: snmp.decode_response(d, SNMP_REQUEST_ID),
            camera_error,
        ),
        Target("probes.banners", BANNERS, banners.classify, camera_error),
        Target("probes.igd_mapping", _igd_replies(), igd.parse_mapping, camera_error),
        Target(
            "probes.rtsp_challenges",
            CHALLENGES,
            lambda d: rtsp.parse_challenges(d.decode("utf-8", "replace").split("\n")),
            camera_error,
        ),
        Target("probes.tls_certificate", certificates(), tls.parse_certificate, camera_error),
    ]
    if rtsp_peer is not None:
        seeds = (ANSWERS.join(RTSP_REPLIES), ANSWERS.join(RTSP_REPLIES[::2]), RTSP_REPLIES[0])
        found.append(Target("probes.rtsp", seeds, rtsp_peer.describe, camera_error))
    return Registry(tuple(found))
