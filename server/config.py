"""The collector's configuration: frozen structs loaded with ``protocol.configfile``.

Layers: ``/etc/camwarden/server.toml``, then ``server.d/*.toml`` in name order, then
``--set key=value`` from the command line. Every key is explained in
``configs/server.example.toml``; limits have safe defaults.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from protocol import DEFAULT_MAX_BYTES, SHARE_GROUP, Freshness
from protocol.configfile import layer_paths, load
from protocol.messages import Name
from server.times import checked_zone

DEFAULT_PATH = Path("/etc/camwarden/server.toml")
DEFAULT_STATE_DIR = Path("/var/lib/camwarden")

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class DatabaseConfig(_Section, frozen=True, kw_only=True):
    url: str = ""  # empty: SQLite file ``collector.db`` under ``state_dir``


class MqttConfig(_Section, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 1883
    client_id: str = "camwarden-collector-1"
    share_group: Name = SHARE_GROUP  # a topic level, as agent ids and sites
    session_expiry_s: Annotated[int, msgspec.Meta(ge=0)] = 7 * 24 * 3600
    keepalive_s: Positive = 30
    # mutual TLS (packaging/mosquitto/camwarden.conf): the collector's certificate names it
    # camwarden-collector, which the broker ACL lets read every agent's status
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    # the broker's dynamic-security plugin (packaging/mosquitto): give each agent its role on
    # approval, remove it on revocation, and keep the plugin in line with the agents' status
    dynamic_security: bool = False


# a JetStream stream or consumer name: no ".", "*", ">" or spaces
StreamName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class BrokerConfig(_Section, frozen=True, kw_only=True):
    """Which broker the collector reads (docs/adr/0032). ``mosquitto``: any MQTT 5 broker, with
    ``[mqtt]``. ``nats``: a NATS cluster with JetStream; ``[mqtt]`` still gives the client name
    and the TLS files (the collector's certificate names it)."""

    kind: Literal["mosquitto", "nats"] = "mosquitto"
    servers: list[str] = msgspec.field(  # every node, nats:// or tls://
        default_factory=lambda: ["nats://127.0.0.1:4222"]
    )
    stream: StreamName = "CAMWARDEN"
    consumer: StreamName = "collectors"  # shared by every collector of the fleet
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    max_bytes: Positive = 1 << 30  # the stream's size cap; agents resend what it drops
    max_age_s: Positive = 7 * 24 * 3600
    # a message not acknowledged this long (a collector died mid-batch) goes to another one
    ack_wait_s: Positive = 30
    max_ack_pending: Positive = 20_000
    # the agents' users on every node: the authorization file the nodes include (empty: the
    # collector leaves it alone), and one command per node that makes it reread the file
    auth_file: str = ""
    reload_commands: list[list[str]] = []

    def __post_init__(self) -> None:
        if self.kind == "nats" and not self.servers:
            raise ValueError("broker: kind nats needs servers")
        for url in self.servers:
            if not url.startswith(("nats://", "tls://")):
                raise ValueError(f"broker: servers: {url!r} is no nats:// or tls:// URL")
        if any(not command for command in self.reload_commands):
            raise ValueError("broker: reload_commands: an empty command")


class HttpConfig(_Section, frozen=True, kw_only=True):
    bind: str = "127.0.0.1"
    port: Port = 8080
    # reverse proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed; from anyone else those headers are ignored (throttling keys on the peer address)
    trusted_proxies: list[str] = []
    # requests per source address and minute to the anonymous API (enroll, certificate
    # challenge and fetch, verify-report), with bursts of as many
    anonymous_per_minute: Positive = 30
    # HTTPS: the certificate chain and its key (PEM); both empty: plain HTTP (behind a proxy)
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("http: tls_cert_file and tls_key_file go together")
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is no address or network") from exc


class FreshnessConfig(_Section, frozen=True, kw_only=True):
    max_clock_skew_s: Seconds = 300.0
    max_age_s: Seconds = 30 * 24 * 3600.0

    def rules(self) -> Freshness:
        return Freshness(
            max_clock_skew=timedelta(seconds=self.max_clock_skew_s),
            max_age=timedelta(seconds=self.max_age_s),
        )


class IngestConfig(_Section, frozen=True, kw_only=True):
    max_message_bytes: Positive = DEFAULT_MAX_BYTES
    quarantine_size: Positive = 10_000
    quarantine_sample_bytes: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 256
    batch_size: Positive = 500
    batch_latency_s: Seconds = 0.2
    verify_threads: Positive = 2
    # /healthz answers 503 "ingest stalled" when messages wait and no batch committed for this long
    stall_after_s: Seconds = 60.0


class WebConfig(_Section, frozen=True, kw_only=True):
    """Dashboard and operator API. Sessions are server-side rows; the cookie holds a random id."""

    session_ttl_s: Positive = 8 * 3600
    cookie_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "cw_session"
    # session cookies are Secure when the request came over TLS (directly or from a trusted
    # proxy's X-Forwarded-Proto), and always when this is true
    cookie_secure: bool = False
    default_lang: Literal["vi", "en"] = "vi"
    # the zone pages, exports and alert e-mails show times in (an IANA name), unless a unit of
    # the organisation tree sets its own (inherited below it); CSV keeps ISO 8601 with the offset
    timezone: str = "Asia/Ho_Chi_Minh"
    silent_after_s: Positive = 900  # an agent unseen this long is shown as silent
    page_size: Annotated[int, msgspec.Meta(ge=10, le=500)] = 50
    # sign-in throttling (server.domain.throttle): after this many failures an account, or a source
    # address, is locked for login_lock_s, doubled with each further failure up to
    # login_lock_max_s; failures older than login_forget_s no longer count
    login_free_failures: Positive = 5
    login_source_free_failures: Positive = 20
    login_lock_s: Seconds = 30.0
    login_lock_max_s: Seconds = 900.0
    login_forget_s: Seconds = 3600.0

    def __post_init__(self) -> None:
        checked_zone(self.timezone)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SmtpConfig(_Section, frozen=True, kw_only=True):
    """The mail server alert e-mails go through (empty host: e-mail routes fail visibly)."""

    host: str = ""
    port: Port = 25
    starttls: bool = False
    ca_file: str = ""  # empty: the system's CA store (STARTTLS)
    username: str = ""
    password: str = ""
    sender: str = "camwarden@localhost"
    timeout_s: Seconds = 10.0


class AlertsConfig(_Section, frozen=True, kw_only=True):
    """The alert worker inside ``run``: new critical findings and silent agents, deduplicated."""

    enabled: bool = True
    interval_s: Seconds = 30.0
    silent_after_s: Positive = 900  # an approved agent unseen this long opens a silent episode
    max_attempts: Positive = 6
    backoff_s: Seconds = 30.0  # doubled after each failed attempt
    timeout_s: Seconds = 10.0  # per webhook request
    smtp: SmtpConfig = SmtpConfig()


class RetentionConfig(_Section, frozen=True, kw_only=True):
    """The pruning job for raw reports (docs/adr/0009-retention.md)."""

    enabled: bool = True
    interval_s: Seconds = 3600.0
    archive: bool = True  # write pruned JWS to archive files before deleting them
    archive_dir: str = ""  # empty: ``archive`` under ``state_dir``
    batch_size: Positive = 5000


class FirmwareConfig(_Section, frozen=True, kw_only=True):
    """Firmware distribution (TUF) and rollouts; see docs/adr/0010-firmware-distribution.md."""

    max_image_bytes: Positive = 512 * 1024 * 1024
    timestamp_expiry_s: Positive = 24 * 3600
    snapshot_expiry_s: Positive = 7 * 24 * 3600
    targets_expiry_s: Positive = 180 * 24 * 3600
    root_expiry_s: Positive = 365 * 24 * 3600
    command_ttl_s: Positive = 2 * 3600
    scheduler_interval_s: Seconds = 2.0
    # a sent command the agent has not answered is published again after this long (the agent
    # refuses a command it has seen without answering): a broker that lost it, or an agent
    # that was away from a broker that keeps no session for it (docs/adr/0032)
    resend_after_s: Seconds = 120.0


class PkiConfig(_Section, frozen=True, kw_only=True):
    """The broker CA (``server.pki``): ``ca.crt`` and ``ca.key`` in ``ca_dir``; agent
    certificates are issued from it when an agent is approved. Empty: none are issued."""

    ca_dir: str = ""


class AdvisoriesConfig(_Section, frozen=True, kw_only=True):
    """The advisory feed served to agents (``server.advisories``)."""

    # JWK Set of the organisation's feed keys (the agents pin the same): `advisories publish`
    # then checks a feed's signature too. Empty: only its size, shape and typ are checked.
    feed_keys_file: str = ""


class ServerConfig(_Section, frozen=True, kw_only=True):
    state_dir: str = str(DEFAULT_STATE_DIR)
    database: DatabaseConfig = DatabaseConfig()
    mqtt: MqttConfig = MqttConfig()
    broker: BrokerConfig = BrokerConfig()
    http: HttpConfig = HttpConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    ingest: IngestConfig = IngestConfig()
    web: WebConfig = WebConfig()
    alerts: AlertsConfig = AlertsConfig()
    retention: RetentionConfig = RetentionConfig()
    firmware: FirmwareConfig = FirmwareConfig()
    pki: PkiConfig = PkiConfig()
    advisories: AdvisoriesConfig = AdvisoriesConfig()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{Path(self.state_dir) / 'collector.db'}"

    @property
    def archive_dir(self) -> Path:
        return Path(self.retention.archive_dir or Path(self.state_dir) / "archive")


def load_config(
    path: Path = DEFAULT_PATH, overrides: Mapping[str, Any] | None = None
) -> ServerConfig:
    """``path`` (if it exists) and its ``server.d/*.toml`` drop-ins, then ``overrides``."""
    return load(ServerConfig, layer_paths(path), overrides)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["mqtt.port=1884"]`` into ``{"mqtt.port": 1884}``; values are TOML scalars or text."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        result[key.strip()] = value
    return result
