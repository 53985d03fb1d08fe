"""LAB.toml: which cameras the lab runs and which weaknesses each one carries.

Built once into frozen dataclasses. Unknown keys and bad values raise ``ConfigError`` naming
the key, the file and the line. ``[[camera]]`` entries with ``count = N`` expand into N cameras
``<id>-1`` .. ``<id>-N``. Anything a persona defines (model, firmware, users) is the default.

A camera with ``recorder = "<id>"`` sits on that recorder's next free channel (or ``channel``);
``offline = true`` keeps it down (no listeners) and the recorder lists it offline. ``host``
picks the lab address slot (default: the camera's position), so a camera can move address or
another device can take its slot while serial and MAC follow the camera's id and position.
``poe = true`` (netns mode) puts a seated camera on its recorder's PoE network instead of the
lab's: an internal address only the recorder reaches (``lab.netns``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from lab.errors import ConfigError
from lab.persona import ROLES, Persona, Role, load_persona
from lab.settings import WriteFaults, parse_write_faults
from protocol import configfile
from protocol.configfile import nearest, parse_toml

__all__ = [
    "CameraSpec",
    "Faults",
    "FirmwareUpgrade",
    "LabConfig",
    "LabSettings",
    "Lockout",
    "PortMapping",
    "RouterSpec",
    "TlsSpec",
    "User",
    "load_config",
    "parse_config",
]

Mode = Literal["loopback", "netns"]
RtspAuth = Literal["digest", "basic", "none"]
Garbage = Literal["truncated", "content_type", "huge"]
TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
T = TypeVar("T")
FLAGS = (
    "anonymous_rtsp",
    "anonymous_snapshot",
    "basic_over_http",
    "http_basic_and_digest",
    "telnet",
    "ftp",
    "ssh",
    "snmp_public",
    "upnp",
    "p2p",
    "ddns",
    "manual_time",
    "https",
    "hidden_admin",
    "not_activated",
    "http_redirect",
    "rtsp_no_media",
)
TCP_SERVICES = ("telnet", "ftp", "ssh")  # besides the persona's ports
DEFAULT_SUBNET = ipaddress.IPv4Network("10.99.0.0/24")
DEFAULT_LOOPBACK_BASE = ipaddress.IPv4Address("127.77.0.0")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str
    role: Role


@dataclass(frozen=True, slots=True)
class TlsSpec:
    self_signed: bool = True
    expired: bool = False
    weak_key: bool = False
    versions: tuple[TlsVersion, ...] = ("TLSv1.2", "TLSv1.3")
    shared_key_group: str | None = None

    @property
    def weak(self) -> bool:
        return self.expired or self.weak_key or bool({"TLSv1", "TLSv1.1"} & set(self.versions))


@dataclass(frozen=True, slots=True)
class Lockout:
    threshold: int = 5
    window_s: float = 30.0
    lock_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Faults:
    hang: bool = False
    slow_ms: int = 0
    drop: bool = False
    garbage: Garbage | None = None
    soap_fault: str | None = None  # ``onvif_faults`` only: answer this SOAP fault subcode


@dataclass(frozen=True, slots=True)
class FirmwareUpgrade:
    reboot_s: float = 5.0
    upload_delay_s: float = 0.0  # ONVIF UploadDelay: an upload sooner is refused (503)
    fail_mid_upgrade: bool = False
    comes_back_old: bool = False


@dataclass(frozen=True, slots=True)
class CameraSpec:
    id: str
    persona: Persona
    ordinal: int  # position in the lab, 0-based; gives the address, serial and MAC
    model: str
    firmware: str
    build_date: dt.date
    users: tuple[User, ...]
    rtsp_users: tuple[User, ...] = ()  # RTSP's own accounts (empty: the same as ``users``)
    anonymous_rtsp: bool = False
    # DESCRIBE answers 200 with an SDP that describes no media (no ``m=`` line): no stream
    rtsp_no_media: bool = False
    rtsp_auth: RtspAuth = "digest"
    onvif_noauth_ops: frozenset[str] = frozenset()
    anonymous_snapshot: bool = False
    basic_over_http: bool = False  # the web offers Basic only, and takes it
    # the web offers Digest and Basic, and takes both (Hikvision webCertificate "digest/basic")
    http_basic_and_digest: bool = False
    telnet: bool = False
    ftp: bool = False
    ssh: bool = False
    snmp_public: bool = False
    upnp: bool = False
    p2p: bool = False
    ddns: bool = False
    clock_skew_s: float = 0.0
    manual_time: bool = False
    https: bool = False
    tls: TlsSpec = field(default_factory=TlsSpec)
    hidden_admin: bool = False
    not_activated: bool = False
    http_redirect: bool = False  # plain HTTP answers every request with a redirect to HTTPS
    discoverable: bool = True  # ONVIF DiscoveryMode; false: no answer to WS-Discovery probes
    onvif_user_management: bool = True  # false: ONVIF SetUser refused (vendor API only)
    lockout: Lockout | None = None
    faults: Faults = field(default_factory=Faults)
    onvif_faults: dict[str, Faults] = field(default_factory=dict)  # ONVIF operation -> faults
    silent_ports: frozenset[str] = frozenset()  # services that accept TCP and never answer
    firmware_upgrade: FirmwareUpgrade = field(default_factory=FirmwareUpgrade)
    write_faults: WriteFaults = field(default_factory=WriteFaults)  # see ``lab.settings``
    recorder: str | None = None  # the recorder this camera is seated on
    channel: int = 0  # its channel on that recorder (1-based; 0: not seated)
    channel_offline: bool = False  # down: no listeners; the recorder lists it offline
    host_number: int = 0  # lab address slot (1-based; 0: ordinal + 1)
    poe: bool = False  # on its recorder's internal PoE network (netns mode)

    @property
    def slot(self) -> int:
        """The 0-based lab address slot."""
        return (self.host_number or self.ordinal + 1) - 1

    @property
    def all_users(self) -> tuple[User, ...]:
        """Users including the hidden admin, which the operator's inventory does not list."""
        if not self.hidden_admin:
            return self.users
        name, password = self.persona.hidden_admin
        return (*self.users, User(name, password, "admin"))


