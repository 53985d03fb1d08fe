"""Each adapter against a loopback server replaying answers recorded from real devices
(``tests/support/replay.py``, bodies from ``tests/fixtures/real``): what the camera lab's
personas never did (old Axis firmware without basicdeviceinfo, AXIS OS service accounts in the
role groups, a Dahua without getSerialNo, a Hikvision lock duration under another name, ONVIF
operations the device lacks) must read right end to end, through the adapters' one edge."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.audit.identify import identify
from agent.vendors.axis.adapter import AxisAdapter
from agent.vendors.base import Adapter, AdapterConfig, AuthFailed
from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.models import (
    Account,
    Credential,
    Interface,
    LockoutPolicy,
    ServiceState,
    Target,
    TimeInfo,
)
from agent.vendors.onvif.adapter import OnvifAdapter
from tests.support.replay import Recorded, replay

CONFIG = AdapterConfig(timeout_s=10.0, max_response_bytes=256 * 1024)
CREDENTIAL = Credential("admin", "not-a-real-password")
READS = ("identify", "accounts", "services", "time")
XML = "application/xml"
SOAP = "application/soap+xml"


def _target(port: int) -> Target:
    return Target("replay", "127.0.0.1", {Interface.HTTP: port})


async def _reads(adapter: Adapter, *reads: str) -> list[Any]:
    """The adapter's public reads named by ``reads``, in order; the adapter closed after."""
    try:
        return [await getattr(adapter, read)() for read in reads]
    finally:
        await adapter.close()


def _param(group: str, file: str) -> tuple[str, Recorded]:
    return f"GET /axis-cgi/param.cgi?action=list&group={group}", Recorded(f"axis/{file}")


async def test_axis_firmware_without_basicdeviceinfo() -> None:
    """M1065-LW answers: no basicdeviceinfo.cgi (404), so Brand + Properties identify it; the
    AXIS OS group dump's logins are the digest users; ``oneclick`` is on; NTP 0.0.0.0 is none;
    Digest only, SNMP off, RTSP's viewer protection masked (unknown)."""
    paths = dict(
        [
            _param("Brand", "param-Brand-M1065-LW.txt"),
            _param("Properties", "param-Properties-M1065-LW-9.10.1.txt"),
            _param("Network.SSH", "param-Network.SSH-M1065-LW.txt"),
            _param("Network.UPnP", "param-Network.UPnP-M1065-LW.txt"),
            _param("RemoteService", "param-RemoteService-M1065-LW.txt"),
            _param("Time", "param-Time-M1065-LW.txt"),
            _param("Network.HTTP", "param-Network.HTTP-M1065-LW.txt"),
            _param("Network.RTSP", "param-Network.RTSP-M1065-LW.txt"),
            _param("SNMP", "param-SNMP-M1065-LW.txt"),
            (
                "GET /axis-cgi/pwdgrp.cgi?action=get",
                Recorded("axis/pwdgrp-axis-os-root-and-operator-with-ptz.txt"),
            ),
        ]
    )
    async with replay(paths, server="Apache") as server:
        identity, accounts, services, clock = await _reads(
            AxisAdapter(_target(server.port), CONFIG, CREDENTIAL), *READS
        )
    assert (identity.model, identity.firmware) == ("M1065-LW", "9.10.1")
    assert identity.build_date == date(2019, 2, 15)
    assert identity.source == "axis/param.Brand+Properties"
    assert accounts == (Account("root", "administrator"), Account("John", "operator"))
    assert (services.ssh, services.upnp, services.p2p) == (False, True, True)
    assert (services.http_digest_only, services.rtsp_digest_only) == (True, True)
    assert services.rtsp_auth is None  # ProtViewer listed as "******"
    assert (services.snmp, services.snmp_community) == (False, "public")
    assert clock == TimeInfo(ntp=True, ntp_servers=())
    assert ("POST", "/axis-cgi/basicdeviceinfo.cgi", "") in server.requests


async def test_hikvision_recorded_answers() -> None:
    """A DS-2CD2146G2-ISU's deviceInfo; users and a lock policy named maxIllegalLoginLockTime."""
    paths = {
        "GET /ISAPI/System/deviceInfo": Recorded("hikvision/deviceInfo-DS-2CD2146G2-ISU.xml", XML),
        "GET /ISAPI/Security/users": Recorded("hikvision/users-observed.xml", XML),
        "GET /ISAPI/Security/illegalLoginLock": Recorded(
            "hikvision/illegalLoginLock-maxIllegalLoginLockTime.xml", XML
        ),
    }
    async with replay(paths, server="webserver") as server:
        identity, accounts, policy = await _reads(
            HikvisionAdapter(_target(server.port), CONFIG, CREDENTIAL),
            "identify",
            "accounts",
            "lockout_policy",
        )
    assert (identity.model, identity.firmware, identity.build_date) == (
        "DS-2CD2146G2-ISU",
        "V5.7.17",
        date(2024, 6, 6),
    )
    assert accounts == (Account("admin", "administrator"),)
    assert policy == LockoutPolicy(enabled=True, threshold=5, lock_s=1800.0)


async def test_dahua_without_getserialno() -> None:
    """IPC-HDW5831R-ZE answers; getSerialNo not recorded (404): getSystemInfo's serialNumber."""
    magic = "GET /cgi-bin/magicBox.cgi?action="
    paths = {
        magic + "getSoftwareVersion": Recorded("dahua/getSoftwareVersion-2.800.0000016.txt"),
        magic + "getDeviceType": Recorded("dahua/getDeviceType-ip-camera.txt"),
        magic + "getSystemInfo": Recorded("dahua/getSystemInfo-IPC-HDW5831R-ZE.txt"),
    }
    async with replay(paths, server="webs") as server:
        (identity,) = await _reads(
            DahuaAdapter(_target(server.port), CONFIG, CREDENTIAL), "identify"
        )
    assert identity.model == "IPC-HDW5831R-ZE"  # "IP Camera" is no model
    assert (identity.firmware, identity.build_date) == ("2.800.0000016.0.R", date(2020, 6, 5))
    assert identity.serial == "4X7C5A1ZAG21L3F"


