"""Vendor-neutral data the adapters return and the checks consume.

Every type is a frozen, slotted dataclass: an adapter builds it once from a parsed vendor response
and nothing downstream can change it. ``None`` always means "the camera did not tell us", never
"off" or "zero"; checks turn unknowns into ``inconclusive`` findings, not passes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from protocol.remediation import ONVIF_SETTINGS, VENDOR_SETTINGS


class Capability(enum.Enum):
    """What an adapter can do for a check. A check declares the capabilities it requires."""

    IDENTITY = "identity"
    ACCOUNTS = "accounts"
    SERVICES = "services"
    LOCKOUT_POLICY = "lockout_policy"
    TIME = "time"
    STREAMS = "streams"
    LOGIN = "login"  # try_login(): one authentication attempt, for default-credential checks
    FIRMWARE_UPGRADE = "firmware_upgrade"
    SET_PASSWORD = "set_password"  # noqa: S105 (a capability name, not a password)
    NETWORK = "network"  # network_settings(): what a firmware update must not change
    SETTINGS = "settings"  # read_settings() / write_settings(): remediation of ``Setting``s
    CHANNELS = "channels"  # channels(): a recorder's IP channels and the cameras on them


class Interface(enum.Enum):
    """A way into the camera on which credentials can be tried (baseline AUTH-01)."""

    HTTP = "http"  # web / ISAPI / CGI / VAPIX, digest against a protected URL
    HTTPS = "https"  # the same APIs over TLS (hardened cameras turn plain HTTP off, COM-01)
    RTSP = "rtsp"  # DESCRIBE with digest
    ONVIF = "onvif"  # GetDeviceInformation with WS-UsernameToken
    SDK = "sdk"  # vendor binary SDK port (Hikvision 8000, Dahua 37777)


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and password resolved from the agent's vault. The password is never printed."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Landing:
    """What a camera's plain HTTP answered at a URL to a request without credentials
    (``agent.vendors.http.landing``)."""

    https_only: bool  # it redirects to https://, or is closed while HTTPS takes connections
    server: str = ""  # its ``Server`` header; "" when it sent none or plain HTTP did not answer


@dataclass(frozen=True, slots=True)
class Target:
    """A camera to audit, as the inventory knows it.

    ``ports`` maps each interface to the TCP port it answers on; ``credential_ref`` names the vault
    entry holding the agent's credential for this camera (the secret itself is not kept here).
    """

    camera_id: str
    address: str
    ports: Mapping[Interface, int] = field(default_factory=dict)
    credential_ref: str | None = None
    vendor_hint: str | None = None  # from discovery (WS-Discovery scopes, HTTP banner), unverified


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    build_date: date | None = None
    serial: str | None = None
    hardware_id: str | None = None
    mac: str | None = None
    source: str | None = None  # which adapter / method identified the camera


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str | None = None  # vendor role mapped to "administrator", "operator", "user", ...


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Optional services a camera may run; ``None`` = unknown (not reported by the vendor API)."""

    telnet: bool | None = None
    ssh: bool | None = None
    upnp: bool | None = None
    p2p: bool | None = None
    ddns: bool | None = None
    snmp: bool | None = None
    ftp: bool | None = None
    discoverable: bool | None = None  # answers WS-Discovery probes (SVC-08)
    rtsp_digest_only: bool | None = None  # RTSP refuses Basic authentication (AUTH-09)
    rtsp_auth: bool | None = None  # RTSP asks for credentials before any stream (AUTH-08)
    onvif_auth: bool | None = None  # ONVIF asks every caller for credentials (AUTH-10)
    http_digest_only: bool | None = None  # the web/API refuses Basic authentication (AUTH-07)
    # the v1/v2c read community: read for a remediation's snapshot only, never in evidence
    snmp_community: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Brute-force lockout as configured on the camera (AUTH-05); read, never probed."""

    enabled: bool | None = None
    threshold: int | None = None  # failed attempts that trigger the lock
    window_s: float | None = None  # period in which the failures are counted
    lock_s: float | None = None  # how long the lock lasts


# NTP server values that name no server: firmware writes them where none is configured.
_NO_SERVER = frozenset({"", "0.0.0.0", "::", "0:0:0:0:0:0:0:0", "none"})  # noqa: S104


def ntp_servers(*names: str | None) -> tuple[str, ...]:
    """The configured NTP servers among ``names``: placeholders (``0.0.0.0``, empty) dropped."""
    found = []
    for name in names:
        text = (name or "").strip()
        if text.lower() not in _NO_SERVER and text not in found:
            found.append(text)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class TimeInfo:
    camera_utc: datetime | None = None
    ntp: bool | None = None  # True: NTP, False: set manually
    ntp_servers: tuple[str, ...] = ()
    zone: str | None = None  # the camera's time zone (IANA name) when its API tells


@dataclass(frozen=True, slots=True)
class StreamInfo:
    rtsp_uri: str
    profile: str | None = None


class Setting(enum.Enum):
    """A camera setting a remediation may change (baseline SVC-02..08, LOG-01 time source);
    the values are names of ``protocol.commands.SETTINGS``."""

    TELNET = "telnet"
    SSH = "ssh"
    FTP = "ftp"  # the camera's own FTP server (COM-06)
    UPNP = "upnp"
    P2P = "p2p"
    DDNS = "ddns"
    NTP = "ntp"  # True: the clock follows NTP; False: set by hand
    NTP_SERVER = "ntp_server"  # the first NTP server (host name or address)
    DISCOVERABLE = "discoverable"  # answers WS-Discovery probes (SVC-08)
    SNMP = "snmp"  # the SNMP v1/v2c agent runs (COM-05)
    SNMP_COMMUNITY = "snmp_community"  # its read community (a secret: never in a result)
    TIME_ZONE = "time_zone"  # an IANA name (LOG-01: local times in the right zone)
    RTSP_DIGEST_ONLY = "rtsp_digest_only"  # RTSP refuses Basic authentication (AUTH-09)
    RTSP_AUTH = "rtsp_auth"  # RTSP asks for credentials before any stream (AUTH-08)
    HTTP_DIGEST_ONLY = "http_digest_only"  # the web/API refuses Basic authentication (AUTH-07)
    ONVIF_AUTH = "onvif_auth"  # ONVIF asks every caller for credentials (AUTH-10)


def vendor_settings(vendor: str) -> frozenset[Setting]:
    """The settings ``vendor``'s own API writes, as the contract lists them
    (``protocol.remediation.VENDOR_SETTINGS``; ``"onvif"``: any camera's ONVIF service)."""
    names = ONVIF_SETTINGS if vendor == "onvif" else VENDOR_SETTINGS[vendor]
    return frozenset(Setting(n) for n in names)


SettingValue = bool | str
TEXT_SETTINGS: frozenset[Setting] = frozenset(
    {Setting.NTP_SERVER, Setting.SNMP_COMMUNITY, Setting.TIME_ZONE}
)
MAX_SETTING_TEXT = 255  # longest text value written (a host name)


@dataclass(frozen=True, slots=True)
class SettingValues:
    """Values of settings as the camera reported them; a setting left out was not reported."""

    values: Mapping[Setting, SettingValue] = field(default_factory=dict)

    @classmethod
    def of(cls, services: ServiceState | None, time: TimeInfo | None) -> SettingValues:
        """What the audit reads (services, time) as setting values; unknowns left out."""
        found: dict[Setting, SettingValue | None] = {}
        if services is not None:
            found.update(
                {
                    Setting.TELNET: services.telnet,
                    Setting.SSH: services.ssh,
                    Setting.FTP: services.ftp,
                    Setting.UPNP: services.upnp,
                    Setting.P2P: services.p2p,
                    Setting.DDNS: services.ddns,
                    Setting.DISCOVERABLE: services.discoverable,
                    Setting.SNMP: services.snmp,
                    Setting.SNMP_COMMUNITY: services.snmp_community,
                    Setting.RTSP_DIGEST_ONLY: services.rtsp_digest_only,
                    Setting.RTSP_AUTH: services.rtsp_auth,
                    Setting.HTTP_DIGEST_ONLY: services.http_digest_only,
                    Setting.ONVIF_AUTH: services.onvif_auth,
                }
            )
        if time is not None:
            found[Setting.NTP] = time.ntp
            found[Setting.NTP_SERVER] = time.ntp_servers[0] if time.ntp_servers else None
            found[Setting.TIME_ZONE] = time.zone
        return cls({k: v for k, v in found.items() if v is not None})


def check_setting(setting: Setting, value: SettingValue) -> None:
    """ValueError unless ``value`` can be written to ``setting`` (a flag; a bounded host name)."""
    if setting not in TEXT_SETTINGS:
        if not isinstance(value, bool):
            raise ValueError(f"{setting.value} takes true or false, not {value!r}")
        return
    valid = (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SETTING_TEXT
        and value.isprintable()
        and not any(c in value for c in " &=<>\"'#")
    )
    if not valid:
        raise ValueError(f"{setting.value}: {str(value)[:40]!r} is not a host name or address")


@dataclass(frozen=True, slots=True)
class RecorderChannel:
    """One IP channel of an NVR/DVR as the recorder lists it: the camera it logs in to and
    whether it reaches it. ``password_shown``: the recorder handed out the stored password of
    that camera in the answer (the password itself is never kept)."""

    number: int  # 1-based, as the recorder's interface shows it
    address: str | None
    port: int | None  # the port the recorder connects to (SDK/DVRIP, HTTP)
    protocol: str | None  # "HIKVISION", "Dahua", "ONVIF", ...
    username: str | None
    model: str | None = None
    serial: str | None = None
    mac: str | None = None
    firmware: str | None = None
    online: bool | None = None  # None: the recorder did not say
    password_shown: bool = False
    key: str = ""  # the recorder's own name of the channel (ISAPI id, Dahua RemoteDevice block)
