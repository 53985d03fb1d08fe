"""A running lab: every camera of a ``LabConfig`` served from one asyncio process.

Each camera gets an address (127.77.0.N in loopback mode, 10.99.0.N in its own namespace in netns
mode) and its persona's ports (shifted by ``port_shift`` in loopback mode). The HTTP side (ONVIF
and the vendor API) is served here; RTSP (one GStreamer worker process for the whole fleet),
banners, SNMP, SSDP, WS-Discovery and the router's UPnP-IGD come from ``lab.services``. A reboot
closes every listener of the camera and re-opens it.

In netns mode the fleet owns a :class:`lab.netns.NetnsLab` (one namespace per camera and router,
plus the agent's) and removes it on ``stop()``. Programs under test run in the agent namespace
through :meth:`Fleet.run_in_agent`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, get_args

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from lab import netns, onvif
from lab.binder import Binder, LoopbackBinder
from lab.camera import Camera, Channel
from lab.config import CameraSpec, Faults, LabConfig, RouterSpec
from lab.errors import LabError
from lab.faults import FaultGate
from lab.http import HttpFrontend
from lab.persona import Persona
from lab.requestlog import RequestLog
from lab.rtsp import RtspFront
from lab.services.banners import start_banner
from lab.services.forward import start_forward
from lab.services.igd import start_igd
from lab.services.rtsp import RtspFleet, RtspStream
from lab.services.snmp import start_snmp
from lab.services.ssdp import start_ssdp
from lab.services.vendordiscovery import (
    DHDISCOVER_PORT,
    SADP_PORT,
    DeviceFacts,
    start_dhdiscover,
    start_sadp,
)
from lab.services.wsdiscovery import start_wsdiscovery
from lab.tls import TlsFactory
from lab.truth import camera_findings

__all__ = ["CameraNode", "Fleet", "RouterNode"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 0.2
# services a setting write turns on and off while the camera runs (``CameraNode.follow_settings``)
SwitchedService = Literal["telnet", "ssh", "ftp", "upnp", "discoverable", "snmp"]
SWITCHED: tuple[SwitchedService, ...] = get_args(SwitchedService)
STANDARD_PORTS = {
    "telnet": 23,
    "ftp": 21,
    "ssh": 22,
    "snmp": 161,
    "ssdp": 1900,
    "wsd": 3702,
    "sadp": SADP_PORT,
    "dhdiscover": DHDISCOVER_PORT,
}
ROUTER_PORTS = {"ssdp": 1900, "igd_http": 5000}
BACKSTAGE_HOST = "127.0.0.1"  # where GStreamer listens, behind the RTSP fronts (in netns mode:
# the camera namespace's own loopback, which nothing outside that namespace can reach)


Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class Service(Protocol):
    async def close(self) -> None: ...


@dataclass(slots=True)
class _Listener:
    """An HTTP(S) listener: the asyncio server, aiohttp's connection tracker, fault gates."""

    server: asyncio.AbstractServer
    web_server: web.Server
    gates: set[asyncio.Task[None]] = field(default_factory=set)  # HTTPS: before the handshake

    async def close(self) -> None:
        self.server.close()
        for task in list(self.gates):
            task.cancel()
        await asyncio.gather(*self.gates, return_exceptions=True)
        await self.web_server.shutdown(SHUTDOWN_TIMEOUT_S)
        await self.server.wait_closed()


@dataclass(slots=True)
class _Plain:
    """A listener without connection tracking (vendor binary ports)."""

    server: asyncio.AbstractServer

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class _CameraRequest(web.BaseRequest):
    """A request whose every response carries the camera's ``Server`` banner.

    Covers the answers aiohttp writes itself (400 to a malformed request such as nmap's
    probes), which would otherwise name aiohttp and give the simulator away.
    """

    persona: Persona

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        response.headers["Server"] = self.persona.banners["http"]


def _request_factory(persona: Persona) -> Callable[..., web.BaseRequest]:
    kind = type("CameraRequest", (_CameraRequest,), {"persona": persona})

    def make(*args: Any) -> web.BaseRequest:
        request: web.BaseRequest = kind(*args, loop=asyncio.get_running_loop())
        return request

    return make


