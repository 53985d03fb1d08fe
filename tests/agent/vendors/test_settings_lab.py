"""The vendor adapters read and write the remediable settings of the lab's cameras (Hikvision
ISAPI read-modify-write, Dahua configManager setConfig, Axis param.cgi update): a write the
camera applies reads back, an ignored or clamped one reads back what the camera kept, a refusal
half-way raises ``BadResponse`` with the earlier change kept, and a bad value or a setting the
vendor cannot take is refused before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.commands.password_rotate import SPECIALS
from agent.vendors.axis import const as axis_const
from agent.vendors.axis.adapter import AxisAdapter
from agent.vendors.base import Adapter, AdapterConfig, BadResponse, Unsupported
from agent.vendors.dahua import const as dahua_const
from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision import const as hik_const
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.models import Credential, Interface, Setting, SettingValue, Target
from lab.fleet import Fleet
from lab.settings import WriteFaults
from lab.testing import LabFactory
from protocol.remediation import VENDOR_SETTINGS
from tests.lab.test_settings_writes import LAB, PASSWORD

pytestmark = pytest.mark.integration

KINDS: dict[str, type[Adapter]] = {
    "hikvision": HikvisionAdapter,
    "dahua": DahuaAdapter,
    "axis": AxisAdapter,
}
CONFIG = AdapterConfig(timeout_s=10.0)
BEFORE: dict[str, dict[Setting, SettingValue]] = {
    "hikvision": {
        Setting.TELNET: True,
        Setting.SSH: True,
        Setting.UPNP: True,
        Setting.P2P: True,
        Setting.NTP: False,
        Setting.SNMP: False,
        Setting.SNMP_COMMUNITY: "public",
        Setting.RTSP_DIGEST_ONLY: True,
        Setting.HTTP_DIGEST_ONLY: True,
        Setting.RTSP_AUTH: True,  # the main stream's Transport/Security/enabled
        Setting.TIME_ZONE: "UTC",  # timeZone "CST+0:00:00"
    },
    "dahua": {
        Setting.TELNET: True,
        Setting.SSH: True,
        Setting.UPNP: True,
        Setting.P2P: True,
        Setting.DDNS: True,
        Setting.NTP: False,
        Setting.SNMP: False,
        Setting.SNMP_COMMUNITY: "public",
        Setting.ONVIF_AUTH: True,
        Setting.RTSP_AUTH: True,
        Setting.RTSP_DIGEST_ONLY: True,  # RTSP.AuthType digest
        Setting.TIME_ZONE: "UTC",  # NTP.TimeZone 0
    },
    "axis": {
        Setting.SSH: True,
        Setting.UPNP: True,
        Setting.P2P: True,
        Setting.NTP: False,
        Setting.TIME_ZONE: "UTC",
        Setting.SNMP: False,
        Setting.SNMP_COMMUNITY: "public",
        Setting.HTTP_DIGEST_ONLY: True,
        Setting.RTSP_DIGEST_ONLY: True,  # the same AuthenticationPolicy
        Setting.RTSP_AUTH: True,
    },
}
FIX: dict[Setting, SettingValue] = {
    Setting.SSH: False,
    Setting.UPNP: False,
    Setting.P2P: False,
    Setting.NTP: True,
    Setting.NTP_SERVER: "127.0.0.123",
}


@pytest.fixture
async def adapters(lab_fleet: LabFactory) -> AsyncIterator[tuple[Fleet, dict[str, Adapter]]]:
    fleet = await lab_fleet(LAB)
    made = {
        name: kind(
            Target(name, fleet[name].host, {Interface.HTTP: fleet[name].ports["http"]}),
            CONFIG,
            Credential("admin", PASSWORD),
        )
        for name, kind in KINDS.items()
    }
    yield fleet, made
    for adapter in made.values():
        await adapter.close()


@pytest.mark.parametrize("persona", KINDS)
async def test_read_write_read_back(
    adapters: tuple[Fleet, dict[str, Adapter]], persona: str
) -> None:
    fleet, made = adapters
    adapter = made[persona]
    before = (await adapter.read_settings()).values
    assert before == BEFORE[persona]  # a manual clock names no NTP server: left out
    changes = {Setting.TELNET: False, **FIX} if persona != "axis" else dict(FIX)
    if persona == "dahua":
        changes[Setting.DDNS] = False
    await adapter.write_settings(changes)
    after = (await adapter.read_settings()).values
    assert {s: after[s] for s in changes} == changes
    assert {s: v for s, v in after.items() if s not in changes} == {
        s: v for s, v in before.items() if s not in changes
    }
    camera = fleet[persona].camera
    assert {s.value: camera.settings[s.value] for s in changes} == {
        s.value: v for s, v in changes.items()
    }


@pytest.mark.parametrize("persona", KINDS)
async def test_ignored_clamped_and_half_way(
    adapters: tuple[Fleet, dict[str, Adapter]], persona: str
) -> None:
    fleet, made = adapters
    adapter, camera = made[persona], fleet[persona].camera
    camera.write_faults = WriteFaults(ignore=frozenset({"upnp"}), clamp={"ntp_server": "127.0.0.1"})
    await adapter.write_settings({Setting.UPNP: False, Setting.NTP_SERVER: "127.0.0.123"})
    values = (await adapter.read_settings()).values
    assert (values[Setting.UPNP], values[Setting.NTP_SERVER]) == (True, "127.0.0.1")

    camera.write_faults = WriteFaults(fail_after=0)
    with pytest.raises(BadResponse):
        await adapter.write_settings({Setting.SSH: False, Setting.P2P: False})
    assert (await adapter.read_settings()).values[Setting.SSH] is True  # nothing applied

    camera.write_faults = WriteFaults(fail_after=1)
    with pytest.raises(BadResponse):
        await adapter.write_settings({Setting.SSH: False, Setting.P2P: False})
    values = (await adapter.read_settings()).values
    assert (values[Setting.SSH], values[Setting.P2P]) == (False, True)  # failed half-way


async def test_hikvision_rtsp_authentication_through_the_main_streams_channel(
    adapters: tuple[Fleet, dict[str, Adapter]],
) -> None:
    """Read from and written to ``Transport/Security/enabled`` of channel 101 (GET the channel's
    document, change that element, PUT it back); ignored and half-way writes read back what the
    camera kept."""
    fleet, made = adapters
    adapter, camera = made["hikvision"], fleet["hikvision"].camera
    assert camera.write_settings([("rtsp_auth", "false")])  # streams without credentials
    assert (await adapter.read_settings()).values[Setting.RTSP_AUTH] is False
    await adapter.write_settings({Setting.RTSP_AUTH: True})
    assert camera.settings["rtsp_auth"] is True
    assert (await adapter.read_settings()).values[Setting.RTSP_AUTH] is True

    camera.write_faults = WriteFaults(ignore=frozenset({"rtsp_auth"}))
    await adapter.write_settings({Setting.RTSP_AUTH: False})
    assert (await adapter.read_settings()).values[Setting.RTSP_AUTH] is True  # kept

    camera.write_faults = WriteFaults(fail_after=1)
    with pytest.raises(BadResponse):
        await adapter.write_settings({Setting.RTSP_AUTH: False, Setting.TELNET: False})
    values = (await adapter.read_settings()).values
    assert (values[Setting.RTSP_AUTH], values[Setting.TELNET]) == (False, True)


async def test_dahua_time_zone_is_an_index_of_fixed_offsets(
    adapters: tuple[Fleet, dict[str, Adapter]],
) -> None:
    """LOG-01 on Dahua: Asia/Ho_Chi_Minh goes as NTP.TimeZone=12 (GMT+07:00) and reads back
    as "Etc/GMT-7"; the clock, answered in the camera's zone, still reads as the right UTC
    instant. Ignored and clamped zones read back as the camera kept them; a zone with summer
    time or half hours is refused before anything is sent."""
    fleet, made = adapters
    adapter, camera = made["dahua"], fleet["dahua"].camera
    assert adapter.as_stored(Setting.TIME_ZONE, "Asia/Ho_Chi_Minh") == "Etc/GMT-7"
    sent = len(camera.log)
    for zone in ("Europe/Paris", "Asia/Kolkata", "Mars/Olympus"):
        with pytest.raises(ValueError, match="time zone"):
            adapter.as_stored(Setting.TIME_ZONE, zone)
        with pytest.raises(ValueError, match="time zone"):
            await adapter.write_settings({Setting.TIME_ZONE: zone})
    assert len(camera.log) == sent
    await adapter.write_settings({Setting.TIME_ZONE: "Asia/Ho_Chi_Minh"})
    assert [r.target for r in camera.log[sent:]][-1].endswith("NTP.TimeZone=12")
    assert camera.settings["time_zone"] == "Etc/GMT-7"
    assert (await adapter.read_settings()).values[Setting.TIME_ZONE] == "Etc/GMT-7"
    clock = await adapter.time()
    assert clock.camera_utc is not None
    assert abs((clock.camera_utc - camera.now()).total_seconds()) < 60

    camera.write_faults = WriteFaults(ignore=frozenset({"time_zone"}))
    await adapter.write_settings({Setting.TIME_ZONE: "UTC"})
    assert (await adapter.read_settings()).values[Setting.TIME_ZONE] == "Etc/GMT-7"
    camera.write_faults = WriteFaults(clamp={"time_zone": "Etc/GMT-8"})
    await adapter.write_settings({Setting.TIME_ZONE: "UTC"})
    assert (await adapter.read_settings()).values[Setting.TIME_ZONE] == "Etc/GMT-8"


async def test_dahua_rtsp_authentication_and_digest_only_share_one_key(
    adapters: tuple[Fleet, dict[str, Adapter]],
) -> None:
    """RTSP.AuthType holds both settings: Digest only off is "basic", on is "digest",
    authentication off is "disable" (Digest only then unknown: no login is asked); an ignored
    write reads back the old word, and a refusal half-way keeps the earlier change."""
    fleet, made = adapters
    adapter, camera = made["dahua"], fleet["dahua"].camera

    async def rtsp() -> tuple[SettingValue | None, SettingValue | None]:
        values = (await adapter.read_settings()).values
        return values.get(Setting.RTSP_AUTH), values.get(Setting.RTSP_DIGEST_ONLY)

    await adapter.write_settings({Setting.RTSP_DIGEST_ONLY: False})
    assert camera.log[-1].target.endswith("RTSP.AuthType=basic")
    assert await rtsp() == (True, False)
    await adapter.write_settings({Setting.RTSP_AUTH: False})
    assert await rtsp() == (False, None)
    assert camera.settings["rtsp_digest_only"] is False  # kept for when logins return
    await adapter.write_settings({Setting.RTSP_AUTH: True, Setting.RTSP_DIGEST_ONLY: False})
    assert await rtsp() == (True, False)
    await adapter.write_settings({Setting.RTSP_DIGEST_ONLY: True})
    assert await rtsp() == (True, True)

    camera.write_faults = WriteFaults(ignore=frozenset({"rtsp_digest_only"}))
    await adapter.write_settings({Setting.RTSP_DIGEST_ONLY: False})
    assert await rtsp() == (True, True)  # ignored: still "digest"

    camera.write_faults = WriteFaults(fail_after=1)
    with pytest.raises(BadResponse):
        await adapter.write_settings({Setting.SSH: False, Setting.RTSP_DIGEST_ONLY: False})
    values = (await adapter.read_settings()).values
    assert (values[Setting.SSH], values[Setting.RTSP_DIGEST_ONLY]) == (False, True)


async def test_refused_before_anything_is_sent(adapters: tuple[Fleet, dict[str, Adapter]]) -> None:
    fleet, made = adapters
    camera = fleet["axis"].camera
    sent = len(camera.log)
    with pytest.raises(Unsupported, match="cannot set telnet"):
        await made["axis"].write_settings({Setting.TELNET: False})
    with pytest.raises(ValueError, match="ntp_server"):
        await made["axis"].write_settings({Setting.NTP_SERVER: "pool.ntp.org&Network.SSH=yes"})
    with pytest.raises(ValueError, match="true or false"):
        await made["axis"].write_settings({Setting.SSH: "no"})
    assert len(camera.log) == sent


def _last_update(fleet: Fleet) -> str:
    """The query of the Axis camera's last param.cgi update (as its request log keeps it)."""
    return next(r.target for r in reversed(fleet["axis"].camera.log) if "update" in r.target)


