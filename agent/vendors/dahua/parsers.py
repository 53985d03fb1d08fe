"""Pure parsers for Dahua CGI ``key=value`` bodies.

Lines end in CRLF; keys are dotted paths (``table.NTP.Enable``, ``users[0].Name``); values run
to the end of the line and may be empty or contain ``=``. Anything else raises ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone

from agent.vendors.dahua.const import (
    ROLES,
    RTSP_BASIC,
    RTSP_DIGEST,
    RTSP_OFF,
    TIME_ZONES,
    VENDOR,
)
from agent.vendors.models import Account, DeviceIdentity, RecorderChannel, TimeInfo, ntp_servers
from agent.vendors.versions import is_placeholder
from agent.vendors.zones import fixed_offset, offset_zone

_VERSION = re.compile(
    r"(?P<version>[^,]+?)\s*,\s*build(?:\s*date)?\s*:\s*(?P<build>\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)
_USER = re.compile(r"users\[(\d+)\]\.(\w+)")
_STATE = re.compile(r"states\[(\d+)\]\.(\w+)")
_BLOCK_NUMBER = re.compile(r"_(\d+)$")


def parse_kv(body: bytes) -> dict[str, str]:
    """``key=value`` lines -> dict; a line without ``=`` is a broken body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # a machine name typed in a local code page on old firmware
        text = body.decode("iso-8859-1")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Dahua CGI line is not key=value: {line[:64]!r}")
        pairs[key.strip()] = value.strip()
    if not pairs:
        raise ValueError("empty Dahua CGI body")
    return pairs


def _one(body: bytes, key: str) -> str:
    pairs = parse_kv(body)
    if key not in pairs:
        raise ValueError(f"Dahua CGI body without {key!r}")
    return pairs[key]


def parse_software_version(body: bytes) -> tuple[str, date | None]:
    """``version=2.800.0000000.25.R,build:2022-09-20`` -> (version, build date).

    Amcrest 2.420 firmware answers the date on a line of its own
    (``version=2.420.AC00.15.R`` CRLF ``BuildDate=2016-09-08``); some builds give none.
    """
    pairs = parse_kv(body)
    if "version" not in pairs:
        raise ValueError("Dahua CGI body without 'version'")
    value = pairs["version"]
    separate = pairs.get("BuildDate")
    match = _VERSION.fullmatch(value)
    if match is not None:
        return match["version"], date.fromisoformat(match["build"])
    try:
        return value, date.fromisoformat(separate) if separate else None
    except ValueError:
        return value, None


def parse_model(type_body: bytes, system_body: bytes) -> str | None:
    """``getDeviceType``'s type, unless it is a placeholder: some firmware answers
    ``type=IP Camera``, Lorex NVRs ``deviceType=31``; then ``getSystemInfo``'s ``deviceType``
    or ``updateSerial`` (the model the firmware was built for) names it."""
    system = parse_kv(system_body)
    candidates = (_one(type_body, "type"), system.get("deviceType"), system.get("updateSerial"))
    for candidate in candidates:
        if candidate and not is_placeholder(candidate) and not candidate.isdigit():
            return candidate
    return None


def parse_identity(
    version_body: bytes, type_body: bytes, serial_body: bytes | None, system_body: bytes
) -> DeviceIdentity:
    """Identity from getSoftwareVersion, getDeviceType, getSerialNo and getSystemInfo; without a
    getSerialNo answer (None) the serial is getSystemInfo's ``serialNumber``."""
    firmware, build = parse_software_version(version_body)
    system = parse_kv(system_body)
    serial = _one(serial_body, "sn") if serial_body is not None else system.get("serialNumber")
    return DeviceIdentity(
        vendor=VENDOR,
        model=parse_model(type_body, system_body),
        firmware=firmware,
        build_date=build,
        serial=serial or None,
        hardware_id=system.get("hardwareVersion") or None,
        source="dahua/cgi",
    )


def parse_users(body: bytes) -> tuple[Account, ...]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in parse_kv(body).items():
        match = _USER.fullmatch(key)
        if match is not None:
            rows.setdefault(int(match[1]), {})[match[2]] = value
    accounts = []
    for _index, row in sorted(rows.items()):
        if not row.get("Name"):
            raise ValueError("Dahua user without Name")
        group = row.get("Group", "").lower()
        accounts.append(Account(name=row["Name"], role=ROLES.get(group, group or None)))
    return tuple(accounts)


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ValueError(f"Dahua flag is {value!r}, not true/false")
    return value.lower() == "true"


def config_value_flag(pairs: Mapping[str, str], key: str) -> bool | None:
    """The flag at ``key`` ("table.UserGlobal.OnvifLoginCheck"); None when absent."""
    return _flag(pairs.get(key))


def rtsp_auth(auth_type: str | None) -> bool | None:
    """``RTSP.AuthType``: False for "disable" (streams without credentials), True for a login
    scheme ("digest", "basic"); None when absent or another word."""
    word = (auth_type or "").strip().lower()
    return False if word == RTSP_OFF else True if word in (RTSP_DIGEST, RTSP_BASIC) else None


def rtsp_digest_only(auth_type: str | None) -> bool | None:
    """``RTSP.AuthType``: True for "digest" (Basic refused), False for "basic"; None for
    "disable" (no login is asked at all, so no scheme is refused), absent or another word."""
    word = (auth_type or "").strip().lower()
    return True if word == RTSP_DIGEST else False if word == RTSP_BASIC else None


