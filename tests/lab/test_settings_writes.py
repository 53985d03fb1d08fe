"""Setting writes through the vendor APIs (Hikvision ISAPI PUT, Dahua configManager setConfig,
Axis param.cgi update): the camera keeps what it applied, every read route answers it back, a
reboot keeps it (telnet stays closed), and the seeded write faults show as a client sees them:
an ignored write answers OK and changes nothing, a clamped one stores the camera's value, a
write that fails half-way leaves the settings before it applied."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime

import httpx
import onvif
import pytest
from zeep.exceptions import Fault

from lab.config import parse_config
from lab.errors import ConfigError
from lab.fleet import CameraNode, Fleet
from lab.persona import _persona, _raw, load_persona
from lab.settings import SettingName, SettingValue, WriteFaults, parse_value
from lab.testing import LabFactory

pytestmark = pytest.mark.integration

PASSWORD = "Adm1n-pass.9"
VENDORS = ("hikvision", "dahua", "axis")
LAB = "".join(
    f"""
[[camera]]
id = "{persona}"
persona = "{persona}"
telnet = true
ssh = true
upnp = true
p2p = true
ddns = true
manual_time = true
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
firmware_upgrade = {{ reboot_s = 0.2 }}
"""
    for persona in VENDORS
)
HIK_PATHS: dict[SettingName, tuple[str, str, str]] = {  # path, document, element
    "telnet": ("/ISAPI/System/Network/telnetd", "Telnetd", "enabled"),
    "ssh": ("/ISAPI/System/Network/ssh", "SSH", "enabled"),
    "upnp": ("/ISAPI/System/Network/UPnP", "UPnP", "enabled"),
    "p2p": ("/ISAPI/System/Network/EZVIZ", "EZVIZ", "enabled"),
    "ntp": ("/ISAPI/System/time", "Time", "timeMode"),
    "ntp_server": ("/ISAPI/System/time/ntpServers", "NTPServerList", "hostName"),
}
DAHUA_KEYS: dict[SettingName, tuple[str, str]] = {  # table, key
    "telnet": ("Telnet", "Telnet.Enable"),
    "ssh": ("SSHD", "SSHD.Enable"),
    "upnp": ("UPnP", "UPnP.Enable"),
    "p2p": ("T2UServer", "T2UServer.Enable"),
    "ntp": ("NTP", "NTP.Enable"),
    "ntp_server": ("NTP", "NTP.Address"),
}
AXIS_KEYS: dict[SettingName, str] = {
    "ssh": "Network.SSH.Enabled",
    "upnp": "Network.UPnP.Enabled",
    "p2p": "RemoteService.Enabled",
    "ntp": "Time.SyncSource",
    "ntp_server": "Time.NTP.Server",
}
NTP = "127.0.0.123"
WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")


def _spell(persona: str, name: SettingName, value: SettingValue) -> str:
    if isinstance(value, str):
        return value
    if name == "ntp":
        return {"hikvision": ("NTP", "manual"), "axis": ("NTP", "None")}.get(
            persona, ("true", "false")
        )[not value]
    return ("yes", "no")[not value] if persona == "axis" else ("true", "false")[not value]


async def write(
    client: httpx.AsyncClient, node: CameraNode, changes: dict[SettingName, SettingValue]
) -> list[httpx.Response]:
    """The persona's own write of ``changes``: one PUT per ISAPI resource (Hikvision), one
    request carrying all of them (Dahua, Axis)."""
    persona = node.id
    if persona == "hikvision":
        answers = []
        for name, value in changes.items():
            path, doc, element = HIK_PATHS[name]
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><{doc} version="2.0" '
                f'xmlns="http://www.hikvision.com/ver20/XMLSchema">'
                f"<{element}>{_spell(persona, name, value)}</{element}></{doc}>"
            )
            headers = {"Content-Type": "application/xml"}
            answers.append(await client.put(node.url(path), content=body, headers=headers))
        return answers
    if persona == "dahua":
        query = {DAHUA_KEYS[n][1]: _spell(persona, n, v) for n, v in changes.items()}
        url = node.url("/cgi-bin/configManager.cgi")
        return [await client.get(url, params={"action": "setConfig", **query})]
    query = {AXIS_KEYS[n]: _spell(persona, n, v) for n, v in changes.items()}
    return [await client.get(node.url("/axis-cgi/param.cgi"), params={"action": "update", **query})]


async def read(client: httpx.AsyncClient, node: CameraNode, name: SettingName) -> SettingValue:
    """The setting as the vendor's read route answers it."""
    persona = node.id
    if persona == "hikvision":
        path, _doc, element = HIK_PATHS[name]
        text = (await client.get(node.url(path))).text
        found = re.search(f"<{element}>([^<]*)</{element}>", text)
    elif persona == "dahua":
        table, key = DAHUA_KEYS[name]
        url = node.url("/cgi-bin/configManager.cgi")
        text = (await client.get(url, params={"action": "getConfig", "name": table})).text
        found = re.search(f"table\\.{re.escape(key)}=([^\\r\\n]*)", text)
    else:
        group = {"ssh": "Network.SSH", "upnp": "Network.UPnP", "p2p": "RemoteService"}
        url = node.url("/axis-cgi/param.cgi")
        params = {"action": "list", "group": group.get(name, "Time")}
        text = (await client.get(url, params=params)).text
        found = re.search(f"root\\.{re.escape(AXIS_KEYS[name])}=([^\\n]*)", text)
    assert found is not None, text
    value = parse_value(name, found.group(1))
    assert value is not None, found.group(1)
    return value


