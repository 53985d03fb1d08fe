"""The agent's configuration: typed, frozen, loaded once and passed down.

Layers: ``/etc/camwarden/agent.toml`` (or ``--config PATH``) then ``agent.d/*.toml`` beside it,
in name order; later files win key by key. Every key is explained in
``configs/agent.example.toml``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from agent.vendors.models import Interface, Target
from protocol.configfile import ConfigError, layer_paths, load
from protocol.errors import BadParams
from protocol.survey import Network, parse_networks

DEFAULT_PATH = Path("/etc/camwarden/agent.toml")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class MqttConfig(_Section, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 1883
    # MQTT 5, or 3.1.1 for brokers without 5 (a NATS cluster's MQTT listener, docs/adr/0032)
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=65535)] = 60
    session_expiry_s: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 7 * 24 * 3600
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    reconnect_min_s: Annotated[int, msgspec.Meta(ge=1)] = 1
    reconnect_max_s: Annotated[int, msgspec.Meta(ge=1)] = 60
    ack_timeout_s: Seconds = 60.0
    ack_timeout_max_s: Seconds = 900.0
    # mutual TLS; empty paths: mqtt-ca.crt, mqtt.crt and mqtt.key in state_dir (enroll)
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


class Intervals(_Section, frozen=True, kw_only=True):
    heartbeat_s: Seconds = 60.0
    report_s: Seconds = 900.0
    liveness_s: Seconds = 60.0  # TCP reachability of every camera; a change is reported at once
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    camera_connect_timeout_s: Seconds = 2.0


class OutboxCaps(_Section, frozen=True, kw_only=True):
    max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
    max_messages: Annotated[int, msgspec.Meta(ge=2)] = 20_000


class Lockout(_Section, frozen=True, kw_only=True):
    threshold: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    window_s: Seconds = 30.0
    lock_s: Seconds = 300.0
    margin_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0


class AuditConfig(_Section, frozen=True, kw_only=True):
    enabled: bool = True
    interval_s: Seconds = 86400.0
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    tls_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    camera_timeout_s: Seconds = 1800.0
    worker_timeout_s: Seconds = 14400.0  # a scheduled audit's worker process is killed after it
    check_timeout_s: Seconds = 60.0
    guess_timeout_s: Seconds = 900.0
    request_timeout_s: Seconds = 10.0
    max_response_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 1024 * 1024
    guess_default_credentials: bool = True  # docs/adr/0018-default-credentials-on.md
    guess_budget: Annotated[int, msgspec.Meta(ge=1, le=100)] = 12
    assumed_lockout: Lockout = Lockout()
    approved_accounts: tuple[str, ...] = ()
    min_password_score: Annotated[int, msgspec.Meta(ge=0, le=4)] = 3
    host_expected_ports: tuple[Port, ...] = (22,)


class NetworkConfig(_Section, frozen=True, kw_only=True):
    camera_subnets: tuple[str, ...] = ()
    routers: tuple[str, ...] = ()
    allowed_ports: tuple[Port, ...] = ()
    port_offset: Annotated[int, msgspec.Meta(ge=0, le=60000)] = 0
    probe_timeout_s: Seconds = 5.0
    udp_window_s: Seconds = 1.0
    scan_concurrency: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    snmp_communities: tuple[str, ...] = ("public", "private")
    ws_discovery: bool = False
    ssdp: bool = False
    vendor_discovery: bool = False  # Hikvision SADP and Dahua DHDiscover
    sweep: bool = False
    multicast: bool = False
    sweep_timeout_s: Seconds = 1.0

    @property
    def subnets(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(net) for net in self.camera_subnets)


class CameraConfig(_Section, frozen=True, kw_only=True):
    id: Name
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    http_port: Port | None = None  # default 80 + [network] port_offset
    https_port: Port | None = None  # default 443 + [network] port_offset
    rtsp_port: Port | None = None  # default 554 + [network] port_offset
    vendor: str | None = None
    credentials_ref: str | None = None  # a name in the credential store, never a password
    approved_accounts: tuple[str, ...] | None = None  # None: [audit] approved_accounts
    guess_default_credentials: bool | None = None  # None: [audit] guess_default_credentials
    # the configured recorder (NVR/DVR) this camera is a channel of, and the channel (None: the
    # one the recorder lists at the camera's address); a password rotation updates its login
    recorder: Name | None = None
    channel: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    # a recorder's virtual host: the port of its channel 1 camera's web interface (channel n:
    # + n - 1); a channel camera outside the camera subnets is audited through it
    virtual_host_port: Port | None = None


class FirmwareConfig(_Section, frozen=True, kw_only=True):
    """``[firmware]``: limits of the update executor (see agent.firmware)."""

    max_image_bytes: Annotated[int, msgspec.Meta(ge=1)] = 512 * 1024 * 1024
    min_free_bytes: Annotated[int, msgspec.Meta(ge=0)] = 64 * 1024 * 1024  # kept free after it
    download_timeout_s: Seconds = 30.0  # per connect / read, not the whole download
    download_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3  # resumed each time
    upload_timeout_s: Seconds = 900.0
    reboot_timeout_s: Seconds = 600.0  # how long the camera may stay away after the upload
    poll_interval_s: Seconds = 5.0
    camera_timeout_s: Seconds = 10.0  # per camera call
    max_clock_skew_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0  # command issued_at


class RotationConfig(_Section, frozen=True, kw_only=True):
    """``[rotation]``: camera password rotation (see agent.commands.password_rotate)."""

    # RFC 7638 thumbprint of the organisation's X25519 escrow key: a password.rotate or
    # settings.apply command sealing to any other key is refused. Unset: any key whose
    # thumbprint is escrow_kid.
    escrow_kid: str | None = None
    escrow_jwk_file: str | None = None  # the organisation's public escrow JWK (scheduled runs)
    interval_days: Annotated[float, msgspec.Meta(gt=0)] | None = None  # scheduled; off if unset
    min_length: Annotated[int, msgspec.Meta(ge=12, le=128)] = 20
    hook: tuple[str, ...] = ()  # argv of a program given the new credential on stdin (JSON)
    hook_timeout_s: Seconds = 30.0
    # after a channel camera's password changed: how long its recorder may take to list the
    # channel online again with the new login, and how often it is asked
    recorder_wait_s: Seconds = 120.0
    recorder_poll_s: Seconds = 3.0


class AdvisoriesConfig(_Section, frozen=True, kw_only=True):
    """``[advisories]``: where the signed advisory feed comes from (agent.advisories.refresh)."""

    feed_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")] | None = None
    refresh_s: Seconds = 6 * 3600.0
    feed_keys_file: str | None = None  # the organisation's feed keys (JWK Set), beside the shipped


class SurveyConfig(_Section, frozen=True, kw_only=True):
    """``[survey]``: the provider survey (``agent.survey``, ``docs/adr/0034-isp-survey.md``).

    A signed survey command is refused unless every prefix it names lies inside
    ``allowed_prefixes`` (empty: every survey command is refused); its rates are lowered to the
    caps here; ``opt_out`` addresses are never surveyed, whatever a command says."""

    allowed_prefixes: tuple[str, ...] = ()
    opt_out: tuple[str, ...] = ()
    max_rate_pps: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 1000
    max_rate_cps: Annotated[int, msgspec.Meta(ge=1, le=2000)] = 200
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64  # hosts probed at once
    connect_timeout_s: Seconds = 2.0  # per connection and per read
    max_answer_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 64 * 1024
    udp_window_s: Seconds = 1.0  # how long an SSDP answer is waited for

    def __post_init__(self) -> None:
        self.allowed()  # a prefix that does not parse is a config error, named at load
        self.opted_out()

    def allowed(self) -> tuple[Network, ...]:
        return _networks(self.allowed_prefixes, "allowed_prefixes")

    def opted_out(self) -> tuple[Network, ...]:
        return _networks(self.opt_out, "opt_out")


def _networks(items: tuple[str, ...], name: str) -> tuple[Network, ...]:
    try:
        return parse_networks(",".join(items), f"survey.{name}")
    except BadParams as exc:
        raise ValueError(exc.detail) from None


class AgentConfig(_Section, frozen=True, kw_only=True):
    agent_id: Name
    site: Name
    key_file: str = "/var/lib/camwarden/agent.key"
    state_dir: str = "/var/lib/camwarden"
    collector_url: str | None = None
    collector_key_file: str | None = None  # the collector's public JWK; default: enrollment.json
    collector_ca_file: str | None = None  # the CA the collector's HTTPS is checked with
    vault_key_file: str | None = None  # when no systemd credential vault.key is given
    mqtt: MqttConfig = MqttConfig()
    intervals: Intervals = Intervals()
    outbox: OutboxCaps = OutboxCaps()
    audit: AuditConfig = AuditConfig()
    network: NetworkConfig = NetworkConfig()
    cameras: tuple[CameraConfig, ...] = ()
    firmware: FirmwareConfig = FirmwareConfig()
    rotation: RotationConfig = RotationConfig()
    advisories: AdvisoriesConfig = AdvisoriesConfig()
    survey: SurveyConfig = SurveyConfig()

    @property
    def feed_url(self) -> str | None:
        """``[advisories] feed_url``, else the collector's ``/advisories/feed``; None without
        either (the shipped feed only)."""
        if self.advisories.feed_url:
            return self.advisories.feed_url
        if self.collector_url:
            return f"{self.collector_url.rstrip('/')}/advisories/feed"
        return None

    @property
    def key_path(self) -> Path:
        return Path(self.key_file)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def collector_key_path(self) -> Path | None:
        return Path(self.collector_key_file) if self.collector_key_file else None

    @property
    def vault_key_path(self) -> Path | None:
        return Path(self.vault_key_file) if self.vault_key_file else None

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.id == camera_id), None)

    def http_port(self, camera: CameraConfig) -> int:
        return camera.http_port or 80 + self.network.port_offset

    def target(self, camera: CameraConfig) -> Target:
        """How adapters and probes reach ``camera``: standard ports shifted by ``port_offset``
        unless the camera sets its own (ONVIF answers on the HTTP port)."""
        offset = self.network.port_offset
        http = self.http_port(camera)
        return Target(
            camera_id=camera.id,
            address=camera.address,
            ports={
                Interface.HTTP: http,
                Interface.ONVIF: http,
                Interface.HTTPS: camera.https_port or 443 + offset,
                Interface.RTSP: camera.rtsp_port or 554 + offset,
            },
            credential_ref=camera.credentials_ref,
            vendor_hint=camera.vendor,
        )

    @property
    def mqtt_tls(self) -> TlsFiles | None:
        """The broker CA, this agent's certificate and key; None without ``[mqtt] tls``."""
        if not self.mqtt.tls:
            return None
        state = self.state_path
        return TlsFiles(
            ca=Path(self.mqtt.ca_file or state / "mqtt-ca.crt"),
            cert=Path(self.mqtt.cert_file or state / "mqtt.crt"),
            key=Path(self.mqtt.key_file or state / "mqtt.key"),
        )


def load_config(path: Path | None = None) -> AgentConfig:
    """Load ``path`` (default ``/etc/camwarden/agent.toml``) plus its ``.d`` drop-ins."""
    main = path or DEFAULT_PATH
    if path is not None and not path.exists():
        raise ConfigError(f"{path}: no such config file")
    paths = layer_paths(main)
    if not paths:
        raise ConfigError(f"{main}: no config file (and no {main.stem}.d/*.toml drop-ins)")
    config = load(AgentConfig, paths)
    ids = [camera.id for camera in config.cameras]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{main}: cameras: duplicate camera id")
    for camera in config.cameras:
        if camera.recorder is not None and camera.recorder not in set(ids) - {camera.id}:
            raise ConfigError(
                f"{main}: cameras: {camera.id}: recorder {camera.recorder!r} is no other camera"
            )
        if camera.channel is not None and camera.recorder is None:
            raise ConfigError(f"{main}: cameras: {camera.id}: a channel needs its recorder")
    try:
        config.network.subnets  # noqa: B018  # validated once here, used later
    except ValueError as exc:
        raise ConfigError(f"{main}: network.camera_subnets: {exc}") from exc
    return config