def rtsp_auth_type(auth: bool | None, digest_only: bool | None) -> str:
    """The ``RTSP.AuthType`` word for RTSP authentication and Digest only as asked (None: not
    asked): off is "disable"; on, or only Digest asked, "digest" unless Digest only is asked
    off ("basic"). Authentication turned on goes Digest only: the safer of the two."""
    if auth is False:
        return RTSP_OFF
    return RTSP_BASIC if digest_only is False else RTSP_DIGEST


def config_flag(pairs: Mapping[str, str], name: str) -> bool | None:
    """``table.<name>.Enable``; for list configs (``DDNS[0]``...) True if any entry is on."""
    single = pairs.get(f"table.{name}.Enable")
    if single is not None:
        return _flag(single)
    entries = [
        _flag(value)
        for key, value in pairs.items()
        if re.fullmatch(rf"table\.{re.escape(name)}\[\d+\]\.Enable", key)
    ]
    return any(entries) if entries else None


def zone_offset(index: str | None) -> int | None:
    """``NTP.TimeZone`` as minutes east of UTC (``TIME_ZONES``); None when absent or not an
    index of the table."""
    text = (index or "").strip()
    if not text.isdigit() or int(text) >= len(TIME_ZONES):
        return None
    return TIME_ZONES[int(text)]


def zone_name(index: str | None) -> str | None:
    """``NTP.TimeZone`` as the IANA name of its fixed offset ("12" is "Etc/GMT-7"); None when
    absent, unknown or not whole hours."""
    minutes = zone_offset(index)
    return None if minutes is None else offset_zone(minutes)


def zone_index(name: str) -> str:
    """The ``NTP.TimeZone`` index for IANA zone ``name``; ValueError for an unknown zone, one
    with summer time, or an offset the camera could not report back as a zone name (half
    hours: the table has them, but no fixed-offset IANA name reads them back)."""
    minutes = fixed_offset(name)
    if offset_zone(minutes) is None or minutes not in TIME_ZONES:
        raise ValueError(f"time zone {name!r}: the camera keeps no such whole-hour offset")
    return str(TIME_ZONES.index(minutes))


def parse_time(time_body: bytes, ntp_body: bytes | None) -> TimeInfo:
    """``result=YYYY-MM-DD HH:MM:SS`` plus the NTP config.

    getCurrentTime answers the wall clock of the camera's own zone without naming it (a
    DH-NVR608H set to index 25 "Easterntime" answers Eastern time, recorded in
    github.com/Key-Information-Solutions/DVRtool). It is read in the fixed offset of the NTP
    table's ``TimeZone`` index, and as UTC when the camera names none. Summer time
    (Locales.DSTEnable) is not read: a camera keeping it shows a one-hour skew in summer.
    """
    local = datetime.strptime(_one(time_body, "result"), "%Y-%m-%d %H:%M:%S")
    ntp = parse_kv(ntp_body) if ntp_body is not None else {}
    minutes = zone_offset(ntp.get("table.NTP.TimeZone"))
    offset = timezone(timedelta(minutes=minutes)) if minutes is not None else UTC
    return TimeInfo(
        camera_utc=local.replace(tzinfo=offset).astimezone(UTC),
        ntp=config_flag(ntp, "NTP") if ntp else None,
        ntp_servers=ntp_servers(ntp.get("table.NTP.Address")),
        zone=zone_name(ntp.get("table.NTP.TimeZone")),
    )


def parse_remote_devices(
    table: Mapping[str, str], states: Mapping[str, str] | None
) -> tuple[RecorderChannel, ...]:
    """A recorder's ``RemoteDevice`` table (``table.RemoteDevice.<uuid>.<Field>``): one IP
    camera per block, its channel the block's trailing number + 1 (``..._INFO_0``: channel 1)
    or else its position; ``online`` from ``getCameraState`` (``states[n].channel`` 0-based,
    ``connectionState`` Connected / Unconnect) when given. A non-empty ``Password`` is noted,
    never kept."""
    blocks: dict[str, dict[str, str]] = {}
    for key, value in table.items():
        parts = key.split(".", 3)
        if len(parts) == 4 and parts[:2] == ["table", "RemoteDevice"]:
            blocks.setdefault(parts[2], {})[parts[3]] = value
    rows: dict[int, dict[str, str]] = {}
    for key, value in (states or {}).items():
        match = _STATE.fullmatch(key)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value
    online = {
        int(row["channel"]): row.get("connectionState", "").lower() == "connected"
        for row in rows.values()
        if row.get("channel", "").isdigit()
    }
    out = []
    for position, (uuid, fields) in enumerate(blocks.items()):
        if fields.get("Enable", "true").lower() != "true":
            continue
        number = _BLOCK_NUMBER.search(uuid)
        index = int(number.group(1)) if number else position
        port = fields.get("Port", "")
        out.append(
            RecorderChannel(
                number=index + 1,
                address=fields.get("Address") or None,
                port=int(port) if port.isdigit() else None,
                protocol=fields.get("ProtocolType") or None,
                username=fields.get("UserName") or None,
                model=fields.get("DeviceType") or None,
                serial=fields.get("SerialNo") or None,
                mac=fields.get("Mac") or None,
                firmware=fields.get("Version") or None,
                online=online.get(index),
                password_shown=bool(fields.get("Password")),
                key=uuid,
            )
        )
    return tuple(sorted(out, key=lambda c: c.number))