def ok(persona: str, answer: httpx.Response) -> bool:
    marker = {"hikvision": "<statusCode>1<", "dahua": "OK", "axis": "OK"}[persona]
    return answer.status_code == 200 and marker in answer.text


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=httpx.DigestAuth("admin", PASSWORD), timeout=30)


CHANGES: dict[SettingName, SettingValue] = {
    "ssh": False,
    "upnp": False,
    "p2p": False,
    "ntp": True,
    "ntp_server": NTP,
}


@pytest.mark.parametrize("persona", VENDORS)
async def test_writes_are_applied_read_back_and_survive_a_reboot(
    fleet: Fleet, persona: str
) -> None:
    node = fleet[persona]
    changes = {"telnet": False, **CHANGES} if persona != "axis" else CHANGES
    async with client() as http:
        answers = await write(http, node, changes)
        assert all(ok(persona, a) for a in answers), [a.text for a in answers]
        node.camera.schedule_reboot(0.2)
        for _ in range(400):  # at most 20 s
            if node.camera.reboots and node.camera.online:
                break
            await asyncio.sleep(0.05)
        assert (node.camera.reboots, node.camera.online) == (1, True)
        assert {name: await read(http, node, name) for name in changes} == changes
    assert {n: node.camera.settings[n] for n in changes} == changes
    if persona != "axis":  # the telnet listener does not come back after the reboot
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(node.host, node.ports["telnet"])


@pytest.mark.parametrize("persona", VENDORS)
async def test_ignored_and_clamped_writes_answer_ok_and_read_back_the_truth(
    fleet: Fleet, persona: str
) -> None:
    node = fleet[persona]
    node.camera.write_faults = WriteFaults(
        ignore=frozenset({"upnp"}), clamp={"ntp_server": "127.0.0.1"}
    )
    async with client() as http:
        answers = await write(http, node, {"ssh": False, "upnp": False, "ntp_server": NTP})
        assert all(ok(persona, a) for a in answers), [a.text for a in answers]
        assert await read(http, node, "ssh") is False
        assert await read(http, node, "upnp") is True  # ignored
        assert await read(http, node, "ntp_server") == "127.0.0.1"  # clamped


@pytest.mark.parametrize("persona", VENDORS)
async def test_a_write_that_fails_half_way_keeps_what_came_before(
    fleet: Fleet, persona: str
) -> None:
    node = fleet[persona]
    node.camera.write_faults = WriteFaults(fail_after=1)
    async with client() as http:
        answers = await write(http, node, {"ssh": False, "upnp": False})
        assert not ok(persona, answers[-1]), answers[-1].text
        assert answers[-1].status_code == {"axis": 200}.get(persona, 400)
        assert (await read(http, node, "ssh"), await read(http, node, "upnp")) == (False, True)
        again = await write(http, node, {"upnp": False})  # the fault strikes once
        assert ok(persona, again[0])
        assert await read(http, node, "upnp") is False