@dataclass(frozen=True, slots=True)
class PortMapping:
    external_port: int
    camera: str
    internal_port: int


@dataclass(frozen=True, slots=True)
class RouterSpec:
    id: str
    ordinal: int
    external_ip: str
    port_mappings: tuple[PortMapping, ...]


@dataclass(frozen=True, slots=True)
class LabSettings:
    mode: Mode = "loopback"
    subnet: ipaddress.IPv4Network = DEFAULT_SUBNET
    loopback_base: ipaddress.IPv4Address = DEFAULT_LOOPBACK_BASE
    port_shift: int = 10000
    rtsp: bool = True  # false: no RTSP listeners (for machines without GStreamer)
    request_log: Path | None = None  # JSON lines: every camera's requests and lock events


@dataclass(frozen=True, slots=True)
class LabConfig:
    lab: LabSettings
    cameras: tuple[CameraSpec, ...]
    routers: tuple[RouterSpec, ...] = ()

    def channels(self, recorder_id: str) -> tuple[CameraSpec, ...]:
        """The cameras seated on ``recorder_id``, by channel."""
        seated = (c for c in self.cameras if c.recorder == recorder_id)
        return tuple(sorted(seated, key=lambda c: c.channel))

    def camera(self, camera_id: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)


def load_config(path: str | Path) -> LabConfig:
    path = Path(path)
    return parse_config(path.read_text(encoding="utf-8"), source=str(path))


def parse_config(text: str, *, source: str = "LAB.toml") -> LabConfig:
    try:
        raw, lines = parse_toml(text, source)
    except configfile.ConfigError as exc:
        raise ConfigError(str(exc)) from exc
    doc = _Table(raw, _Source(source, lines), "", "")
    lab = _lab(doc.table("lab"))
    cameras: list[CameraSpec] = []
    key_groups: dict[str, tuple[bool, str]] = {}
    for entry in doc.tables("camera"):
        cameras.extend(_cameras(entry, len(cameras), key_groups))
    ids = [c.id for c in cameras]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{source}: duplicate camera ids: {', '.join(dupes)}")
    cameras = _seat(cameras, source)
    if lab.mode != "netns" and (poe := [c.id for c in cameras if c.poe]):
        raise ConfigError(f'{source}: poe of {", ".join(poe)} needs [lab] mode = "netns"')
    routers = tuple(
        _router(entry, len(cameras) + n, set(ids)) for n, entry in enumerate(doc.tables("router"))
    )
    clash = sorted(c.id for c in cameras if c.slot in {r.ordinal for r in routers})
    if clash:
        raise ConfigError(f"{source}: host of {', '.join(clash)} is a router's lab address")
    doc.done()
    return LabConfig(lab, tuple(cameras), routers)


