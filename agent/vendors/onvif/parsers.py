"""Pure parsers: zeep response objects (as onvif-zeep-async returns them) -> models.

zeep objects allow attribute access; every field is read with ``getattr(..., None)`` because
``strict = False`` (onvif-zeep-async's setting) leaves missing elements as ``None``. A response
without the fields an answer cannot do without raises ``ValueError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.scope import own_url
from agent.vendors.models import (
    Account,
    DeviceIdentity,
    ServiceState,
    StreamInfo,
    TimeInfo,
    ntp_servers,
)
from agent.vendors.onvif.const import ROLES
from agent.vendors.versions import (
    UnparsableVersion,
    canonical_vendor,
    is_placeholder,
    parse_firmware,
)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_device_information(info: Any) -> DeviceIdentity:
    """GetDeviceInformation -> identity. Placeholder values are no vendor and no model: cheap
    firmware answers ``Manufacturer`` ``NONE``, ``ONVIF``, ``H264`` or nothing, and ``Model``
    ``IP Camera`` or ``IPC``; an answer with neither model nor firmware is no answer."""
    manufacturer = _str(getattr(info, "Manufacturer", None))
    model = _str(getattr(info, "Model", None))
    firmware = _str(getattr(info, "FirmwareVersion", None))
    if model is None and firmware is None:
        raise ValueError("GetDeviceInformation without Model or FirmwareVersion")
    vendor = canonical_vendor(manufacturer)
    build = None
    if firmware is not None:
        try:
            build = parse_firmware(vendor, firmware).build
        except UnparsableVersion:  # the string follows no scheme: no build date read from it
            build = None
    return DeviceIdentity(
        vendor=vendor,
        model=None if is_placeholder(model) else model,
        firmware=firmware,
        build_date=build,
        serial=_str(getattr(info, "SerialNumber", None)),
        hardware_id=_str(getattr(info, "HardwareId", None)),
        source="onvif",
    )


def camera_utc(system_date: Any) -> datetime | None:
    """``UTCDateTime`` of GetSystemDateAndTime (None when the camera leaves it out)."""
    utc = getattr(system_date, "UTCDateTime", None)
    if utc is None:
        return None
    d, t = getattr(utc, "Date", None), getattr(utc, "Time", None)
    if d is None or t is None:  # a garbled answer; ValueError becomes BadResponse at the edge
        raise ValueError("UTCDateTime without Date or Time")
    return datetime(
        int(d.Year), int(d.Month), int(d.Day), int(t.Hour), int(t.Minute), int(t.Second), tzinfo=UTC
    )


def parse_time(system_date: Any, ntp: Any | None) -> TimeInfo:
    kind = _str(getattr(system_date, "DateTimeType", None))
    servers: list[str | None] = []
    if ntp is not None:
        entries = [
            *(getattr(ntp, "NTPManual", None) or []),
            *(getattr(ntp, "NTPFromDHCP", None) or []),
        ]
        for entry in entries:
            servers.append(
                _str(getattr(entry, "DNSname", None))
                or _str(getattr(entry, "IPv4Address", None))
                or _str(getattr(entry, "IPv6Address", None))
            )
    return TimeInfo(
        camera_utc=camera_utc(system_date),
        ntp=None if kind is None else kind == "NTP",
        ntp_servers=ntp_servers(*servers),
    )


def parse_users(users: Any) -> tuple[Account, ...]:
    accounts = []
    for user in users or []:
        name = _str(getattr(user, "Username", None))
        if name is None:
            raise ValueError("GetUsers entry without Username")
        level = _str(getattr(user, "UserLevel", None))
        accounts.append(Account(name=name, role=ROLES.get(level or "", level)))
    return tuple(accounts)


def parse_services(discovery_mode: Any, dynamic_dns: Any) -> ServiceState:
    """SVC-07 and SVC-08 from GetDiscoveryMode and GetDynamicDNS (None: not asked or empty)."""
    mode = _str(discovery_mode)
    ddns_type = _str(getattr(dynamic_dns, "Type", None)) if dynamic_dns is not None else None
    return ServiceState(
        ddns=None if ddns_type is None else ddns_type != "NoUpdate",
        discoverable=None if mode is None else mode == "Discoverable",
    )


def parse_stream_uri(profile: Any, media_uri: Any) -> StreamInfo:
    uri = _str(getattr(media_uri, "Uri", None))
    if uri is None:
        raise ValueError("GetStreamUri without Uri")
    return StreamInfo(rtsp_uri=uri, profile=_str(getattr(profile, "Name", None)))


def profile_tokens(profiles: Any) -> list[tuple[Any, str]]:
    """(profile, token) of each media profile, in the camera's order."""
    out = []
    for profile in profiles or []:
        token = _str(getattr(profile, "token", None))
        if token is None:
            raise ValueError("GetProfiles entry without token")
        out.append((profile, token))
    return out