async def test_hikvision_rtsp_authentication_is_the_channels_security_switch(
    fleet: Fleet,
) -> None:
    """RTSP authentication is Transport/Security/enabled of the main stream's channel: a PUT of
    the channel's document changes it (the channel's own <enabled> is another switch), the
    channel answers it back, and the seeded faults strike it as any other setting."""
    node = fleet["hikvision"]
    channel, xml = node.url("/ISAPI/Streaming/channels/101"), {"Content-Type": "application/xml"}

    def rtsp_auth() -> SettingValue:
        return node.camera.settings["rtsp_auth"]

    on, off = "<Security>\n<enabled>true<", "<Security>\n<enabled>false<"
    async with client() as http:
        document = (await http.get(channel)).text
        assert on in document
        assert ok(
            "hikvision", await http.put(channel, content=document.replace(on, off), headers=xml)
        )
        assert rtsp_auth() is False
        assert off in (await http.get(channel)).text
        # the channel itself switched off, its Security on: RTSP authentication on
        channel_off = document.replace(
            "<enabled>true</enabled>\n<Transport>", "<enabled>false</enabled>\n<Transport>"
        )
        assert channel_off != document
        assert ok("hikvision", await http.put(channel, content=channel_off, headers=xml))
        assert rtsp_auth() is True
        node.camera.write_faults = WriteFaults(ignore=frozenset({"rtsp_auth"}))
        answer = await http.put(channel, content=document.replace(on, off), headers=xml)
        assert ok("hikvision", answer)  # OK, and nothing changed
        assert on in (await http.get(channel)).text
        node.camera.write_faults = WriteFaults(fail_after=0)
        refused = await http.put(channel, content=document.replace(on, off), headers=xml)
        assert (refused.status_code, "<statusCode>6<" in refused.text) == (400, True)
    assert rtsp_auth() is True


async def test_onvif_set_operations_write_the_same_settings(fleet: Fleet) -> None:
    node = fleet["hikvision"]
    node.camera.write_faults = WriteFaults(fail_after=0)
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", PASSWORD, wsdl_dir=WSDL)
    try:
        device = await cam.create_devicemgmt_service()
        with pytest.raises(Fault, match="Setting refused"):  # the seeded failure, once
            await device.SetDynamicDNS({"Type": "NoUpdate"})
        assert (await device.GetDynamicDNS()).Type == "ClientUpdates"
        manual = [{"Type": "IPv4", "IPv4Address": NTP}]
        await device.SetNTP({"FromDHCP": False, "NTPManual": manual})
        await device.SetDynamicDNS({"Type": "NoUpdate"})
        await device.SetDiscoveryMode({"DiscoveryMode": "NonDiscoverable"})
        ntp = await device.GetNTP()
        assert ntp.NTPManual[0].IPv4Address == NTP
        assert (await device.GetDynamicDNS()).Type == "NoUpdate"
        assert await device.GetDiscoveryMode() == "NonDiscoverable"
        await device.SetNTP({"FromDHCP": False})
        assert not (await device.GetNTP()).NTPManual
    finally:
        await cam.close()
    settings = node.camera.settings
    assert (settings["ntp"], settings["ddns"], settings["discoverable"]) == (False, False, False)


async def test_a_value_the_camera_cannot_take_changes_nothing(fleet: Fleet) -> None:
    node = fleet["dahua"]
    async with client() as http:
        url = node.url("/cgi-bin/configManager.cgi")
        params = {"action": "setConfig", "SSHD.Enable": "false", "UPnP.Enable": "maybe"}
        answer = await http.get(url, params=params)
        assert (answer.status_code, answer.text) == (400, "Error\r\n")
        assert await read(http, node, "ssh") is True
        wrong = httpx.DigestAuth("admin", "not-the-password")
        async with httpx.AsyncClient(auth=wrong) as stranger:
            refused = await stranger.get(url, params={"action": "setConfig", "SSHD.Enable": "0"})
        assert refused.status_code == 401
    assert node.camera.settings["ssh"] is True


