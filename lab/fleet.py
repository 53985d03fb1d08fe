"""A running lab: every camera of a ``LabConfig`` served from one asyncio process.

Each camera gets an address (127.77.0.N in loopback mode, 10.99.0.N in its own namespace in netns
mode) and its persona's ports (shifted by ``port_shift`` in loopback mode). The HTTP side (ONVIF
and the vendor API) is served here; RTSP, banners, SNMP, SSDP, WS-Discovery and the router's
UPnP-IGD come from ``lab.services``. A reboot closes every listener of the camera and re-opens it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import ssl
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from aiohttp import web

from lab import onvif
from lab.binder import Binder, LoopbackBinder
from lab.camera import Camera
from lab.config import CameraSpec, LabConfig, RouterSpec
from lab.errors import LabError, ServiceUnavailable
from lab.http import HttpFrontend
from lab.tls import TlsFactory
from lab.truth import camera_findings

__all__ = ["CameraNode", "Fleet", "RouterNode"]

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 0.2
STANDARD_PORTS = {"telnet": 23, "ftp": 21, "ssh": 22, "snmp": 161, "ssdp": 1900, "wsd": 3702}
ROUTER_PORTS = {"ssdp": 1900, "igd_http": 5000}


class Service(Protocol):
    async def close(self) -> None: ...


@dataclass(slots=True)
class _Listener:
    """An HTTP(S) listener: the asyncio server and aiohttp's connection tracker."""

    server: asyncio.AbstractServer
    web_server: web.Server

    async def close(self) -> None:
        self.server.close()
        await self.web_server.shutdown(SHUTDOWN_TIMEOUT_S)
        await self.server.wait_closed()


@dataclass(slots=True)
class _Plain:
    """A listener without connection tracking (vendor binary ports)."""

    server: asyncio.AbstractServer

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class _HoldOpen(asyncio.Protocol):
    """A vendor binary port (Hikvision SDK 8000, Dahua 37777): accepts, then hangs up on data."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.close()


class _Services:
    """Imports ``lab.services.<name>`` on first use; remembers what is missing."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.missing: set[str] = set()

    def module(self, name: str) -> ModuleType | None:
        try:
            return importlib.import_module(f"lab.services.{name}")
        except ModuleNotFoundError as exc:
            if self.strict:
                raise ServiceUnavailable(f"lab.services.{name} is not installed") from exc
            if name not in self.missing:
                log.warning("lab.services.%s is not installed: those listeners are skipped", name)
            self.missing.add(name)
            return None


@dataclass(slots=True)
class CameraNode:
    """One camera of a running fleet: its state, address, ports and listeners."""

    camera: Camera
    config: LabConfig
    binder: Binder
    services: _Services
    tls: TlsFactory
    rtsp: Any | None = None  # lab.services.rtsp.RtspFleet once started
    _listeners: list[Service] = field(default_factory=list)

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

    async def open(self) -> None:
        cam, spec = self.camera, self.spec
        await self._http(HttpFrontend(cam, secure=False), cam.ports["http"], None)
        if spec.https:
            ctx = self.tls.context(spec.tls, cam.host, spec.id)
            await self._http(HttpFrontend(cam, secure=True), cam.ports["https"], ctx)
        for extra in ("sdk", "tcp"):
            if extra in cam.ports:
                sock = self.binder.tcp(cam.host, cam.ports[extra])
                loop = asyncio.get_running_loop()
                self._listeners.append(_Plain(await loop.create_server(_HoldOpen, sock=sock)))
        for kind in ("telnet", "ftp", "ssh"):
            if getattr(spec, kind):
                sock = self.binder.tcp(cam.host, cam.ports[kind])
                await self._service(
                    "banners", "start_banner", sock, kind, cam.persona.banners[kind]
                )
        if spec.snmp_public:
            sock = self.binder.udp(cam.host, cam.ports["snmp"])
            banner = cam.persona.banners["snmp"]
            await self._service("snmp", "start_snmp", sock, frozenset({"public"}), banner)
        if spec.upnp:
            await self._service(
                "ssdp",
                "start_ssdp",
                self.binder.udp(cam.host, cam.ports["ssdp"]),
                self.binder.tcp(cam.host, cam.ports["upnp_http"]),
                friendly_name=f"{cam.persona.vendor} {spec.model}",
                manufacturer=cam.persona.vendor,
                model=spec.model,
                uuid=cam.uuid,
                server_banner=cam.persona.banners["http"],
            )
        await self._service(
            "wsdiscovery",
            "start_wsdiscovery",
            self.binder.udp(cam.host, cam.ports["wsd"]),
            uuid=cam.uuid,
            xaddrs=[self.url("/onvif/device_service")],
            scopes=onvif.scopes(cam),
        )

    async def close(self) -> None:
        listeners, self._listeners = self._listeners, []
        await asyncio.gather(*(item.close() for item in listeners))

    async def reboot(self, seconds: float) -> None:
        """Every listener closed for ``seconds``, then opened again (the camera's reboot hook)."""
        await self.close()
        await self._set_rtsp(online=False)
        await asyncio.sleep(seconds)
        await self.open()
        await self._set_rtsp(online=True)

    async def _set_rtsp(self, *, online: bool) -> None:
        if self.rtsp is not None:
            await self.rtsp.set_online(self.host, self.ports["rtsp"], online)

    async def _http(self, frontend: HttpFrontend, port: int, ctx: ssl.SSLContext | None) -> None:
        sock = self.binder.tcp(self.camera.host, port)
        web_server = web.Server(frontend, handler_cancellation=True)
        server = await asyncio.get_running_loop().create_server(web_server, sock=sock, ssl=ctx)
        self._listeners.append(_Listener(server, web_server))

    async def _service(self, module: str, starter: str, *args: Any, **kwargs: Any) -> None:
        found = self.services.module(module)
        if found is None:
            for sock in (*args, *kwargs.values()):
                if isinstance(sock, socket.socket):
                    sock.close()
            return
        self._listeners.append(await getattr(found, starter)(*args, **kwargs))


