"""A provider's range for the survey (issue 24): a few hundred subscriber hosts, most of them no
camera, some cameras with exposed weaknesses, hosts that drop or reset, in one asyncio process.

Every serving host gets its listening sockets on its own address: in loopback mode on a
127.x.y.0 block (ports shifted by ``shift``, as the camera lab does), in netns mode inside one
*range* namespace that holds the whole prefix as a local route (``ip route add local PREFIX dev
lo``) and is reached from an *agent* namespace over a veth pair, through which the agent's
every packet, in the range or not, has to pass::

    <id>-agent  eth0 10.76.0.2/30, default route via 10.76.0.1   (the survey, nmap run here)
    <id>-range  eth0 10.76.0.1/30, local PREFIX on lo, forwarding off, nftables counters

A packet the agent sends to an address outside the prefix reaches the range namespace and is
counted (and dropped) there by an nftables counter (``outside_packets``); a dropping host is an
nftables ``drop`` for its address (its SYNs vanish). In loopback mode a dropping host accepts
and never answers, and *sentinel* hosts serve just outside the prefix and on the excluded and
opted-out addresses: their log must stay empty.

The request log (JSON lines) names each connection, HTTP and RTSP request, datagram and byte
count a host received, and whether it carried a credential (an ``Authorization`` header, a
WS-Security token or a password field, any byte written to a login port: Telnet, SDK, DVRIP).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import re
import secrets
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from lab import netns
from lab.binder import Binder, LoopbackBinder
from lab.config import TlsSpec
from lab.services._net import Datagram, UdpService
from lab.services.ssdp import search_reply, search_target, usn_table
from lab.tls import TlsFactory

__all__ = ["KINDS", "SEEDED", "HostSpec", "SurveyLab", "layout", "read_events"]

log = logging.getLogger(__name__)

Kind = Literal[
    "router", "upnp_router", "pc", "hik_kev", "hik_safe", "dahua_open", "snapshot_cam",
    "telnet_dvr", "dropping", "resetting",
]  # fmt: skip
KINDS: Final[tuple[Kind, ...]] = (
    "router", "upnp_router", "pc", "hik_kev", "hik_safe", "dahua_open", "snapshot_cam",
    "telnet_dvr", "dropping", "resetting",
)  # fmt: skip
# per 256 addresses: how many hosts of each kind (the rest of the addresses are unused)
PER_256: Final[dict[Kind, int]] = {
    "router": 40, "upnp_router": 3, "pc": 12, "hik_kev": 2, "hik_safe": 2, "dahua_open": 1,
    "snapshot_cam": 1, "telnet_dvr": 1, "dropping": 4, "resetting": 4,
}  # fmt: skip
# (exposure code, port) a survey must find on each kind
SEEDED: Final[dict[Kind, frozenset[tuple[str, int | None]]]] = {
    "router": frozenset(),
    "upnp_router": frozenset({("survey.upnp_exposed", 1900)}),
    "pc": frozenset(),
    "hik_kev": frozenset(
        {
            ("survey.onvif_no_auth", 80),
            ("survey.kev_firmware", None),
            ("survey.sdk_port_open", 8000),
        }
    ),
    "hik_safe": frozenset({("survey.sdk_port_open", 8000)}),
    "dahua_open": frozenset({("survey.stream_no_auth", 554), ("survey.dvrip_port_open", 37777)}),
    "snapshot_cam": frozenset({("survey.snapshot_no_auth", 80)}),
    "telnet_dvr": frozenset({("survey.telnet_open", 23)}),
    "dropping": frozenset(),
    "resetting": frozenset(),
}
# TCP ports each kind serves (standard numbers)
SERVES: Final[dict[Kind, tuple[int, ...]]] = {
    "router": (80,), "upnp_router": (80,), "pc": (443,), "hik_kev": (80, 554, 8000),
    "hik_safe": (80, 554, 8000), "dahua_open": (80, 554, 37777), "snapshot_cam": (80, 554),
    "telnet_dvr": (23, 80), "dropping": (80, 554), "resetting": (80, 554),
}  # fmt: skip
LOGIN_PORTS: Final = frozenset({23, 8000, 37777})  # any byte sent there could be a login
HIK_FIRMWARE: Final = "V5.4.5 build 170123"  # built before June 2021: CVE-2021-36260 (KEV)
HIK_MODEL: Final = "DS-2CD2042WD-I"
SNAPSHOT: Final = (Path(__file__).with_name("snapshot.jpg")).read_bytes()
NFT_TABLE: Final = "survey_lab"
AGENT_LINK: Final = ("10.76.0.2", "10.76.0.1")  # netns mode: agent and range ends of the veth
MAX_REQUEST: Final = 64 * 1024
HOLD_S: Final = 30.0  # how long a silent or dropping service keeps a connection
_CREDENTIAL: Final = re.compile(rb"authorization:|usernametoken|password|passwd|pwd=", re.I)


@dataclass(frozen=True, slots=True)
class HostSpec:
    address: str
    kind: Kind


def layout(network: ipaddress.IPv4Network, seed: int = 24) -> list[HostSpec]:
    """The subscriber hosts of ``network``: ``PER_256`` of each kind per 256 addresses, at
    addresses chosen by ``seed`` (never the network's first or last address)."""
    blocks = max(1, network.num_addresses // 256)
    pool = [str(a) for a in network.hosts()]
    rng = random.Random(seed)  # noqa: S311  # a reproducible layout, not a secret
    chosen = rng.sample(pool, sum(PER_256.values()) * blocks)
    kinds = [kind for kind, n in PER_256.items() for _ in range(n * blocks)]
    return sorted(
        (HostSpec(a, k) for a, k in zip(chosen, kinds, strict=True)),
        key=lambda h: ipaddress.IPv4Address(h.address),
    )


def _credential(data: bytes) -> bool:
    return _CREDENTIAL.search(data) is not None


def _login(port: int, data: bytes) -> bool:
    """Whether bytes sent to a silent service may carry a credential: anything but a plain
    HTTP request on a login port (Telnet, SDK, DVRIP; 8000 is a web port on many devices)."""
    http = data.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"OPTIONS")
    return _credential(data) or (port in LOGIN_PORTS and not http)


@dataclass(slots=True)
class _Log:
    file: IO[str]
    events: int = 0

    def write(self, address: str, port: int, event: str, **fields: Any) -> None:
        line = {"at": round(time.time(), 4), "address": address, "port": port, "event": event}
        line.update(fields)
        self.file.write(json.dumps(line, sort_keys=True) + "\n")
        self.events += 1


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _http(status: int, body: bytes, *, server: str, headers: Sequence[str] = ()) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 400: "Bad Request"}[status]
    head = [f"HTTP/1.1 {status} {reason}", f"Server: {server}" if server else "", *headers]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(h for h in head if h) + "\r\n\r\n").encode() + body


