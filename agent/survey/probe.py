"""What one address shows to anyone: open ports, identity and exposures, no credential sent.

Order for one host, every step paced by ``agent.survey.rate`` and bounded by the host deadline
(the caller's) and ``Plan.max_bytes`` per answer::

    connect scan of the TCP ports; one unicast SSDP M-SEARCH (UPnP answering from outside)
    web ports:   GET /  (Server header, <title>, WWW-Authenticate realm)
                 ONVIF GetDeviceInformation without WS-Security (answered: exposure, identity),
                 else the pre-auth GetSystemDateAndTime (ONVIF present)
                 TLS ports: the certificate's subject
                 a camera: the unauthenticated snapshot URLs of its vendor (JPEG bytes: exposure)
    RTSP:        OPTIONS + DESCRIBE without credentials (a media description: exposure)
    Telnet:      the banner, nothing sent (exposure)
    SDK 8000 when it is no web server, DVRIP 37777: the open port is the exposure
    identity:    firmware matched against the advisory feed's known-exploited entries

The probes used here send no credential: ``agent.probes.web.request`` without headers (no
``Authorization``), ``agent.probes.rtsp.describe`` without a credential, ``banners.grab``
(reads only), ``ssdp.msearch`` (a fixed search), and the two ONVIF bodies below, which have no
``Security`` header. ``tests/agent/survey`` checks this against the lab's request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Final

from agent.advisories.feed import AdvisoryFeed
from agent.probes import banners, rtsp, ssdp, web
from agent.probes._net import connected
from agent.probes._udp import exchange
from agent.probes._xml import parse as parse_xml
from agent.probes.tls import parse_certificate
from agent.survey.rate import Rate
from agent.vendors.base import CameraError
from agent.vendors.models import DeviceIdentity
from agent.vendors.onvif.parsers import parse_device_information
from agent.vendors.versions import canonical_vendor
from protocol.messages import EvidenceValue, Identity, SurveyExposure, SurveyHost
from protocol.survey import HOST_MAX_EXPOSURES
from protocol.text import clean_text

__all__ = [
    "ONVIF_DEVICE_INFORMATION",
    "ONVIF_SYSTEM_TIME",
    "Facts",
    "Plan",
    "judge_firmware",
    "probe_host",
]

WEB_PORTS: Final = (80, 8080, 8000, 443, 8443)
TLS_PORTS: Final = frozenset({443, 8443})
RTSP_PORT: Final = 554
TELNET_PORT: Final = 23
SDK_PORT: Final = 8000
DVRIP_PORT: Final = 37777
ONVIF_PATH: Final = "/onvif/device_service"
_SOAP: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    '<{op} xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)
# the two ONVIF requests of a survey: no Header, so no WS-Security UsernameToken
ONVIF_DEVICE_INFORMATION: Final = _SOAP.format(op="GetDeviceInformation").encode()
ONVIF_SYSTEM_TIME: Final = _SOAP.format(op="GetSystemDateAndTime").encode()
SNAPSHOT_PATHS: Final[Mapping[str | None, tuple[str, ...]]] = {
    "hikvision": ("/ISAPI/Streaming/channels/101/picture",),
    "dahua": ("/cgi-bin/snapshot.cgi",),
    "axis": ("/axis-cgi/jpg/image.cgi",),
    None: ("/snapshot.jpg", "/cgi-bin/snapshot.cgi"),
}
RTSP_TRIES: Final = 3  # DESCRIBE paths tried on a host whose vendor gives none
# words in a banner, title, realm or certificate subject that name a vendor
_VENDOR_WORDS: Final = (
    ("hikvision", "hikvision"), ("app-webs", "hikvision"), ("dnvrs-webs", "hikvision"),
    ("dahua", "dahua"), ("web service", "dahua"), ("uc-httpd", "xiongmai"), ("axis", "axis"),
    ("reolink", "reolink"), ("uniview", "uniview"),
)  # fmt: skip
_TITLE: Final = re.compile(rb"<title>([^<]{0,120})</title>", re.IGNORECASE)
_REALM: Final = re.compile(r'realm="([^"]{0,80})"', re.IGNORECASE)
_JPEG: Final = b"\xff\xd8\xff"


@dataclass(frozen=True, slots=True)
class Plan:
    """How to probe: the TCP and UDP ports (standard numbers), the port shift of a lab,
    the per-connection timeout, the answer size cap, the advisory feed (None: no firmware
    check, reported in the CLI), the UDP answer window."""

    ports: tuple[int, ...]
    udp_ports: tuple[int, ...] = ()
    offset: int = 0
    timeout_s: float = 2.0
    max_bytes: int = 64 * 1024
    feed: AdvisoryFeed | None = None
    udp_window_s: float = 1.0


@dataclass(slots=True)
class Facts:
    """What the probes of one host learnt so far (kept when the host deadline cuts them)."""

    address: str
    open: set[int] = field(default_factory=set)
    udp: set[int] = field(default_factory=set)
    web: dict[int, web.WebReply] = field(default_factory=dict)
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    sources: list[str] = field(default_factory=list)
    onvif: bool = False
    exposures: dict[tuple[str, int | None], dict[str, EvidenceValue]] = field(default_factory=dict)

    def expose(self, code: str, port: int | None, /, **evidence: EvidenceValue) -> None:
        self.exposures.setdefault((code, port), {}).update(evidence)

    def learn(self, source: str, vendor: str | None = None, **more: str | None) -> None:
        if vendor and not self.vendor:
            self.vendor = vendor
        for name, value in more.items():
            if value and not getattr(self, name):
                setattr(self, name, value)
        if source not in self.sources:
            self.sources.append(source)

    def host(self, *, complete: bool) -> SurveyHost:
        def text(value: str | None) -> str | None:
            return clean_text(value, 120) if value else None

        exposures = [
            SurveyExposure(
                code=code,
                port=port,
                evidence={
                    k: clean_text(v, 200) if isinstance(v, str) else v for k, v in ev.items()
                },
            )
            for (code, port), ev in sorted(
                self.exposures.items(), key=lambda x: (x[0][0], x[0][1] or 0)
            )
        ][:HOST_MAX_EXPOSURES]
        return SurveyHost(
            address=self.address,
            ports=sorted(self.open),
            udp_ports=sorted(self.udp),
            identity=Identity(
                vendor=text(self.vendor),
                model=text(self.model),
                firmware=text(self.firmware),
                serial=text(self.serial),
                source=text(", ".join(self.sources)) if self.sources else None,
            ),
            exposures=exposures,
            complete=complete,
        )


def _vendor_in(text: str) -> str | None:
    lowered = text.lower()
    return next((vendor for word, vendor in _VENDOR_WORDS if word in lowered), None)


async def _quiet(call: Awaitable[object]) -> object | None:
    """The answer of ``call``, or None when the device does not give one (its failure is a
    fact about the device, not about the survey)."""
    try:
        return await call
    except (CameraError, OSError, TimeoutError):
        return None


async def _connect_scan(facts: Facts, plan: Plan, rate: Rate) -> None:
    async def one(port: int) -> None:
        await rate.connect()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(plan.timeout_s):
                _, writer = await asyncio.open_connection(facts.address, port + plan.offset)
            facts.open.add(port)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    await asyncio.gather(*(one(p) for p in plan.ports))


async def _upnp(facts: Facts, plan: Plan, rate: Rate) -> None:
    if ssdp.PORT not in plan.udp_ports:
        return
    await rate.datagram()
    port = ssdp.PORT + plan.offset
    search = ssdp.msearch("ssdp:all", facts.address, port)
    answers = await _quiet(exchange(facts.address, port, search, window_s=plan.udp_window_s))
    for sender, datagram in answers if isinstance(answers, list) else ():
        replies = ssdp.parse_replies(sender, datagram) if sender == facts.address else []
        if replies:
            facts.udp.add(ssdp.PORT)
            reply = replies[0]
            facts.expose(
                "survey.upnp_exposed", ssdp.PORT, server=reply.server, location=reply.location
            )
            if vendor := _vendor_in(reply.server):
                facts.learn("upnp", vendor)
            return


def _url(facts: Facts, plan: Plan, port: int, path: str) -> str:
    scheme = "https" if port in TLS_PORTS else "http"
    return f"{scheme}://{facts.address}:{port + plan.offset}{path}"


async def _get(facts: Facts, plan: Plan, rate: Rate, port: int, path: str) -> web.WebReply | None:
    await rate.connect(requests=1)
    reply = await _quiet(
        web.request(
            _url(facts, plan, port, path), timeout_s=plan.timeout_s, max_bytes=plan.max_bytes
        )
    )
    return reply if isinstance(reply, web.WebReply) else None


async def _landing(facts: Facts, plan: Plan, rate: Rate, port: int) -> None:
    reply = await _get(facts, plan, rate, port, "/")
    if reply is None:
        return
    facts.web[port] = reply
    title = _TITLE.search(reply.body)
    words = [reply.server, title.group(1).decode("latin-1") if title else ""]
    words += [m.group(1) for value in reply.authenticate for m in [_REALM.search(value)] if m]
    vendor = next((v for v in map(_vendor_in, words) if v), None)
    facts.learn(f"http:{port}", vendor)


async def _onvif(facts: Facts, plan: Plan, rate: Rate, port: int) -> None:
    url = _url(facts, plan, port, ONVIF_PATH)
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    for body in (ONVIF_DEVICE_INFORMATION, ONVIF_SYSTEM_TIME):
        await rate.connect(requests=1)
        reply = await _quiet(
            web.request(
                url, method="POST", body=body, headers=headers,
                timeout_s=plan.timeout_s, max_bytes=plan.max_bytes,
            )
        )  # fmt: skip
        if not isinstance(reply, web.WebReply) or reply.status != 200:
            continue
        facts.onvif = True
        if body is ONVIF_SYSTEM_TIME:
            facts.learn("onvif pre-auth time")
            return
        info = _device_information(reply.body)
        if info is not None:
            facts.expose("survey.onvif_no_auth", port, url=url, operation="GetDeviceInformation")
            facts.learn(
                "onvif without credentials", info.vendor,
                model=info.model, firmware=info.firmware, serial=info.serial,
            )  # fmt: skip
            return


def _device_information(body: bytes) -> DeviceIdentity | None:
    """The identity in a GetDeviceInformation answer (``parse_device_information``, as the
    ONVIF adapter reads it), None for a SOAP fault or an answer without one."""
    try:
        root = parse_xml(body)
    except CameraError:
        return None
    fields = {
        element.tag.rsplit("}", 1)[-1]: (element.text or "").strip()
        for element in root.iter()
        if isinstance(element.tag, str)
    }
    try:
        return parse_device_information(SimpleNamespace(**fields))
    except ValueError:
        return None


async def _certificate(facts: Facts, plan: Plan, rate: Rate, port: int) -> None:
    await rate.connect()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a fact to read, not a peer to trust
    try:
        async with connected(facts.address, port + plan.offset, plan.timeout_s, tls=context) as (
            _,
            writer,
        ):
            tls = writer.get_extra_info("ssl_object")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
        subject = parse_certificate(der).subject if der else None
    except (CameraError, OSError, TimeoutError):
        return
    if subject:
        facts.learn(f"tls certificate:{port}", _vendor_in(subject))


async def _snapshot(facts: Facts, plan: Plan, rate: Rate, port: int) -> None:
    for path in SNAPSHOT_PATHS.get(facts.vendor, SNAPSHOT_PATHS[None]):
        reply = await _get(facts, plan, rate, port, path)
        if reply is not None and reply.status == 200 and reply.body.startswith(_JPEG):
            facts.expose(
                "survey.snapshot_no_auth", port,
                url=_url(facts, plan, port, path), content_type=reply.content_type,
                bytes=len(reply.body),
            )  # fmt: skip
            return


async def _stream(facts: Facts, plan: Plan, rate: Rate) -> None:
    paths = rtsp.DEFAULT_PATHS.get(facts.vendor or "", rtsp.GENERIC_PATHS[:RTSP_TRIES])
    for path in paths:
        await rate.connect(requests=2)
        reply = await _quiet(
            rtsp.describe(
                facts.address, RTSP_PORT + plan.offset, path,
                timeout_s=plan.timeout_s, max_bytes=plan.max_bytes,
            )
        )  # fmt: skip
        if not isinstance(reply, rtsp.RtspReply):
            return  # the port does not speak RTSP to us: no other path will
        if reply.describes_media:
            media = next(line for line in reply.sdp.splitlines() if line.startswith(b"m="))
            facts.expose(
                "survey.stream_no_auth", RTSP_PORT,
                url=f"rtsp://{facts.address}:{RTSP_PORT}{path}", media=media.decode("latin-1"),
            )  # fmt: skip
            facts.learn("rtsp")
            return
        if reply.status != 404:
            facts.learn("rtsp")
            return  # asks for credentials (or refuses): the stream is not open to anyone


async def _telnet(facts: Facts, plan: Plan, rate: Rate) -> None:
    await rate.connect()
    banner = await _quiet(
        banners.grab(
            facts.address, TELNET_PORT + plan.offset, timeout_s=plan.timeout_s, max_bytes=1024
        )
    )
    if isinstance(banner, banners.Banner):
        facts.expose("survey.telnet_open", TELNET_PORT, banner=banner.text)


def judge_firmware(facts: Facts, feed: AdvisoryFeed | None) -> None:
    """Add the known-exploited advisories the identified firmware matches (the feed's KEV
    entries; an identity without vendor or firmware matches nothing)."""
    if feed is None or not facts.vendor or not facts.firmware:
        return
    identity = DeviceIdentity(
        vendor=canonical_vendor(facts.vendor), model=facts.model, firmware=facts.firmware
    )
    for match in feed.match(identity).matches:
        advisory = match.advisory
        if advisory.kev is not None:
            facts.expose(
                "survey.kev_firmware", None,
                advisory=advisory.id, cve=advisory.cve, confidence=match.confidence,
                kev=advisory.kev.date_added.isoformat(),
            )  # fmt: skip


async def _web(facts: Facts, plan: Plan, rate: Rate) -> None:
    web_ports = [p for p in WEB_PORTS if p in facts.open]
    await asyncio.gather(*(_landing(facts, plan, rate, port) for port in web_ports))
    if SDK_PORT in facts.open and SDK_PORT not in facts.web:  # open, and no web server
        facts.expose("survey.sdk_port_open", SDK_PORT, port=SDK_PORT)
    answering = [p for p in web_ports if p in facts.web]
    if not answering:
        return
    await _onvif(facts, plan, rate, answering[0])
    for port in (p for p in answering if p in TLS_PORTS):
        await _certificate(facts, plan, rate, port)
    if facts.vendor or facts.onvif or RTSP_PORT in facts.open:
        await _snapshot(facts, plan, rate, answering[0])


async def probe_host(address: str, plan: Plan, rate: Rate, facts: Facts | None = None) -> Facts:
    """Probe ``address``; fills and returns ``facts`` (give one to keep what was learnt when the
    caller's deadline cancels the probes)."""
    facts = facts or Facts(address)
    await asyncio.gather(_connect_scan(facts, plan, rate), _upnp(facts, plan, rate))
    # what the open ports alone show, before any slower probe
    if TELNET_PORT in facts.open:
        facts.expose("survey.telnet_open", TELNET_PORT, banner="")
    if DVRIP_PORT in facts.open:
        facts.expose("survey.dvrip_port_open", DVRIP_PORT, port=DVRIP_PORT)
    # three chains at once: one slow service (a silent SDK port asked for a web page, a
    # tarpit) does not hold up the others within the host's deadline
    steps = [_web(facts, plan, rate)]
    if RTSP_PORT in facts.open:
        steps.append(_stream(facts, plan, rate))
    if TELNET_PORT in facts.open:
        steps.append(_telnet(facts, plan, rate))
    await asyncio.gather(*steps)
    return facts