@dataclass(slots=True)
class RouterNode:
    spec: RouterSpec
    host: str
    ports: dict[str, int]
    service: Service | None = None


class Fleet:
    """Start with ``await Fleet.start(config)``; always ``await fleet.stop()``."""

    def __init__(self, config: LabConfig, binder: Binder, *, strict_services: bool) -> None:
        self.config = config
        self.binder = binder
        self.services = _Services(strict_services)
        self.tls = TlsFactory()
        self.cameras: dict[str, CameraNode] = {}
        self.routers: dict[str, RouterNode] = {}
        self.rtsp: Any | None = None

    @classmethod
    async def start(
        cls, config: LabConfig, *, binder: Binder | None = None, strict_services: bool = False
    ) -> Fleet:
        fleet = cls(config, binder or _binder_for(config), strict_services=strict_services)
        try:
            await fleet._start()
        except BaseException:
            await fleet.stop()
            raise
        return fleet

    @property
    def missing_services(self) -> frozenset[str]:
        return frozenset(self.services.missing)

    def __getitem__(self, camera_id: str) -> CameraNode:
        return self.cameras[camera_id]

    def address(self, ordinal: int) -> str:
        lab = self.config.lab
        if lab.mode == "loopback":
            return str(lab.loopback_base + ordinal + 1)
        host = lab.subnet.network_address + 11 + ordinal
        if host not in lab.subnet or host == lab.subnet.broadcast_address:
            raise LabError(f"subnet {lab.subnet} has no room for lab host number {ordinal + 1}")
        return str(host)

    def port(self, standard: int) -> int:
        lab = self.config.lab
        port = standard + lab.port_shift if lab.mode == "loopback" else standard
        if port > 65535:
            raise LabError(f"port {standard} shifted by {lab.port_shift} is out of range")
        return port

    async def _start(self) -> None:
        for spec in self.config.cameras:
            ports = {k: self.port(v) for k, v in {**spec.persona.ports, **STANDARD_PORTS}.items()}
            camera = Camera(spec, self.address(spec.ordinal), ports)
            node = CameraNode(camera, self.config, self.binder, self.services, self.tls)
            camera.reboot_hook = node.reboot
            self.cameras[spec.id] = node
            await node.open()
        await self._start_rtsp()
        for router in self.config.routers:
            await self._start_router(router)
        log.info("lab: %d cameras up", len(self.cameras))

    async def _start_rtsp(self) -> None:
        if not self.cameras:
            return
        module = self.services.module("rtsp")
        if module is None:
            return
        netns = self.config.lab.mode == "netns"
        streams = [
            module.RtspStream(
                netns=node.id if netns else None,
                host=node.host,
                port=node.ports["rtsp"],
                paths=node.spec.persona.rtsp_paths,
                auth=node.spec.rtsp_auth,
                users=tuple((u.name, u.password) for u in node.spec.all_users),
            )
            for node in self.cameras.values()
        ]
        self.rtsp = module.RtspFleet()
        await self.rtsp.start(streams)
        for node in self.cameras.values():
            node.rtsp = self.rtsp

    async def _start_router(self, spec: RouterSpec) -> None:
        host = self.address(spec.ordinal)
        ports = {k: self.port(v) for k, v in ROUTER_PORTS.items()}
        node = RouterNode(spec, host, ports)
        self.routers[spec.id] = node
        module = self.services.module("igd")
        if module is None:
            return
        mappings = [
            (m.external_port, self.cameras[m.camera].host, self.port(m.internal_port))
            for m in spec.port_mappings
        ]
        node.service = await module.start_igd(
            self.binder.udp(host, ports["ssdp"]),
            self.binder.tcp(host, ports["igd_http"]),
            mappings=mappings,
            external_ip=spec.external_ip,
        )

    async def stop(self) -> None:
        for node in self.cameras.values():
            await node.camera.close()
            await node.close()
        for router in self.routers.values():
            if router.service is not None:
                await router.service.close()
        if self.rtsp is not None:
            await self.rtsp.close()
            self.rtsp = None
        self.tls.close()
        closer = getattr(self.binder, "close", None)  # the netns binder owns namespaces
        if closer is not None:
            await closer()


def _binder_for(config: LabConfig) -> Binder:
    if config.lab.mode == "loopback":
        return LoopbackBinder()
    try:
        netns = importlib.import_module("lab.netns")
    except ModuleNotFoundError as exc:
        raise ServiceUnavailable('mode = "netns" needs lab.netns, which is not installed') from exc
    binder: Binder = netns.NetnsBinder(config.lab.subnet)
    return binder