def _lab(t: _Table) -> LabSettings:
    mode = t.choice("mode", get_args(Mode), "loopback")
    settings = LabSettings(
        mode=cast(Mode, mode),
        subnet=t.parsed("subnet", ipaddress.IPv4Network, DEFAULT_SUBNET),
        loopback_base=t.parsed("loopback_base", ipaddress.IPv4Address, DEFAULT_LOOPBACK_BASE),
        port_shift=t.get("port_shift", int, 10000),
        rtsp=t.get("rtsp", bool, True),
        request_log=Path(t.get("request_log", str)) if "request_log" in t.raw else None,
    )
    if not settings.loopback_base.is_loopback:
        t.fail("loopback_base", "must be inside 127.0.0.0/8")
    t.done()
    return settings


def _cameras(t: _Table, first: int, key_groups: dict[str, tuple[bool, str]]) -> list[CameraSpec]:
    base_id = t.get("id", str)
    count = t.get("count", int, 0)
    persona_name = t.get("persona", str)
    try:
        persona = load_persona(persona_name)
    except ConfigError as exc:
        t.fail("persona", str(exc))
    model = t.get("model", str, persona.models[0])
    firmware = t.get("firmware", str, persona.firmware)
    build_date = t.get("build_date", dt.date, persona.build_date)
    users = tuple(_user(u) for u in t.tables("users")) or tuple(
        User(name, password, "admin") for name, password in persona.default_credentials[:1]
    )
    rtsp_users = tuple(_user(u) for u in t.tables("rtsp_users"))
    noauth = frozenset(t.get("onvif_noauth_ops", list, []))
    flags = {key: t.get(key, bool, False) for key in FLAGS}
    rtsp_auth = t.choice(
        "rtsp_auth", get_args(RtspAuth), "none" if flags["anonymous_rtsp"] else "digest"
    )
    tls = _tls(t.table("tls"), key_groups, base_id) if "tls" in t.raw else TlsSpec()
    lockout = _lockout(t.table("lockout")) if "lockout" in t.raw else None
    faults = _faults(t.table("faults")) if "faults" in t.raw else Faults()
    onvif_faults = {
        op: _faults(t.table("onvif_faults").table(op), operation=True)
        for op in t.get("onvif_faults", dict, {})
    }
    silent_ports = frozenset(t.get("silent_ports", list, []))
    tcp_services = {*persona.ports, *TCP_SERVICES} - {"upnp_http"}  # UPnP: with SSDP
    for name in sorted(silent_ports - tcp_services):
        t.fail("silent_ports", f"{name!r} is not a TCP service of {persona_name!r}")
    upgrade = _upgrade(t.table("firmware_upgrade")) if "firmware_upgrade" in t.raw else None
    write_faults = persona.write_faults
    if "write_faults" in t.raw:
        try:
            write_faults = parse_write_faults(t.get("write_faults", dict))
        except ValueError as exc:
            t.fail("write_faults", str(exc))
    skew = t.get("clock_skew_s", float, 0.0)
    discoverable = t.get("discoverable", bool, True)
    onvif_user_management = t.get("onvif_user_management", bool, True)
    recorder = t.get("recorder", str, "") or None
    channel = t.get("channel", int, 0)
    offline = t.get("offline", bool, False)
    poe = t.get("poe", bool, False)
    host_number = t.get("host", int, 0)
    if (channel or offline or poe) and recorder is None:
        key = "channel" if channel else "offline" if offline else "poe"
        t.fail(key, "only a camera on a recorder has a channel")
    if (channel or host_number) and count:
        t.fail("channel" if channel else "host", "not with count (one camera per channel/host)")
    if channel < 0 or host_number < 0:
        t.fail("channel" if channel < 0 else "host", "must be positive")
    if flags["http_redirect"] and not flags["https"]:
        t.fail("http_redirect", "needs https = true (there is nothing to redirect to)")
    t.done()
    ids = [base_id] if count == 0 else [f"{base_id}-{n}" for n in range(1, count + 1)]
    return [
        CameraSpec(
            id=cam_id,
            persona=persona,
            ordinal=first + n,
            model=model,
            firmware=firmware,
            build_date=build_date,
            users=users,
            rtsp_users=rtsp_users,
            rtsp_auth=cast(RtspAuth, rtsp_auth),
            onvif_noauth_ops=noauth,
            clock_skew_s=skew,
            discoverable=discoverable,
            onvif_user_management=onvif_user_management,
            tls=tls,
            lockout=lockout,
            faults=faults,
            onvif_faults=onvif_faults,
            silent_ports=silent_ports,
            firmware_upgrade=upgrade or FirmwareUpgrade(),
            write_faults=write_faults,
            recorder=recorder,
            channel=channel,
            channel_offline=offline,
            host_number=host_number,
            poe=poe,
            **flags,
        )
        for n, cam_id in enumerate(ids)
    ]