class _CameraProtocol(RequestHandler):
    """aiohttp's HTTP protocol, answering what aiohttp answers itself (a malformed request, a
    handler that failed) with the persona's error page instead of aiohttp's."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses if already sent
        if not isinstance(request, _CameraRequest):
            raise TypeError("camera HTTP servers make _CameraRequest requests only")
        page = request.persona.error_page(status)
        headers = {"Content-Type": page.content_type}
        response = web.Response(status=status, body=page.render(status, "/"), headers=headers)
        response.force_close()
        return response


class _CameraServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _CameraProtocol(self, loop=asyncio.get_running_loop())


class _Silent:
    """A port seeded in ``silent_ports``: accepts every connection, reads, never answers."""

    def __init__(self) -> None:
        self.transports: set[asyncio.Transport] = set()
        self.server: asyncio.AbstractServer | None = None

    def protocol(self) -> asyncio.Protocol:
        silent = self

        class Swallow(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.Transport, transport)
                silent.transports.add(self.transport)

            def connection_lost(self, exc: Exception | None) -> None:
                silent.transports.discard(self.transport)

        return Swallow()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for transport in list(self.transports):
            transport.abort()
        if self.server is not None:
            await self.server.wait_closed()


class _HoldOpen(asyncio.Protocol):
    """A vendor binary port (Hikvision SDK 8000, Dahua 37777): accepts, then hangs up on data."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.close()