async def test_onvif_lacking_operations_are_unknown_not_broken() -> None:
    """GetDiscoveryMode and GetDynamicDNS answered by faults meaning "not implemented": the
    services read stays an answer with both fields unknown; the other reads are unaffected."""
    soap = {
        "GetSystemDateAndTime": Recorded("onvif/generic-GetSystemDateAndTime.xml", SOAP),
        "GetDeviceInformation": Recorded(
            "hikvision/onvif-GetDeviceInformation-DS-2DF7286-A.xml", SOAP
        ),
        "GetUsers": Recorded("onvif/generic-GetUsers.xml", SOAP),
        "GetNTP": Recorded("onvif/generic-GetNTP.xml", SOAP),
        "GetDiscoveryMode": Recorded("onvif/fault-not-implemented.xml", SOAP),
        "GetDynamicDNS": Recorded("onvif/fault-ActionNotSupported-InvalidOperation.xml", SOAP),
    }
    async with replay({}, soap) as server:
        identity, accounts, services, clock = await _reads(
            OnvifAdapter(_target(server.port), CONFIG, CREDENTIAL), *READS
        )
    assert (identity.vendor, identity.model) == ("hikvision", "DS-2DF7286-A")
    assert identity.build_date == date(2014, 6, 16)
    assert accounts == (Account("admin", "administrator"), Account("operator", "operator"))
    assert services == ServiceState()
    assert clock == TimeInfo(
        camera_utc=datetime(2014, 12, 24, 19, 14, 37, tzinfo=UTC),
        ntp=False,
        ntp_servers=("192.168.1.168",),
    )
    operations = {op for _, _, op in server.requests}
    assert {"GetDiscoveryMode", "GetDynamicDNS"} <= operations


async def test_identification_of_a_brand_without_adapter() -> None:
    """A Xiongmai board: every vendor API answers 404, ONVIF names the placeholder "H264" as
    manufacturer. Identification ends at the ONVIF adapter with no vendor, never "h264"."""
    soap = {
        "GetSystemDateAndTime": Recorded("onvif/generic-GetSystemDateAndTime.xml", SOAP),
        "GetDeviceInformation": Recorded("xiongmai/onvif-GetDeviceInformation-XM530.xml", SOAP),
    }
    async with replay({}, soap) as server:
        found = await identify(_target(server.port), CONFIG, CREDENTIAL)
        assert found.adapter is not None
        await found.adapter.close()
    assert found.adapter.vendor == "onvif"
    assert (found.identity.vendor, found.identity.model) == (None, "XM530_50X50-WG_8M")
    assert found.identity.source == "onvif"
    paths = {path for _, path, _ in server.requests}
    assert "/ISAPI/System/deviceInfo" in paths  # the vendor APIs were asked first


async def test_milesight_identified_over_onvif() -> None:
    """A Milesight camera: no vendor adapter answers, ONVIF names "Milesight Technology
    Co.,Ltd." with a firmware carrying a release tail (61.8.0.3-r8)."""
    soap = {
        "GetSystemDateAndTime": Recorded("axis/onvif-GetSystemDateAndTime-exonvif.xml", SOAP),
        "GetDeviceInformation": Recorded(
            "milesight/onvif-GetDeviceInformation-MS-C8165-PE.xml", SOAP
        ),
    }
    async with replay({}, soap) as server:
        found = await identify(_target(server.port), CONFIG, CREDENTIAL)
        assert found.adapter is not None
        await found.adapter.close()
    assert found.adapter.vendor == "onvif"
    identity = found.identity
    assert (identity.vendor, identity.model) == ("milesight", "MS-C8165-PE")
    assert (identity.firmware, identity.serial) == ("61.8.0.3-r8", "EM82V102329001403")


async def test_onvif_clock_without_utc() -> None:
    """A camera that answers GetSystemDateAndTime with only its local time (no UTCDateTime) and
    names its NTP server by DNS name: the clock is unknown, NTP on, the server's name kept."""
    soap = {
        "GetSystemDateAndTime": Recorded("onvif/generic-GetSystemDateAndTime-local-only.xml", SOAP),
        "GetNTP": Recorded("hikvision/onvif-GetNTP-exonvif.xml", SOAP),
    }
    async with replay({}, soap) as server:
        (clock,) = await _reads(OnvifAdapter(_target(server.port), CONFIG, CREDENTIAL), "time")
    assert clock == TimeInfo(camera_utc=None, ntp=True, ntp_servers=("time.windows.com",))


async def test_onvif_refusal_recorded_from_a_camera_is_a_failed_login() -> None:
    """A Hikvision PTZ's recorded ter:NotAuthorized fault (HTTP 400 on the camera; the replay
    answers faults with 500) is a refused login at the ONVIF adapter's edge, not a bad answer."""
    soap = {
        "GetSystemDateAndTime": Recorded("onvif/generic-GetSystemDateAndTime.xml", SOAP),
        "GetDeviceInformation": Recorded(
            "hikvision/onvif-fault-NotAuthorized-DS-2DF7286-A.xml", SOAP
        ),
    }
    async with replay({}, soap) as server:
        with pytest.raises(AuthFailed):
            await _reads(OnvifAdapter(_target(server.port), CONFIG, CREDENTIAL), "identify")