async def test_axis_authentication_and_snmp(adapters: tuple[Fleet, dict[str, Adapter]]) -> None:
    """Axis: Digest-only (one AuthenticationPolicy for web and RTSP), RTSP's anonymous viewers
    (ProtViewer) and SNMP v1/v2c (V1 and V2c alike, the agent switched on, the community in
    V1ReadCommunity): written in one param.cgi update and read back; an ignored, a clamped and
    a half-way write read back what the camera kept; the two Digest-only settings asked apart
    are refused before anything is sent."""
    fleet, made = adapters
    adapter, camera = made["axis"], fleet["axis"].camera
    opened: dict[Setting, SettingValue] = {
        Setting.HTTP_DIGEST_ONLY: False,
        Setting.RTSP_DIGEST_ONLY: False,
        Setting.RTSP_AUTH: False,
        Setting.SNMP: True,
        Setting.SNMP_COMMUNITY: "site-c0mmunity",
    }
    await adapter.write_settings(opened)
    values = (await adapter.read_settings()).values
    assert {s: values[s] for s in opened} == opened
    sent = _last_update(fleet)
    for pair in ("SNMP.V1=yes", "SNMP.V2c=yes", "SNMP.Enabled=yes"):
        assert pair in sent
    assert "AuthenticationPolicy=basic_digest" in sent
    assert "ProtViewer=anonymous" in sent

    await adapter.write_settings({Setting.HTTP_DIGEST_ONLY: True, Setting.SNMP: False})
    values = (await adapter.read_settings()).values
    assert (values[Setting.RTSP_DIGEST_ONLY], values[Setting.SNMP]) == (True, False)
    assert "SNMP.V1=no" in _last_update(fleet)
    assert "SNMP.Enabled" not in _last_update(fleet)  # v3's switch too: left alone

    camera.write_faults = WriteFaults(
        ignore=frozenset({"rtsp_auth"}), clamp={"snmp_community": "clamped-c0mm"}
    )
    await adapter.write_settings({Setting.RTSP_AUTH: True, Setting.SNMP_COMMUNITY: "another-c0mm"})
    values = (await adapter.read_settings()).values
    assert (values[Setting.RTSP_AUTH], values[Setting.SNMP_COMMUNITY]) == (False, "clamped-c0mm")

    camera.write_faults = WriteFaults(fail_after=1)
    with pytest.raises(BadResponse):
        await adapter.write_settings({Setting.RTSP_AUTH: True, Setting.SNMP: True})
    values = (await adapter.read_settings()).values
    assert (values[Setting.RTSP_AUTH], values[Setting.SNMP]) == (True, False)

    sent_before = len(camera.log)
    with pytest.raises(ValueError, match="one Axis parameter"):
        await adapter.write_settings(
            {Setting.HTTP_DIGEST_ONLY: True, Setting.RTSP_DIGEST_ONLY: False}
        )
    assert len(camera.log) == sent_before