@dataclass(slots=True)
class CameraNode:
    """One camera of a running fleet: its state, address, ports and listeners."""

    camera: Camera
    config: LabConfig
    binder: Binder
    tls: TlsFactory
    rtsp: RtspFleet | None = None  # the fleet's RTSP worker, unless [lab] rtsp = false
    connect: Connector = asyncio.open_connection  # from where the camera is (its namespace)
    backstage: tuple[str, int] | None = None  # where GStreamer serves this camera's streams
    netns: str | None = None  # the camera's namespace (netns mode)
    _listeners: list[Service] = field(default_factory=list)
    # the running switched services (see SWITCHED), with the settings they were started with
    _switched: dict[SwitchedService, tuple[Service, object]] = field(default_factory=dict)
    _following: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def spec(self) -> CameraSpec:
        return self.camera.spec

    @property
    def id(self) -> str:
        return self.camera.id

    @property
    def host(self) -> str:
        return self.camera.host

    @property
    def ports(self) -> dict[str, int]:
        return self.camera.ports

    @property
    def vendor(self) -> str:
        return self.camera.persona.vendor

    @property
    def weaknesses(self) -> dict[str, list[str]]:
        """Seeded weaknesses keyed by control ID (the same data as ``camwarden-lab truth``)."""
        return camera_findings(self.spec, self.config)

    def url(self, path: str = "", *, https: bool = False) -> str:
        scheme = "https" if https else "http"
        return f"{scheme}://{self.host}:{self.ports[scheme]}{path}"

    @property
    def onvif_url(self) -> str:
        """The device service address the camera announces (WS-Discovery XAddrs)."""
        if "onvif" in self.ports:
            return f"http://{self.host}:{self.ports['onvif']}/onvif/device_service"
        return self.url("/onvif/device_service", https=self.spec.http_redirect)

    async def open(self) -> None:
        cam, spec = self.camera, self.spec
        if not await self._silent("http"):
            await self._http(HttpFrontend(cam, secure=False), cam.ports["http"], None)
        if spec.https and not await self._silent("https"):
            ctx = self.tls.context(spec.tls, cam.host, spec.id)
            await self._http(HttpFrontend(cam, secure=True), cam.ports["https"], ctx)
        if "onvif" in cam.ports and not await self._silent("onvif"):
            await self._http(
                HttpFrontend(cam, secure=False, port="onvif"), cam.ports["onvif"], None
            )
        for extra in ("sdk", "tcp"):
            if extra in cam.ports and not await self._silent(extra):
                sock = self.binder.tcp(cam.host, cam.ports[extra])
                loop = asyncio.get_running_loop()
                self._listeners.append(_Plain(await loop.create_server(_HoldOpen, sock=sock)))
        for kind in SWITCHED:
            if cam.settings[kind] and not await self._silent(kind):
                self._switched[kind] = (await self._start_switched(kind), self._started_with(kind))
        if self.rtsp is not None and not await self._silent("rtsp"):
            await self._rtsp_front()
        await self._vendor_discovery()
        await self._virtual_host()

    async def _start_switched(self, kind: SwitchedService) -> Service:
        cam, spec = self.camera, self.spec
        if kind in ("telnet", "ssh", "ftp"):
            sock = self.binder.tcp(cam.host, cam.ports[kind])
            return await start_banner(sock, kind, cam.persona.banners[kind], self._faults)
        if kind == "snmp":
            sock = self.binder.udp(cam.host, cam.ports["snmp"])
            community = frozenset({str(cam.settings["snmp_community"])})
            return await start_snmp(sock, community, cam.persona.banners["snmp"], sys_name=spec.id)
        if kind == "upnp":
            return await start_ssdp(
                self.binder.udp(cam.host, cam.ports["ssdp"]),
                self.binder.tcp(cam.host, cam.ports["upnp_http"]),
                friendly_name=f"{cam.persona.vendor} {spec.model}",
                manufacturer=cam.persona.vendor,
                model=spec.model,
                uuid=cam.uuid,
                server_banner=cam.persona.banners["http"],
            )
        return await start_wsdiscovery(
            self.binder.udp(cam.host, cam.ports["wsd"]),
            uuid=cam.uuid,
            xaddrs=[self.onvif_url],
            scopes=onvif.scopes(cam),
        )

    async def follow_settings(self) -> None:
        """After a setting write (the camera's settings hook): a service turned off closes its
        listeners at once, one turned on opens them, one whose settings changed (the SNMP
        community) restarts, as a real camera restarts its daemons."""
        async with self._following:
            if not self.camera.online:
                return  # a reboot opens what the settings say
            for kind in SWITCHED:
                running, started_with = self._switched.get(kind, (None, None))
                wanted = self.camera.settings[kind]
                if running is not None and (not wanted or started_with != self._started_with(kind)):
                    del self._switched[kind]
                    await running.close()
                    running = None
                if wanted and running is None and not await self._silent(kind):
                    self._switched[kind] = (
                        await self._start_switched(kind),
                        self._started_with(kind),
                    )

    def _started_with(self, kind: SwitchedService) -> object:
        """What a running service depends on besides its switch (SNMP: its community)."""
        return self.camera.settings["snmp_community"] if kind == "snmp" else None

    def virtual_host_port(self, channel: int) -> int:
        """The recorder's port of the camera on ``channel`` (``Persona.virtual_host``); on
        loopback shifted down by the lab's port shift (up would leave the port range)."""
        lab = self.config.lab
        shift = lab.port_shift if lab.mode == "loopback" else 0
        return self.camera.persona.virtual_host - shift + channel - 1

    async def _virtual_host(self) -> None:
        """A recorder's virtual host: each seated camera's web interface on a port of its own."""
        cam = self.camera
        if not cam.persona.virtual_host:
            return
        for channel in cam.channels:
            sock = self.binder.tcp(cam.host, self.virtual_host_port(channel.number))
            target = (channel.camera.host, channel.camera.ports["http"])
            self._listeners.append(await start_forward(sock, self.connect, target))

    async def _vendor_discovery(self) -> None:
        """The family's own discovery responder: SADP (Hikvision), DHDiscover (Dahua)."""
        cam = self.camera
        starts = {"Hikvision": ("sadp", start_sadp), "Dahua": ("dhdiscover", start_dhdiscover)}
        if cam.persona.family not in starts:
            return
        kind, start = starts[cam.persona.family]
        persona = cam.persona
        facts = DeviceFacts(
            vendor=persona.vendor,
            model=self.spec.model,
            serial=cam.serial,
            mac=cam.mac,
            host=cam.host,
            http_port=cam.ports["http"],
            sdk_port=cam.ports.get("sdk", cam.ports.get("tcp", 0)),
            version=cam.version,
            build=persona.build_string(cam.build),
            device_class=persona.device_type if persona.recorder else "IPC",
            channels=persona.channels,
            activated=not self.spec.not_activated,
            booted=cam.now().strftime("%Y-%m-%d %H:%M:%S"),
        )
        self._listeners.append(await start(self.binder.udp(cam.host, cam.ports[kind]), facts))

    async def close(self) -> None:
        switched = [service for service, _with in self._switched.values()]
        listeners, self._listeners = [*self._listeners, *switched], []
        self._switched = {}
        await asyncio.gather(*(item.close() for item in listeners))

    async def reboot(self, seconds: float) -> None:
        """Every listener closed for ``seconds``, then opened again (the camera's reboot hook)."""
        await self.close()
        await self._set_rtsp(online=False)
        await asyncio.sleep(seconds)
        self.camera.boot()  # before the listeners open: nothing answers with the old firmware
        await self.open()
        await self._set_rtsp(online=True)

    async def _rtsp_front(self) -> None:
        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if self.backstage is None:
                raise ConnectionRefusedError("the camera's RTSP server is not up yet")
            return await self.connect(*self.backstage)

        sock = self.binder.tcp(self.host, self.ports["rtsp"])
        self._listeners.append(await RtspFront(self.camera, connect).start(sock))

    async def _silent(self, kind: str) -> bool:
        """Open ``kind``'s port as a silent one if the config says so (True: done)."""
        if kind not in self.spec.silent_ports:
            return False
        silent = _Silent()
        sock = self.binder.tcp(self.host, self.ports[kind])
        loop = asyncio.get_running_loop()
        silent.server = await loop.create_server(silent.protocol, sock=sock)
        self._listeners.append(silent)
        return True

    async def _set_rtsp(self, *, online: bool) -> None:
        if self.rtsp is not None and self.backstage is not None:
            await self.rtsp.set_online(*self.backstage, online, netns=self.netns)

    async def _http(self, frontend: HttpFrontend, port: int, ctx: ssl.SSLContext | None) -> None:
        sock = self.binder.tcp(self.camera.host, port)
        web_server = _CameraServer(
            frontend,
            handler_cancellation=True,
            request_factory=_request_factory(self.camera.persona),
        )
        loop = asyncio.get_running_loop()
        if ctx is None:
            server = await loop.create_server(web_server, sock=sock)
            self._listeners.append(_Listener(server, web_server))
            return
        gates: set[asyncio.Task[None]] = set()
        server = await loop.create_server(
            lambda: FaultGate(web_server, ctx, self._faults, gates), sock=sock
        )
        self._listeners.append(_Listener(server, web_server, gates))

    def _faults(self) -> Faults:
        return self.camera.faults