def _seat(cameras: list[CameraSpec], source: str) -> list[CameraSpec]:
    """Channels given to the cameras on recorders (next free one, in order) and checked: the
    recorder exists and is one, no channel twice or beyond its capacity, no address slot twice."""
    by_id = {c.id: c for c in cameras}
    taken: dict[str, set[int]] = {}
    for cam in cameras:
        if cam.recorder is not None and cam.channel:
            taken.setdefault(cam.recorder, set())
            if cam.channel in taken[cam.recorder]:
                raise ConfigError(f"{source}: {cam.recorder} channel {cam.channel} twice")
            taken[cam.recorder].add(cam.channel)
    out = []
    for spec in cameras:
        cam = spec
        if cam.recorder is not None:
            recorder = by_id.get(cam.recorder)
            if recorder is None or not recorder.persona.recorder:
                raise ConfigError(f"{source}: {cam.id}: recorder {cam.recorder!r} is no recorder")
            used = taken.setdefault(cam.recorder, set())
            channel = cam.channel or next(n for n in range(1, len(used) + 2) if n not in used)
            used.add(channel)
            if channel > recorder.persona.channels:
                raise ConfigError(
                    f"{source}: {cam.id}: {cam.recorder} has {recorder.persona.channels} channels"
                )
            cam = replace(cam, channel=channel)
        out.append(cam)
    slots = [c.slot for c in out]
    twice = sorted({c.id for c in out if slots.count(c.slot) > 1})
    if twice:
        raise ConfigError(f"{source}: cameras share a lab address (host): {', '.join(twice)}")
    return out


def _user(t: _Table) -> User:
    user = User(
        t.get("name", str), t.get("password", str), cast(Role, t.choice("role", ROLES, "admin"))
    )
    t.done()
    return user


def _tls(t: _Table, key_groups: dict[str, tuple[bool, str]], camera_id: str) -> TlsSpec:
    """``key_groups``: shared key group -> (weak_key, first camera id), to keep one key type."""
    versions = tuple(t.get("versions", list, ["TLSv1.2", "TLSv1.3"]))
    for v in versions:
        if v not in get_args(TlsVersion):
            t.fail("versions", f"unknown TLS version {v!r}")
    group = t.get("shared_key_group", str, "")
    spec = TlsSpec(
        self_signed=t.get("self_signed", bool, True),
        expired=t.get("expired", bool, False),
        weak_key=t.get("weak_key", bool, False),
        versions=cast(tuple[TlsVersion, ...], versions),
        shared_key_group=group or None,
    )
    if group:
        weak, first = key_groups.setdefault(group, (spec.weak_key, camera_id))
        if weak != spec.weak_key:
            t.fail(
                "shared_key_group",
                f"cameras sharing key {group!r} must agree on weak_key: {first!r} has "
                f"weak_key = {str(weak).lower()}, {camera_id!r} has {str(spec.weak_key).lower()}",
            )
    t.done()
    return spec