def _soap(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><s:Envelope '
        'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>'
        f"{body}</s:Body></s:Envelope>"
    ).encode()


_TIME = _soap(
    "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType "
    'xmlns:tt="http://www.onvif.org/ver10/schema">NTP</tt:DateTimeType>'
    "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
)
_INFO = _soap(
    "<tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer>"
    f"<tds:Model>{HIK_MODEL}</tds:Model><tds:FirmwareVersion>{HIK_FIRMWARE}"
    "</tds:FirmwareVersion><tds:SerialNumber>DS-2CD2042WD-I20170301AAWR</tds:SerialNumber>"
    "<tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse>"
)
_FAULT = _soap(
    "<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code>"
    "<s:Reason><s:Text>Sender not Authorized</s:Text></s:Reason></s:Fault>"
)
_PAGES: Final[dict[Kind, tuple[str, bytes]]] = {
    "router": ("GoAhead-Webs", b"<html><head><title>Home Gateway</title></head></html>"),
    "upnp_router": ("miniupnpd/2.1", b"<html><head><title>Wireless Router</title></head></html>"),
    "hik_kev": ("App-webs/", b"<html><head><title></title></head></html>"),
    "hik_safe": ("DNVRS-Webs", b"<html><head><title></title></head></html>"),
    "dahua_open": ("", b"<html><head><title>WEB SERVICE</title></head></html>"),
    "snapshot_cam": ("thttpd/2.25b", b"<html><head><title>IP Camera</title></head></html>"),
    "telnet_dvr": ("uc-httpd 1.0.0", b"<html><head><title>NETSurveillance WEB</title></head>"),
    "pc": ("Microsoft-IIS/10.0", b"<html><head><title>IIS Windows</title></head></html>"),
}