async def test_a_dahua_time_zone_is_an_index_and_moves_the_clock(fleet: Fleet) -> None:
    """NTP.TimeZone=12 (GMT+07:00 in Dahua's table) is kept as the fixed-offset zone, read back
    as 12, and getCurrentTime answers the wall clock of that zone; a half-hour index (8,
    GMT+05:30) or one beyond the table is refused and changes nothing."""
    node = fleet["dahua"]
    url = node.url("/cgi-bin/configManager.cgi")
    async with client() as http:
        for refused in ("8", "33", "UTC+7"):
            answer = await http.get(url, params={"action": "setConfig", "NTP.TimeZone": refused})
            assert answer.status_code == 400, refused
        assert node.camera.settings["time_zone"] == "UTC"
        answer = await http.get(url, params={"action": "setConfig", "NTP.TimeZone": "12"})
        assert ok("dahua", answer)
        assert node.camera.settings["time_zone"] == "Etc/GMT-7"
        ntp = await http.get(url, params={"action": "getConfig", "name": "NTP"})
        assert "table.NTP.TimeZone=12\r\n" in ntp.text
        clock = await http.get(node.url("/cgi-bin/global.cgi"), params={"action": "getCurrentTime"})
    local = datetime.strptime(clock.text.strip().removeprefix("result="), "%Y-%m-%d %H:%M:%S")
    ahead = (local - node.camera.now().replace(tzinfo=None)).total_seconds()
    assert abs(ahead - 7 * 3600) < 60


async def test_axis_authentication_and_snmp_parameters(fleet: Fleet) -> None:
    """Axis param.cgi: one AuthenticationPolicy sets web and RTSP Digest-only alike, ProtViewer
    RTSP's anonymous viewers, SNMP.V2c the v1/v2c agent and V1ReadCommunity its community;
    each group answers back what the camera keeps, and a word the camera does not know
    changes nothing."""
    node = fleet["axis"]
    url = node.url("/axis-cgi/param.cgi")
    update = {
        "action": "update",
        "Network.HTTP.AuthenticationPolicy": "basic_digest",
        "Network.RTSP.ProtViewer": "anonymous",
        "SNMP.V1": "yes",
        "SNMP.V2c": "yes",
        "SNMP.V1ReadCommunity": "site-c0mm",
    }
    async with client() as http:
        assert (await http.get(url, params=update)).text == "OK\n"
        settings = node.camera.settings
        assert (settings["http_digest_only"], settings["rtsp_digest_only"]) == (False, False)
        assert (settings["rtsp_auth"], settings["snmp"]) == (False, True)
        assert settings["snmp_community"] == "site-c0mm"

        async def group(name: str) -> str:
            return (await http.get(url, params={"action": "list", "group": name})).text

        assert "root.Network.HTTP.AuthenticationPolicy=basic_digest\n" in await group(
            "Network.HTTP"
        )
        assert "root.Network.RTSP.ProtViewer=anonymous\n" in await group("Network.RTSP")
        snmp = await group("SNMP")
        assert "root.SNMP.V2c=yes\n" in snmp
        assert "root.SNMP.V1ReadCommunity=site-c0mm\n" in snmp
        bad = {"action": "update", "Network.HTTP.AuthenticationPolicy": "ntlm"}
        assert (await http.get(url, params=bad)).text.startswith("# Error")
        assert settings["http_digest_only"] is False


def test_write_faults_come_from_lab_config_with_clear_errors() -> None:
    config = parse_config(
        '[[camera]]\nid = "c"\npersona = "axis"\n'
        '[camera.write_faults]\nignore = ["p2p"]\nclamp = { ntp = false }\nfail_after = 2\n'
    )
    assert config.camera("c").write_faults == WriteFaults(frozenset({"p2p"}), {"ntp": False}, 2)
    for bad, message in [
        ('ignore = ["ftpd"]', "unknown setting 'ftpd'"),
        ('clamp = { ssh = "off" }', "clamp.ssh"),
        ("fail_after = -1", "fail_after"),
        ("retry = true", "unknown key 'retry'"),
    ]:
        text = f'[[camera]]\nid = "c"\npersona = "axis"\n[camera.write_faults]\n{bad}\n'
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config(text)


def test_a_persona_may_carry_write_faults_that_its_cameras_take() -> None:
    raw = _raw("axis", ())
    raw["write_faults"] = {"ignore": ["p2p"]}
    persona = _persona("axis", raw)
    assert persona.write_faults == WriteFaults(frozenset({"p2p"}))
    assert load_persona("axis").write_faults == WriteFaults()  # the shipped ones obey
    spec = parse_config('[[camera]]\nid = "c"\npersona = "axis"\n').camera("c")
    assert spec.write_faults == load_persona("axis").write_faults
