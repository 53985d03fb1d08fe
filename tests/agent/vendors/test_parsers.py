"""Parsers against responses recorded from the camera lab (``record_lab.py``): pure, no I/O."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import isodate
import onvif
import pytest
import zeep
from lxml import etree
from onvif.settings import DEFAULT_SETTINGS
from onvif.transport import ASYNC_TRANSPORT

from agent.vendors.axis import parsers as axis
from agent.vendors.base import Unsupported
from agent.vendors.dahua import parsers as dahua
from agent.vendors.hikvision import parsers as hik
from agent.vendors.models import Account, DeviceIdentity, LockoutPolicy, ServiceState, TimeInfo
from agent.vendors.onvif import const as onvif_const
from agent.vendors.onvif import parsers as onvif_parsers

RECORDED = Path(__file__).parent / "recorded"
_zeep: Any = zeep  # zeep is untyped


def rec(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


HIK_ID = DeviceIdentity(
    vendor="hikvision",
    model="DS-2CD2143G2-I",
    firmware="V5.7.3",
    build_date=date(2022, 11, 14),
    serial="DS-2CD2143G2-I20210628AAWR000000001",
    hardware_id="88",
    mac="44:19:b6:09:4f:c2",
    source="hikvision/isapi",
)
AXIS_ID = DeviceIdentity(
    vendor="axis",
    model="P3245-LVE",
    firmware="10.12.182",
    build_date=date(2022, 10, 25),
    serial="ACCC8E1AC90D",
    hardware_id="764",
    mac="ac:cc:8e:1a:c9:0d",
    source="axis/basicdeviceinfo.getAllProperties",
)

CASES: list[tuple[str, Callable[[], object], object]] = [
    ("hik deviceInfo", lambda: hik.parse_device_info(rec("hikvision/deviceInfo.xml")), HIK_ID),
    (
        "hik users",
        lambda: hik.parse_users(rec("hikvision/users.xml")),
        (
            Account("admin", "administrator"),
            Account("op", "operator"),
            Account("view", "user"),
            Account("system", "administrator"),
        ),
    ),
    ("hik activated", lambda: hik.parse_activated(rec("hikvision/activateStatus.xml")), True),
    (
        "hik not activated",
        lambda: hik.parse_activated(rec("hikvision/activateStatus-not-activated.xml")),
        False,
    ),
    ("hik telnetd", lambda: hik.parse_enabled(rec("hikvision/telnetd.xml"), "Telnetd"), False),
    ("hik ssh", lambda: hik.parse_enabled(rec("hikvision/ssh.xml"), "SSH"), True),
    ("hik upnp", lambda: hik.parse_enabled(rec("hikvision/upnp.xml"), "UPnP"), True),
    ("hik ezviz", lambda: hik.parse_enabled(rec("hikvision/ezviz.xml"), "EZVIZ"), True),
    (
        "hik illegalLoginLock",
        lambda: hik.parse_lockout(rec("hikvision/illegalLoginLock.xml")),
        LockoutPolicy(enabled=True, threshold=5, window_s=None, lock_s=600.0),
    ),
    ("hik plain 401 is no lock", lambda: hik.lock_signal(b"401 Unauthorized\n"), None),
    (
        "dahua identity",
        lambda: dahua.parse_identity(
            rec("dahua/getSoftwareVersion.txt"),
            rec("dahua/getDeviceType.txt"),
            rec("dahua/getSerialNo.txt"),
            rec("dahua/getSystemInfo.txt"),
        ),
        DeviceIdentity(
            vendor="dahua",
            model="IPC-HFW2431S-S-S2",
            firmware="2.800.0000000.25.R",
            build_date=date(2022, 9, 20),
            serial="6J0000003PAZ",
            hardware_id="1.00",
            source="dahua/cgi",
        ),
    ),
    (
        "dahua users",
        lambda: dahua.parse_users(rec("dahua/getUserInfoAll.txt")),
        (Account("admin", "administrator"), Account("view", "user")),
    ),
    *[
        (
            f"dahua {name}",
            (
                lambda name=name: dahua.config_flag(
                    dahua.parse_kv(rec(f"dahua/config-{name}.txt")), name
                )
            ),
            expected,
        )
        for name, expected in (
            ("UPnP", False),
            ("T2UServer", False),
            ("SSHD", False),
            ("DDNS", True),
        )
    ],
    (
        "dahua time",
        lambda: dahua.parse_time(rec("dahua/getCurrentTime.txt"), rec("dahua/config-NTP.txt")),
        TimeInfo(camera_utc=datetime(2026, 11, 22, 11, 14, 7, tzinfo=UTC), ntp=False),
    ),
    (
        "axis getAllProperties",
        lambda: axis.parse_basic_device_info(
            rec("axis/basicdeviceinfo-getAllProperties.json"), "getAllProperties"
        ),
        AXIS_ID,
    ),
    (
        "axis getAllUnrestrictedProperties",
        lambda: axis.parse_basic_device_info(
            rec("axis/basicdeviceinfo-getAllUnrestrictedProperties.json"),
            "getAllUnrestrictedProperties",
        ),
        dataclasses.replace(AXIS_ID, source="axis/basicdeviceinfo.getAllUnrestrictedProperties"),
    ),
    (
        "axis pwdgrp",
        lambda: axis.parse_pwdgrp(rec("axis/pwdgrp.txt")),
        (Account("root", "administrator"), Account("op", "operator"), Account("view", "user")),
    ),
    *[
        (
            f"axis {group}",
            (
                lambda group=group: axis.param_flag(
                    axis.parse_params(rec(f"axis/param-{group}.txt"), group), "Enabled"
                )
            ),
            expected,
        )
        for group, expected in (
            ("Network.SSH", True),
            ("Network.UPnP", False),
            ("RemoteService", True),
        )
    ],
    (
        "axis time",
        lambda: axis.parse_time(rec("axis/param-Time.txt")),
        TimeInfo(ntp=True, ntp_servers=("pool.ntp.org",)),
    ),
]


@pytest.mark.parametrize(("parse", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_vendor_parsers(parse: Callable[[], object], expected: object) -> None:
    assert parse() == expected


BROKEN: list[tuple[str, Callable[[], object]]] = [
    ("hik wrong root", lambda: hik.parse_device_info(rec("hikvision/users.xml"))),
    ("hik not xml", lambda: hik.parse_users(b"<html><body>login</body>")),
    ("hik truncated", lambda: hik.parse_users(rec("hikvision/users.xml")[:200])),
    (
        "hik DTD refused",
        lambda: hik.parse_activated(b'<!DOCTYPE x [<!ENTITY a "b">]><ActivateStatus/>'),
    ),
    ("dahua not key=value", lambda: dahua.parse_kv(b"<html>Error</html>\r\n")),
    ("dahua empty", lambda: dahua.parse_kv(b"\r\n")),
    ("dahua bad flag", lambda: dahua.config_flag({"table.SSHD.Enable": "maybe"}, "SSHD")),
    ("axis not json", lambda: axis.parse_basic_device_info(b"<html>", "getAllProperties")),
    (
        "axis error answer",
        lambda: axis.parse_basic_device_info(
            b'{"apiVersion": "1.3", "error": {"code": 2002}}', "getAllProperties"
        ),
    ),
    (
        "axis unknown group",
        lambda: axis.parse_params(b"# Error: Error -1 getting param in group 'X'\n", "X"),
    ),
    ("axis pwdgrp garbage", lambda: axis.parse_pwdgrp(b"<html>\n")),
    ("axis unknown auth policy", lambda: axis.parse_auth_policy({"AuthenticationPolicy": "ntlm"})),
    ("axis unknown viewer word", lambda: axis.parse_rtsp_viewer({"ProtViewer": "maybe"})),
]


@pytest.mark.parametrize("parse", [b[1] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_bodies_raise_value_error(parse: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # the base adapter maps it to BadResponse
        parse()


def test_hikvision_lock_signal() -> None:
    # Shape of the userCheck answer of DS-2CD2xx3G2 firmware 5.5+ (not served by the lab).
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><userCheck><statusValue>401</statusValue>'
        b"<statusString>Unauthorized</statusString><lockStatus>lock</lockStatus>"
        b"<unlockTime>1795</unlockTime><retryLoginTime>0</retryLoginTime></userCheck>"
    )
    assert hik.lock_signal(body) == "account locked, unlockTime=1795 s"
    assert hik.lock_signal(body.replace(b">lock<", b">unlock<")) is None


# -- ONVIF: recorded SOAP answers decoded by zeep exactly as onvif-zeep-async does ----------


@cache
def _binding(wsdl: str, binding: str) -> Any:
    path = Path(onvif.__file__).parent / "wsdl" / wsdl
    client = _zeep.Client(str(path), transport=ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)
    return client.wsdl.bindings[binding]


def soap(vendor: str, op: str, *, media: bool = False) -> Any:
    binding = (
        _binding(onvif_const.MEDIA_WSDL, onvif_const.MEDIA_BINDING)
        if media
        else _binding(onvif_const.DEVICE_WSDL, onvif_const.DEVICE_BINDING)
    )
    envelope = etree.fromstring(rec(f"onvif/{vendor}-{op}.xml"))
    return binding.get(op).process_reply(envelope)


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        ("hikvision", ("hikvision", "V5.7.3 build 221114", date(2022, 11, 14))),
        ("dahua", ("dahua", "2.800.0000000.25.R, build:2022-09-20", date(2022, 9, 20))),
        ("axis", ("axis", "10.12.182", None)),
        # IPCAM names the device class, not a brand (real no-name cameras answer it too)
        ("generic", (None, "V2.1.4 build 20220301", date(2022, 3, 1))),
    ],
)
def test_onvif_device_information(
    vendor: str, expected: tuple[str | None, str, date | None]
) -> None:
    identity = onvif_parsers.parse_device_information(soap(vendor, "GetDeviceInformation"))
    assert (identity.vendor, identity.firmware, identity.build_date) == expected
    assert identity.source == "onvif"
    assert identity.model


def test_onvif_users_time_services_streams() -> None:
    users = onvif_parsers.parse_users(soap("generic", "GetUsers"))
    assert users == (Account("admin", "administrator"),)
    clock = onvif_parsers.parse_time(
        soap("generic", "GetSystemDateAndTime"), soap("generic", "GetNTP")
    )
    assert clock == TimeInfo(
        camera_utc=datetime(2026, 11, 22, 11, 14, 7, tzinfo=UTC),
        ntp=True,
        ntp_servers=("pool.ntp.org",),
    )
    services = onvif_parsers.parse_services(
        soap("generic", "GetDiscoveryMode"), soap("generic", "GetDynamicDNS")
    )
    assert services == ServiceState(ddns=True, discoverable=True)
    hik_ddns = onvif_parsers.parse_services(None, soap("hikvision", "GetDynamicDNS"))
    assert hik_ddns.ddns is False
    profiles = onvif_parsers.profile_tokens(soap("generic", "GetProfiles", media=True))
    assert [token for _, token in profiles] == ["Profile_1", "Profile_2"]
    stream = onvif_parsers.parse_stream_uri(
        profiles[0][0], soap("generic", "GetStreamUri", media=True)
    )
    assert stream.profile == "Stream1"
    assert stream.rtsp_uri.endswith("/stream1")


def test_onvif_broken_answers() -> None:
    with pytest.raises(ValueError, match="Model or FirmwareVersion"):
        onvif_parsers.parse_device_information(None)
    with pytest.raises(ValueError, match="without Uri"):
        onvif_parsers.parse_stream_uri(None, None)


def test_onvif_upload_delay() -> None:
    """``UploadDelay`` as zeep gives it: a timedelta, or isodate's Duration with months."""

    def answer(duration: str | None) -> object:
        value = None if duration is None else isodate.parse_duration(duration)  # as zeep does
        return dataclasses.make_dataclass("Answer", [("UploadDelay", object)])(value)

    assert onvif_parsers.upload_delay(answer(None)) == 0.0
    assert onvif_parsers.upload_delay(answer("PT1.5S")) == 1.5
    assert onvif_parsers.upload_delay(answer("PT5M")) == 300.0
    with pytest.raises(ValueError, match="longer than 300 s"):
        onvif_parsers.upload_delay(answer("PT5M1S"))
    with pytest.raises(ValueError, match="not a duration in days"):
        onvif_parsers.upload_delay(answer("P1M"))