def _http_answer(kind: Kind, method: str, path: str, body: bytes) -> bytes:  # noqa: PLR0911  # one answer per case
    server, page = _PAGES.get(kind, ("", b""))
    if path == "/onvif/device_service" and kind in (
        "hik_kev",
        "hik_safe",
        "snapshot_cam",
        "dahua_open",
    ):
        xml = ["Content-Type: application/soap+xml; charset=utf-8"]
        if b"GetSystemDateAndTime" in body:
            return _http(200, _TIME, server=server, headers=xml)
        if b"GetDeviceInformation" in body and kind == "hik_kev":
            return _http(200, _INFO, server=server, headers=xml)
        return _http(400, _FAULT, server=server, headers=xml)
    if kind == "snapshot_cam" and path == "/snapshot.jpg":
        return _http(200, SNAPSHOT, server=server, headers=["Content-Type: image/jpeg"])
    if path == "/" and method == "GET":
        headers = ["Content-Type: text/html"]
        if kind in ("router", "upnp_router"):
            return _http(
                401,
                page,
                server=server,
                headers=[*headers, 'WWW-Authenticate: Basic realm="Home Gateway"'],
            )
        return _http(200, page, server=server, headers=headers)
    return _http(404, b"", server=server)


@dataclass(slots=True)
class SurveyLab:
    """The running range. ``start`` binds every service; ``stop`` closes them and, in netns
    mode, removes the namespaces."""

    network: ipaddress.IPv4Network
    hosts: list[HostSpec]
    log_path: Path
    mode: Literal["loopback", "netns"] = "loopback"
    shift: int = 0
    sentinels: tuple[str, ...] = ()  # loopback: addresses that must never see a packet
    run_id: str = ""
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)
    _udp: list[UdpService] = field(default_factory=list)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _log: _Log | None = None
    _tls: TlsFactory | None = None
    _namespaces: list[str] = field(default_factory=list)

    @property
    def agent_namespace(self) -> str:
        return f"{self.run_id}-agent"

    @property
    def range_namespace(self) -> str:
        return f"{self.run_id}-range"

    def by_address(self) -> dict[str, HostSpec]:
        return {h.address: h for h in self.hosts}

    @classmethod
    async def start(
        cls,
        network: str,
        log_path: Path,
        *,
        mode: Literal["loopback", "netns"] = "loopback",
        shift: int = 0,
        seed: int = 24,
        sentinels: Sequence[str] = (),
        run_id: str | None = None,
    ) -> SurveyLab:
        net = ipaddress.IPv4Network(network)
        lab = cls(
            net, layout(net, seed), log_path, mode, shift, tuple(sentinels),
            run_id or f"cs{secrets.token_hex(3)}",
        )  # fmt: skip
        try:
            await lab._start()
        except BaseException:
            await lab.stop()
            raise
        return lab

    async def _start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = _Log(self.log_path.open("w", encoding="utf-8", buffering=1))
        self._tls = TlsFactory()
        if self.mode == "netns":
            await asyncio.to_thread(self._create_namespaces)
        binder = self._binder()
        serving = [*self.hosts, *(HostSpec(a, "hik_kev") for a in self.sentinels)]
        for host in serving:
            if host.kind == "dropping" and self.mode == "netns":
                continue  # a blackhole rule: nothing answers, nothing is bound
            for port in SERVES[host.kind]:
                sock = binder.tcp(host.address, port + self.shift)
                tls = self._context(host) if port == 443 else None
                server = await asyncio.start_server(
                    self._handler(host, port), sock=sock, ssl=tls, limit=MAX_REQUEST
                )
                self._servers.append(server)
            if host.kind == "upnp_router" or host.address in self.sentinels:
                sock = binder.udp(host.address, 1900 + self.shift)
                self._udp.append(await UdpService.start(sock, self._ssdp(host)))
        log.info("survey lab %s (%s): %d hosts", self.network, self.mode, len(self.hosts))

    def _binder(self) -> Binder:
        return LoopbackBinder() if self.mode == "loopback" else _RangeBinder(self.range_namespace)

    def _context(self, host: HostSpec) -> ssl.SSLContext:
        if self._tls is None:
            raise RuntimeError("the lab is not started")
        return self._tls.context(
            TlsSpec(shared_key_group="pcs"), host.address, f"desktop-{host.address}"
        )

    def _create_namespaces(self) -> None:
        agent_end, range_end = AGENT_LINK
        for name in (self.range_namespace, self.agent_namespace):
            netns._ip("netns", "add", name)  # the lab's own helper
            self._namespaces.append(name)
        batch = [
            "link set lo up",
            f"link add eth0 type veth peer name eth0 netns {self.agent_namespace}",
            f"addr add {range_end}/30 dev eth0",
            "link set eth0 up",
            f"route add local {self.network} dev lo",
        ]
        netns._ip("-n", self.range_namespace, batch=batch)
        done = subprocess.run(  # noqa: S603  # fixed program, rules built here
            netns.netns_argv(self.range_namespace, ["nft", "-f", "-"]),
            input=self._rules(), capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise netns.NetnsError(f"nft: {done.stderr.strip()}")
        netns._ip(
            "-n", self.agent_namespace,
            batch=[
                "link set lo up", f"addr add {agent_end}/30 dev eth0", "link set eth0 up",
                f"route add default via {range_end}",
            ],
        )  # fmt: skip

    def _rules(self) -> str:
        """The range's nftables: count (and drop) every packet for an address outside the
        prefix (multicast and broadcast aside: the agent's own kernel sends those), drop every
        packet for a dropping host."""
        drops = ", ".join(h.address for h in self.hosts if h.kind == "dropping")
        return "\n".join(
            [
                f"table inet {NFT_TABLE} {{",
                "  counter outside { }",
                "  chain pre {",
                "    type filter hook prerouting priority raw; policy accept;",
                f"    meta nfproto ipv4 ip daddr != {{ {self.network}, 224.0.0.0/4,"
                " 255.255.255.255 } counter name outside drop",
                "    meta nfproto ipv6 ip6 daddr != { fe80::/10, ff00::/8 }"
                " counter name outside drop",
                f"    ip daddr {{ {drops} }} drop" if drops else "",
                "  }",
                "}",
                "",
            ]
        )

    def outside_packets(self) -> int:
        """Netns mode: packets the agent sent to an address outside the prefix (the range's
        ``outside`` counter: they all pass the range namespace, the agent's only way out)."""
        done = netns.run_in(
            self.range_namespace, ["nft", "-j", "list", "counter", "inet", NFT_TABLE, "outside"]
        )
        for item in json.loads(done.stdout)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise netns.NetnsError(f"no outside counter: {done.stderr.strip()}")

    def _handler(
        self, host: HostSpec, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                self._event(host, port, "connect")
                await self._serve(host, port, reader, writer)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ssl.SSLError,
                ValueError,
            ):
                pass
            finally:
                self._writers.discard(writer)
                writer.close()

        return handle

    def _ssdp(self, host: HostSpec) -> Datagram:
        """The host's answer to an M-SEARCH (a router whose UPnP answers the whole Internet)."""
        table = usn_table(f"camwarden-survey-lab-{host.address}", [])
        url = f"http://{host.address}:5000/rootDesc.xml"

        def respond(data: bytes, _sender: tuple[str, int]) -> bytes | None:
            self._event(host, 1900, "ssdp", credential=_credential(data))
            if search_target(data) is None:
                return None
            st = "upnp:rootdevice"
            return search_reply(st, table[st], url, "Linux/3.4 UPnP/1.0 MiniUPnPd/2.1")

        return respond

    def _event(self, host: HostSpec, port: int, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.write(host.address, port, event, kind=host.kind, **fields)

    async def _serve(
        self, host: HostSpec, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if host.kind == "resetting":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if host.kind == "dropping" or port in (8000, 37777):
            await self._listen(host, port, reader)
            return
        if port == 23:
            writer.write(b"\xff\xfb\x01\xff\xfb\x03(none) login: ")
            await writer.drain()
            await self._listen(host, port, reader)
            return
        if port == 554:
            await self._rtsp(host, reader, writer)
            return
        head = await reader.readuntil(b"\r\n\r\n")
        method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        body = await reader.readexactly(min(int(length.group(1)), MAX_REQUEST)) if length else b""
        self._event(
            host, port, "http", method=method, path=path[:200], credential=_credential(head + body)
        )
        writer.write(_http_answer(host.kind, method, path, body))
        await writer.drain()

    async def _listen(self, host: HostSpec, port: int, reader: asyncio.StreamReader) -> None:
        """Say nothing (more); log whatever the client sends (a login port: a credential)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HOLD_S):
                while data := await reader.read(4096):
                    self._event(
                        host,
                        port,
                        "data",
                        bytes=len(data),
                        credential=_login(port, data),
                    )

    async def _rtsp(
        self, host: HostSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method = head.split(b" ", 1)[0].decode("latin-1")
            cseq = re.search(rb"(?im)^cseq:\s*(\d+)", head)
            self._event(host, 554, "rtsp", method=method, credential=_credential(head))
            lines = ["RTSP/1.0 200 OK", f"CSeq: {int(cseq.group(1)) if cseq else 0}"]
            body = b""
            if method == "OPTIONS":
                lines.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN")
            elif method == "DESCRIBE" and host.kind == "dahua_open":
                body = (
                    b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=Media Server\r\nt=0 0\r\n"
                    b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                )
                lines += ["Content-Type: application/sdp", f"Content-Length: {len(body)}"]
            else:
                lines[0] = "RTSP/1.0 401 Unauthorized"
                lines.append('WWW-Authenticate: Digest realm="IP Camera", nonce="0123456789abcdef"')
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await server.wait_closed()
        for service in self._udp:
            await service.close()
        self._servers.clear()
        self._udp.clear()
        if self._log is not None:
            self._log.file.close()
            self._log = None
        if self._tls is not None:
            self._tls.close()
            self._tls = None
        if self._namespaces:
            names, self._namespaces = self._namespaces, []
            await asyncio.to_thread(
                netns._ip,
                "-force",
                batch=[f"netns del {n}" for n in names],
            )


class _RangeBinder:
    """Sockets of the range namespace, bound to each host's address (a local route holds the
    whole prefix, so each address is the namespace's own)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def tcp(self, host: str, port: int) -> socket.socket:
        with netns.entered(self.namespace):
            return LoopbackBinder().tcp(host, port)

    def udp(self, host: str, port: int) -> socket.socket:
        with netns.entered(self.namespace):
            return LoopbackBinder().udp(host, port)