def user_level(users: Any, username: str) -> str:
    """The ``UserLevel`` of ``username`` in a GetUsers answer (SetUser must repeat it)."""
    for user in users or []:
        if _str(getattr(user, "Username", None)) == username:
            return _str(getattr(user, "UserLevel", None)) or "User"
    raise LookupError(f"no account {username!r} on the camera")


def upload_uri(answer: Any, address: str) -> str:
    """The ``UploadUri`` of StartFirmwareUpgrade, refused unless it is on the camera itself
    (an image is never sent anywhere else)."""
    uri = _str(getattr(answer, "UploadUri", None))
    if uri is None:
        raise ValueError("StartFirmwareUpgrade names no UploadUri")
    return own_url(uri, address, "UploadUri")


MAX_UPLOAD_DELAY_S = 300.0


def upload_delay(answer: Any) -> float:
    """Seconds to wait between StartFirmwareUpgrade and the upload: its ``UploadDelay`` (ONVIF
    Core: the client waits that long if the device names one), 0 if absent. ``ValueError`` for a
    delay in months or years or longer than ``MAX_UPLOAD_DELAY_S``."""
    value = getattr(answer, "UploadDelay", None)
    if value is None:
        return 0.0
    if not isinstance(value, timedelta):
        raise ValueError("UploadDelay is not a duration in days, hours, minutes or seconds")
    seconds = value.total_seconds()
    if seconds > MAX_UPLOAD_DELAY_S:
        limit = f"{MAX_UPLOAD_DELAY_S:.0f} s"
        raise ValueError(f"UploadDelay of {seconds:.0f} s is longer than {limit}")
    return max(seconds, 0.0)


def network_fingerprint(interfaces: Any, protocols: Any) -> tuple[str, ...]:
    """Interfaces (token, MAC, IPv4 manual addresses and DHCP) and enabled protocol ports,
    as sorted text lines: equal before and after a firmware update, or something changed."""
    lines = []
    for item in interfaces or []:
        info = getattr(item, "Info", None)
        ipv4 = getattr(item, "IPv4", None)
        config = getattr(ipv4, "Config", None)
        manual = [
            f"{_str(getattr(a, 'Address', None))}/{_str(getattr(a, 'PrefixLength', None))}"
            for a in (getattr(config, "Manual", None) or [])
        ]
        lines.append(
            f"if {_str(getattr(item, 'token', None))} mac={_str(getattr(info, 'HwAddress', None))}"
            f" ipv4={','.join(manual)} dhcp={_str(getattr(config, 'DHCP', None))}"
        )
    for proto in protocols or []:
        ports = ",".join(str(p) for p in (getattr(proto, "Port", None) or []))
        lines.append(
            f"proto {_str(getattr(proto, 'Name', None))}"
            f" on={_str(getattr(proto, 'Enabled', None))} ports={ports}"
        )
    return tuple(sorted(lines))