def test_bodies_in_iso_8859_1() -> None:
    """Axis 5.x-9.x firmware answers param.cgi in ISO-8859-1 without naming a charset
    (home-assistant/core#116223: an AXIS P5534's PTZ preset names broke a UTF-8 decode); old
    Dahua firmware does the same with a machine name. Bodies built after those reports."""
    axis_body = "root.PTZ.Preset.P0.Position.P1.Name=Entrée\n".encode("iso-8859-1")
    assert axis.parse_params(axis_body, "PTZ") == {"Preset.P0.Position.P1.Name": "Entrée"}
    dahua_body = "table.General.MachineName=Café\r\n".encode("iso-8859-1")
    assert dahua.parse_kv(dahua_body) == {"table.General.MachineName": "Café"}


@pytest.mark.parametrize(
    ("value", "expected"), [("oneclick", True), ("no", False), ("ON", True), ("0", False)]
)
def test_axis_flags_beyond_yes_no(value: str, expected: bool) -> None:
    assert axis.param_flag({"Enabled": value}, "Enabled") is expected


# AXIS OS 11.5+ factory setting, as the AXIS OS knowledge base ("Brute force delay protection")
# gives it: 20 failures in 1 s block the client for 10 s
AXIS_BRUTE_FORCE = b"""root.System.PreventDoSAttack.ActivatePasswordThrottling=On
root.System.PreventDoSAttack.DoSBlockingPeriod=10
root.System.PreventDoSAttack.DoSPageCount=20
root.System.PreventDoSAttack.DoSPageInterval=1
root.System.PreventDoSAttack.DoSSiteCount=20
root.System.PreventDoSAttack.DoSSiteInterval=1
"""


