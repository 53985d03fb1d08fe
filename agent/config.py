"""The agent's configuration: typed, frozen, loaded once and passed down.

Layers: ``/etc/camwarden/agent.toml`` (or ``--config PATH``) then ``agent.d/*.toml`` beside it,
in name order; later files win key by key. Every key is explained in
``configs/agent.example.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec

from protocol.configfile import ConfigError, layer_paths, load

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
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    camera_connect_timeout_s: Seconds = 2.0


class OutboxCaps(_Section, frozen=True, kw_only=True):
    max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
    max_messages: Annotated[int, msgspec.Meta(ge=2)] = 20_000


class CameraConfig(_Section, frozen=True, kw_only=True):
    id: Name
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    http_port: Port = 80
    vendor: str | None = None
    credentials_ref: str | None = None  # a name in the credential store, never a password


class AgentConfig(_Section, frozen=True, kw_only=True):
    agent_id: Name
    site: Name
    key_file: str = "/var/lib/camwarden/agent.key"
    state_dir: str = "/var/lib/camwarden"
    collector_url: str | None = None
    collector_key_file: str | None = None  # the collector's public JWK; default: enrollment.json
    mqtt: MqttConfig = MqttConfig()
    intervals: Intervals = Intervals()
    outbox: OutboxCaps = OutboxCaps()
    cameras: tuple[CameraConfig, ...] = ()

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
    return config
