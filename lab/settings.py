"""The settings a camera lets a client change (services, cloud, time, SNMP v1/v2c and its
read community, the time zone, whether RTSP and the web refuse Basic), and how it misbehaves.

A persona's ``set_settings`` routes (``lab.persona``) map each setting to where the request
carries it; the camera keeps the values (``Camera.settings``) across reboots and every read
route answers from them. Real cameras do not always do what they are told, so a camera can be
seeded (``[write_faults]`` in its persona or in LAB.toml, or ``Camera.write_faults`` at run
time) to:

===========  ==================================================================================
ignore       answer "OK" to a write of these settings and keep the old value
clamp        answer "OK" and store the given value instead of the one asked for
fail_after   apply this many more setting writes, then refuse the next one (once): a change
             of several settings stops half-way with the first ones applied
===========  ==================================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BOOL_SETTINGS",
    "LEAVES",
    "SETTING_NAMES",
    "SettingName",
    "SettingValue",
    "WriteFaults",
    "WriteOutcome",
    "dahua_zone",
    "parse_value",
    "parse_write_faults",
    "posix_zone",
    "setting_name",
]

SettingName = Literal[
    "telnet",
    "ssh",
    "upnp",
    "p2p",
    "ddns",
    "ntp",
    "ntp_server",
    "discoverable",
    "snmp",
    "snmp_community",
    "time_zone",
    "rtsp_digest_only",
    "rtsp_auth",
    "onvif_auth",
    "http_digest_only",
]
SettingValue = bool | str
SETTING_NAMES: Final[tuple[SettingName, ...]] = get_args(SettingName)
BOOL_SETTINGS: Final = frozenset(
    {
        "telnet",
        "ssh",
        "upnp",
        "p2p",
        "ddns",
        "ntp",
        "discoverable",
        "snmp",
        "rtsp_digest_only",
        "http_digest_only",
        "onvif_auth",
        "rtsp_auth",
    }
)
MAX_TEXT: Final = 255  # longest text value a camera stores (a host name)
_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})
# the time source as vendors name it too (Hikvision timeMode, Axis Time.SyncSource); RTSP
# and web authentication as Hikvision names them (RTSPCertificate and webCertificate
# certificateType: "digest" refuses Basic) and Axis (Network.HTTP.AuthenticationPolicy, one
# for both: "basic_digest" takes Basic too); RTSP viewers as Dahua (RTSP.AuthType) and Axis
# (Network.RTSP.ProtViewer: "password" or "anonymous") name them
_WORDS: Final = {
    "ntp": (_TRUE | {"ntp"}, _FALSE | {"manual", "none"}),
    # Hikvision RTSPCertificate ("digest/basic"); Dahua RTSP.AuthType ("basic"); Axis
    # AuthenticationPolicy ("basic_digest")
    "rtsp_digest_only": (_TRUE | {"digest"}, _FALSE | {"digest/basic", "basic", "basic_digest"}),
    "http_digest_only": (_TRUE | {"digest"}, _FALSE | {"digest/basic", "basic_digest"}),
    "rtsp_auth": (_TRUE | {"digest", "basic", "password"}, _FALSE | {"disable", "anonymous"}),
}


# Words that change another setting sharing the key and leave this one as it is: Dahua's
# RTSP.AuthType=disable turns RTSP logins off (rtsp_auth), the scheme kept for when they return.
LEAVES: Final[dict[SettingName, frozenset[str]]] = {"rtsp_digest_only": frozenset({"disable"})}


# Hikvision's timeZone: a POSIX name and offset west of UTC, "CST-7:00:00" being UTC+7 (the
# name is not kept). The lab keeps whole hours only, as the IANA fixed-offset zone.
_POSIX_ZONE: Final = re.compile(r"[A-Za-z]{3,6}([+-]?)([0-9]{1,2}):00(?::00)?")


# Dahua's NTP.TimeZone: an index into a table of offsets, in minutes east of UTC (Dahua NetSDK's
# EM_CFG_TIME_ZONE_TYPE, 0 "GMT+00:00" ... 32 "GMT-12:00"; its Java binding in
# github.com/brucejiao/NFCProject, app/src/main/java/com/company/NetSDK/EM_CFG_TIME_ZONE_TYPE.java).
# The lab keeps the whole-hour ones only; a half-hour index is refused.
_DAHUA_ZONES: Final = (
    0, 60, 120, 180, 210, 240, 270, 300, 330, 345, 360, 390, 420, 480, 540, 570, 600, 660,
    720, 780, -60, -120, -180, -210, -240, -300, -360, -420, -480, -540, -600, -660, -720,
)  # fmt: skip


def _fixed_zone(minutes: int) -> str | None:
    hours, rest = divmod(minutes, 60)
    if rest:
        return None
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def parse_value(name: SettingName, raw: str) -> SettingValue | None:
    """``raw`` as the value of ``name`` (vendor spellings of booleans and time zones), or
    None if invalid."""
    if name in BOOL_SETTINGS:
        word = raw.strip().lower()
        on, off = _WORDS.get(name, (_TRUE, _FALSE))
        return True if word in on else False if word in off else None
    text = raw.strip()
    if name == "time_zone" and text.isdigit():  # Dahua's NTP.TimeZone index
        index = int(text)
        return _fixed_zone(_DAHUA_ZONES[index]) if index < len(_DAHUA_ZONES) else None
    if name == "time_zone" and ":" in text:
        match = _POSIX_ZONE.fullmatch(text)
        if match is None or int(match[2]) > 14:
            return None
        west = int(match[2]) * (-1 if match[1] == "-" else 1)
        return "UTC" if west == 0 else f"Etc/GMT{west:+d}"
    valid = len(text) <= MAX_TEXT and text.isprintable() and " " not in text
    if valid and name == "time_zone":  # an IANA name (AXIS OS): one the camera knows
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return text if valid else None


@dataclass(frozen=True, slots=True)
class WriteFaults:
    """How a camera mishandles setting writes (see the module's table)."""

    ignore: frozenset[SettingName] = frozenset()
    clamp: dict[SettingName, SettingValue] = field(default_factory=dict)
    fail_after: int | None = None


WriteOutcome = Literal["applied", "refused"]


def setting_name(name: object) -> SettingName:
    """``name`` as a setting name; ValueError naming the known ones."""
    if name not in SETTING_NAMES:
        raise ValueError(f"unknown setting {name!r}; known: {', '.join(SETTING_NAMES)}")
    return name


def parse_write_faults(raw: dict[str, Any]) -> WriteFaults:
    """A ``[write_faults]`` table (``ignore``, ``clamp``, ``fail_after``); ValueError if bad."""
    unknown = sorted(set(raw) - {"ignore", "clamp", "fail_after"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    ignore = raw.get("ignore", [])
    clamp = raw.get("clamp", {})
    fail_after = raw.get("fail_after")
    if not isinstance(ignore, list) or not isinstance(clamp, dict):
        raise ValueError("ignore is a list of setting names, clamp a table of them")
    if fail_after is not None and (type(fail_after) is not int or fail_after < 0):
        raise ValueError(f"fail_after: expected a count >= 0, got {fail_after!r}")
    clamped: dict[SettingName, SettingValue] = {}
    for key, value in clamp.items():
        name = setting_name(key)
        parsed = parse_value(name, str(value).lower() if type(value) is bool else str(value))
        if parsed is None or type(value) is not type(parsed):
            raise ValueError(f"clamp.{key}: {value!r} is not a value of this setting")
        clamped[name] = parsed
    return WriteFaults(frozenset(setting_name(n) for n in ignore), clamped, fail_after)


def posix_zone(name: str, when: datetime) -> str:
    """IANA zone ``name`` as Hikvision spells it, its offset at ``when`` ("CST-7:00:00")."""
    offset = datetime.fromtimestamp(when.timestamp(), ZoneInfo(name)).utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes > 0 else "+"
    return f"CST{sign}{abs(minutes) // 60}:{abs(minutes) % 60:02d}:00"


def dahua_zone(name: str, when: datetime) -> str:
    """IANA zone ``name`` as Dahua's NTP.TimeZone index, its offset at ``when``; "0" (UTC) for
    an offset the table lacks (a zone never written through Dahua's API)."""
    offset = datetime.fromtimestamp(when.timestamp(), ZoneInfo(name)).utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    return str(_DAHUA_ZONES.index(minutes)) if minutes in _DAHUA_ZONES else "0"