def test_axis_brute_force_blocking() -> None:
    assert axis.parse_lockout(AXIS_BRUTE_FORCE) == LockoutPolicy(True, 20, 1.0, 10.0)
    spelled = AXIS_BRUTE_FORCE.replace(b".DoS", b".DOS").replace(b"=On", b"=off")
    assert axis.parse_lockout(spelled) == LockoutPolicy(False, 20, 1.0, 10.0)
    # firmware before AXIS OS 7.30 has no such group: unknown, never a bad answer or "off"
    missing = b"# Error: Error -1 getting param in group 'System.PreventDoSAttack'\n"
    with pytest.raises(Unsupported):
        axis.parse_lockout(missing)
    with pytest.raises(ValueError):  # noqa: PT011  # the base adapter maps it to BadResponse
        axis.parse_lockout(AXIS_BRUTE_FORCE.replace(b"Count=20", b"Count=lots"))


def test_axis_flag_that_is_no_flag() -> None:
    with pytest.raises(ValueError, match="not a known on/off value"):
        axis.param_flag({"Enabled": "maybe"}, "Enabled")


def test_onvif_placeholder_manufacturer_and_model() -> None:
    """Values cheap firmware puts in GetDeviceInformation name no vendor and no model; the
    firmware string is still read (a six-digit build date under no known vendor)."""
    answer = types.SimpleNamespace(
        Manufacturer="ONVIF", Model="IP Camera", FirmwareVersion="V5.5.0 build 190416"
    )
    identity = onvif_parsers.parse_device_information(answer)
    assert (identity.vendor, identity.model) == (None, None)
    assert identity.build_date == date(2019, 4, 16)