def _lockout(t: _Table) -> Lockout:
    spec = Lockout(
        t.get("threshold", int, 5), t.get("window_s", float, 30.0), t.get("lock_s", float, 300.0)
    )
    t.done()
    return spec


def _faults(t: _Table, *, operation: bool = False) -> Faults:
    """``[faults]`` of a camera, or (``operation``) one ONVIF operation's, which may also name
    a SOAP fault subcode to answer with (e.g. ``ter:ActionNotSupported``)."""
    garbage = t.choice("garbage", ("", *get_args(Garbage)), "")
    spec = Faults(
        hang=t.get("hang", bool, False),
        slow_ms=t.get("slow_ms", int, 0),
        drop=t.get("drop", bool, False),
        garbage=cast(Garbage, garbage) if garbage else None,
        soap_fault=(t.get("soap_fault", str, "") or None) if operation else None,
    )
    t.done()
    return spec


def _upgrade(t: _Table) -> FirmwareUpgrade:
    spec = FirmwareUpgrade(
        reboot_s=t.get("reboot_s", float, 5.0),
        upload_delay_s=t.get("upload_delay_s", float, 0.0),
        fail_mid_upgrade=t.get("fail_mid_upgrade", bool, False),
        comes_back_old=t.get("comes_back_old", bool, False),
    )
    if spec.upload_delay_s < 0:
        t.fail("upload_delay_s", "must not be negative")
    t.done()
    return spec


def _router(t: _Table, ordinal: int, camera_ids: set[str]) -> RouterSpec:
    router_id = t.get("id", str)
    t.choice("persona", ("router",), "router")
    mappings = []
    for m in t.tables("port_mappings"):
        camera = m.get("camera", str)
        if camera not in camera_ids:
            m.fail("camera", f"no camera with id {camera!r}")
        mappings.append(
            PortMapping(m.get("external_port", int), camera, m.get("internal_port", int))
        )
        m.done()
    spec = RouterSpec(
        router_id, ordinal, t.get("external_ip", str, "203.0.113.10"), tuple(mappings)
    )
    t.done()
    return spec


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    lines: dict[str, int]  # dotted key -> line (``protocol.configfile.parse_toml``)


class _Table:
    """A TOML table being consumed: typed getters, and unknown keys reported at ``done()``.
    ``path`` names it in messages (``camera[0].``), ``dotted`` finds its lines (``camera.0.``)."""

    def __init__(self, raw: dict[str, Any], source: _Source, path: str, dotted: str) -> None:
        self.raw = raw
        self.source = source
        self.path = path
        self.dotted = dotted
        self.seen: set[str] = set()

    def fail(self, key: str, message: str) -> Any:
        line = nearest(f"{self.dotted}{key}", self.source.lines) or 0
        raise ConfigError(f"{self.source.name}:{line}: {self.path}{key}: {message}")

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        self.seen.add(key)
        if key not in self.raw:
            if default is None:
                return cast(T, self.fail(key, "required key is missing"))
            return default
        value = self.raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"expected {kind.__name__}, got {value!r}")
        return cast(T, value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in allowed:
            self.fail(key, f"{value!r} is not one of {', '.join(a for a in allowed if a)}")
        return value

    def parsed(self, key: str, parse: type[T], default: T) -> T:
        text = self.get(key, str, str(default))
        try:
            return parse(text)  # type: ignore[call-arg]
        except ValueError as exc:
            return cast(T, self.fail(key, str(exc)))

    def table(self, key: str) -> _Table:
        value = self.get(key, dict, {})
        return _Table(value, self.source, f"{self.path}{key}.", f"{self.dotted}{key}.")

    def tables(self, key: str) -> list[_Table]:
        items = self.get(key, list, [])
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                self.fail(key, f"entry {n + 1} is not a table")
            out.append(
                _Table(item, self.source, f"{self.path}{key}[{n}].", f"{self.dotted}{key}.{n}.")
            )
        return out

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            self.fail(unknown[0], "unknown key")