@dataclass(slots=True)
class RouterNode:
    spec: RouterSpec
    host: str
    ports: dict[str, int]
    service: Service | None = None


class Fleet:
    """Start with ``await Fleet.start(config)``; always ``await fleet.stop()``."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.netlab: netns.NetnsLab | None = None
        self.binder: Binder = LoopbackBinder()
        self.tls = TlsFactory()
        self.cameras: dict[str, CameraNode] = {}
        self.routers: dict[str, RouterNode] = {}
        self.rtsp: RtspFleet | None = None
        self.request_log: RequestLog | None = None

    @classmethod
    async def start(cls, config: LabConfig) -> Fleet:
        fleet = cls(config)
        try:
            await fleet._start()
        except BaseException:
            await fleet.stop()
            raise
        return fleet

    def __getitem__(self, camera_id: str) -> CameraNode:
        return self.cameras[camera_id]

    @property
    def agent_namespace(self) -> str | None:
        """The namespace where the software under test runs (netns mode); None on loopback."""
        return self.netlab.agent.namespace if self.netlab is not None else None

    @property
    def agent_address(self) -> str:
        """The agent's source address as the cameras see it."""
        return self.netlab.agent.address if self.netlab is not None else "127.0.0.1"

    async def run_in_agent(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run a program where the agent under test runs and wait for it; the fleet keeps serving.

        In netns mode that is the agent namespace, on loopback the caller's own namespace.
        Bound it with ``asyncio.timeout``: on cancellation the program is killed.
        """
        if self.netlab is not None:
            return await netns.arun_in(self.netlab.agent.namespace, argv)
        return await netns.arun(argv)

    def _connector(self, namespace: str | None) -> Connector:
        """TCP connections made from inside ``namespace`` (None: this process's own)."""

        async def connect(
            host: str, port: int
        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if namespace is None:
                return await asyncio.open_connection(host, port)
            with netns.entered(namespace):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
            except OSError:
                sock.close()
                raise
            return await asyncio.open_connection(sock=sock)

        return connect

    def address(self, slot: int) -> str:
        """The address of lab slot ``slot`` (0-based: a camera's ``spec.slot``, a router's
        ordinal)."""
        lab = self.config.lab
        if lab.mode == "loopback":
            return str(lab.loopback_base + slot + 1)
        host = lab.subnet.network_address + 11 + slot
        if host not in lab.subnet or host == lab.subnet.broadcast_address:
            raise LabError(f"subnet {lab.subnet} has no room for lab host number {slot + 1}")
        return str(host)

    def host(self, spec: CameraSpec) -> str:
        """A camera's address: its lab slot's, or (``poe``) the same host number on its
        recorder's internal PoE network."""
        if spec.poe:
            return str(netns.POE_SUBNET.network_address + 11 + spec.slot)
        return self.address(spec.slot)

    def port(self, standard: int) -> int:
        lab = self.config.lab
        port = standard + lab.port_shift if lab.mode == "loopback" else standard
        if port > 65535:
            raise LabError(f"port {standard} shifted by {lab.port_shift} is out of range")
        return port

    async def _start(self) -> None:
        if self.config.lab.rtsp and self.config.cameras:
            self.rtsp = RtspFleet()
            await self.rtsp.start([])  # fails fast when GStreamer is missing
        if self.config.lab.mode == "netns":
            await self._create_netlab()
        if self.config.lab.request_log is not None:
            self.request_log = RequestLog(self.config.lab.request_log)
        for spec in self.config.cameras:
            ports = {k: self.port(v) for k, v in {**spec.persona.ports, **STANDARD_PORTS}.items()}
            camera = Camera(spec, self.host(spec), ports)
            namespace = self.netlab.namespace_of(camera.host) if self.netlab else None
            connect = self._connector(namespace)
            node = CameraNode(camera, self.config, self.binder, self.tls, self.rtsp, connect)
            node.netns = namespace
            camera.reboot_hook = node.reboot
            camera.settings_hook = node.follow_settings
            if self.request_log is not None:
                camera.sink = self.request_log.write
            self.cameras[spec.id] = node
        for spec in self.config.cameras:
            seated = self.config.channels(spec.id)
            self.cameras[spec.id].camera.channels = tuple(
                Channel.seat(c.channel, self.cameras[c.id].camera) for c in seated
            )
        for node in self.cameras.values():
            if not node.spec.channel_offline:  # a camera its recorder lists offline is down
                await node.open()
        await self._start_rtsp()
        for router in self.config.routers:
            await self._start_router(router)
        log.info("lab: %d cameras up", len(self.cameras))

    async def _create_netlab(self) -> None:
        lab = self.config.lab
        cameras, routers = self.config.cameras, self.config.routers
        slots = [c.slot for c in cameras if not c.poe] + [r.ordinal for r in routers]
        hosts = [self.address(n) for n in slots]
        poe: dict[str, list[str]] = {}
        for cam in cameras:
            if cam.poe and cam.recorder is not None:
                recorder = self.config.camera(cam.recorder)
                poe.setdefault(self.host(recorder), []).append(self.host(cam))
        try:
            self.netlab = netns.NetnsLab(hosts, subnet=str(lab.subnet), poe=poe)
        except ValueError as exc:
            raise LabError(f"[lab] subnet {lab.subnet}: {exc}") from exc
        try:
            await asyncio.to_thread(self.netlab.create)
        except (netns.NetnsError, OSError) as exc:
            self.netlab = None  # create() removed what it had made
            raise LabError(
                f'mode = "netns" could not create the lab namespaces ({exc}); run as root, or '
                "without root inside a user namespace: python -m lab.netns -- camwarden-lab up ..."
            ) from exc
        self.binder = self.netlab.binder()

    async def _start_rtsp(self) -> None:
        if self.rtsp is None:
            return
        nodes = list(self.cameras.values())
        streams = [
            RtspStream(node.netns, BACKSTAGE_HOST, 0, node.spec.persona.rtsp_paths)
            for node in nodes
        ]
        ports = await self.rtsp.start(streams)
        for node, port in zip(nodes, ports, strict=True):
            node.backstage = (BACKSTAGE_HOST, port)

    async def _start_router(self, spec: RouterSpec) -> None:
        host = self.address(spec.ordinal)
        ports = {k: self.port(v) for k, v in ROUTER_PORTS.items()}
        node = RouterNode(spec, host, ports)
        self.routers[spec.id] = node
        mappings = [
            (m.external_port, self.cameras[m.camera].host, self.port(m.internal_port))
            for m in spec.port_mappings
        ]
        node.service = await start_igd(
            self.binder.udp(host, ports["ssdp"]),
            self.binder.tcp(host, ports["igd_http"]),
            mappings=mappings,
            external_ip=spec.external_ip,
        )

    async def stop(self) -> None:
        """Stop every listener, the RTSP worker and (netns mode) remove every namespace."""
        try:
            for node in self.cameras.values():
                await node.camera.close()
                await node.close()
            for router in self.routers.values():
                if router.service is not None:
                    await router.service.close()
        finally:
            try:
                if self.rtsp is not None:
                    await self.rtsp.close()
                    self.rtsp = None
            finally:
                self.tls.close()
                if self.request_log is not None:
                    self.request_log.close()
                    self.request_log = None
                if self.netlab is not None:
                    netlab, self.netlab = self.netlab, None
                    await asyncio.to_thread(netlab.close)