@pytest.mark.parametrize(
    ("kind", "expected"), [("hostname", ("time.windows.com",)), ("ipaddress", ())]
)
def test_hikvision_ntp_server_in_use(kind: str, expected: tuple[str, ...]) -> None:
    """ISAPI NTPServer keeps both fields; addressingFormatType names the one in use, and an
    ipAddress of 0.0.0.0 is no server (shape of the ISAPI documentation)."""
    ntp = (
        "<NTPServerList><NTPServer><id>1</id>"
        f"<addressingFormatType>{kind}</addressingFormatType>"
        "<hostName>time.windows.com</hostName><ipAddress>0.0.0.0</ipAddress>"
        "<portNo>123</portNo></NTPServer></NTPServerList>"
    ).encode()
    clock = b"<Time><timeMode>NTP</timeMode></Time>"
    assert hik.parse_time(clock, ntp).ntp_servers == expected


@pytest.mark.parametrize(
    ("index", "zone"),
    [
        ("0", "UTC"),
        ("3", "Etc/GMT-3"),  # recorded beside TimeZoneDesc "Moscow"
        ("12", "Etc/GMT-7"),  # GMT+07:00: Hanoi, Bangkok
        ("13", "Etc/GMT-8"),  # GMT+08:00: Beijing
        ("22", "Etc/GMT+3"),  # recorded beside TimeZoneDesc "Brasilia"
        ("25", "Etc/GMT+5"),  # recorded beside TimeZoneDesc "Easterntime"
        ("32", "Etc/GMT+12"),
        ("8", None),  # GMT+05:30: no fixed-offset IANA name
        ("33", None),  # beyond the table
        ("", None),
        ("GMT+7", None),
    ],
)
def test_dahua_time_zone_index(index: str, zone: str | None) -> None:
    assert dahua.zone_name(index) == zone