@pytest.mark.parametrize(
    ("vendor", "fields"),
    [
        ("hikvision", hik_const.SETTING_RESOURCES),
        ("dahua", dahua_const.SETTING_KEYS),
        ("axis", axis_const.SETTING_PARAMS),
    ],
)
def test_each_adapter_writes_what_the_contract_lists(vendor: str, fields: object) -> None:
    """The collector plans from ``protocol.remediation.VENDOR_SETTINGS``; each adapter takes
    its row as ``settable`` and holds a field of its API for every setting of it."""
    adapter = KINDS[vendor]
    assert {s.value for s in adapter.settable} == set(VENDOR_SETTINGS[vendor])
    assert isinstance(fields, dict)
    assert adapter.settable <= set(fields), adapter.settable - set(fields)


@pytest.mark.parametrize("vendor", ["dahua", "axis"])
async def test_a_password_of_every_generated_symbol_survives_the_query(
    adapters: tuple[Fleet, dict[str, Adapter]], vendor: str
) -> None:
    """Dahua and Axis take a new password in the query string: every symbol a rotation may
    generate, and "%" before two hex digits, reach the camera as they are (the camera decodes
    the query once; "%41" is not "A")."""
    fleet, made = adapters
    password = f"Xy9%41{SPECIALS}%zz"
    await made[vendor].set_password("admin", password, current=PASSWORD)
    assert fleet[vendor].camera.users["admin"].password == password
    assert await made[vendor].try_login(Interface.HTTP, "admin", password)