def test_dahua_time_zone_written_as_index_or_refused() -> None:
    assert dahua.zone_index("Asia/Ho_Chi_Minh") == "12"
    assert dahua.zone_index("Etc/GMT-7") == "12"
    assert dahua.zone_index("UTC") == "0"
    assert dahua.zone_index("America/Bogota") == "25"
    for zone, why in [
        ("Europe/Paris", "summer time"),
        ("Asia/Kolkata", "whole-hour"),  # in the table (8), but read back as no zone name
        ("Pacific/Kiritimati", "whole-hour"),  # UTC+14: not in the table
        ("Nowhere/Town", "unknown"),
    ]:
        with pytest.raises(ValueError, match=why):
            dahua.zone_index(zone)


def test_dahua_clock_is_read_in_the_zone_of_its_index() -> None:
    clock = b"result=2026-12-07 19:00:00\r\n"
    info = dahua.parse_time(clock, b"table.NTP.Enable=true\r\ntable.NTP.TimeZone=12\r\n")
    assert (info.camera_utc, info.zone) == (datetime(2026, 12, 7, 12, tzinfo=UTC), "Etc/GMT-7")
    half = dahua.parse_time(clock, b"table.NTP.TimeZone=8\r\n")  # GMT+05:30: no name
    assert (half.camera_utc, half.zone) == (datetime(2026, 12, 7, 13, 30, tzinfo=UTC), None)
    unnamed = dahua.parse_time(clock, None)  # no NTP table: read as UTC
    assert (unnamed.camera_utc, unnamed.zone) == (datetime(2026, 12, 7, 19, tzinfo=UTC), None)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"Enabled": "yes", "V1": "no", "V2c": "yes", "V1ReadCommunity": "c0mm"}, (True, "c0mm")),
        ({"Enabled": "no", "V1": "yes", "V2c": "yes"}, (False, None)),  # the agent is off
        ({"Enabled": "yes", "V1": "no", "V2c": "no", "V3": "yes"}, (False, None)),  # v3 only
        ({"V1": "yes", "V2c": "yes"}, (None, None)),  # no Enabled: unknown
        ({"Enabled": "yes", "V1": "no"}, (None, None)),  # no V2c: unknown
        ({"Enabled": "yes", "V2c": "yes", "V1ReadCommunity": "******"}, (True, None)),
    ],
)
def test_axis_snmp(params: dict[str, str], expected: tuple[bool | None, str | None]) -> None:
    assert axis.parse_snmp(params) == expected


def test_axis_authentication_words() -> None:
    """AuthenticationPolicy and ProtViewer as cameras spell them; absent, empty or masked
    ("******") is unknown, never on or off."""
    assert axis.parse_auth_policy({"AuthenticationPolicy": "digest"}) is True
    assert axis.parse_auth_policy({"AuthenticationPolicy": "basic_digest"}) is False
    assert axis.parse_auth_policy({}) is None
    assert axis.parse_auth_policy({"AuthenticationPolicy": ""}) is None
    assert axis.parse_rtsp_viewer({"ProtViewer": "password"}) is True
    assert axis.parse_rtsp_viewer({"ProtViewer": "anonymous"}) is False
    assert axis.parse_rtsp_viewer({"ProtViewer": "******"}) is None
    assert axis.parse_group(b"# Error: Error -1 getting param in group 'SNMP'\n", "SNMP") == {}
