"""Recorders in the lab: channel cameras seated on NVRs, the channel endpoints rendered from
them, an offline channel, the vendors' own discovery responders (SADP, DHDiscover) and the
recorder controls of the ground truth."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
from lxml import etree

from agent.vendors.hikvision.parsers import parse_input_proxy
from lab.config import parse_config
from lab.errors import ConfigError
from lab.fleet import CameraNode, Fleet
from lab.services.vendordiscovery import (
    DeviceFacts,
    dhdiscover_answer,
    dhip_body,
    dhip_frame,
    sadp_answer,
)
from lab.testing import LabFactory
from lab.truth import lab_truth

RECORDERS = Path(__file__).parents[2] / "configs" / "lab" / "recorders.toml"
REAL = Path(__file__).parents[1] / "fixtures" / "real"
FACTS = DeviceFacts(
    vendor="Dahua", model="IPC-HDW1431T1-S4", serial="6C01E93PAG69A7D", mac="08:ed:ed:87:42:7a",
    host="127.0.0.1", http_port=80, sdk_port=37777, version="2.800.0000000.13.R",
    build="build 220101", device_class="IPC", channels=0, activated=True,
)  # fmt: skip
LAB = """
[lab]
rtsp = false
[[camera]]
id = "nvr"
persona = "hikvision-nvr"
users = [{ name = "admin", password = "Nvr-2026!x" }]
[[camera]]
id = "dnvr"
persona = "dahua-nvr"
users = [{ name = "admin", password = "Dnvr-2026!x" }]
[[camera]]
id = "c1"
persona = "hilook"
recorder = "nvr"
users = [{ name = "admin", password = "C1-2026!xx" }]
[[camera]]
id = "c2"
persona = "ezviz"
recorder = "nvr"
channel = 5
offline = true
[[camera]]
id = "d1"
persona = "imou"
recorder = "dnvr"
users = [{ name = "admin", password = "D1-2026!xx" }]
"""
NS = {"h": "http://www.hikvision.com/ver20/XMLSchema"}
SADP_INQUIRY = (
    b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>0F1E2D3C</Uuid>'
    b"<Types>inquiry</Types></Probe>"
)
DH_SEARCH = dhip_frame(b'{"method":"DHDiscover.search","params":{"mac":"","uni":1}}\n')


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


async def get(node: CameraNode, path: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(node.url(path), auth=httpx.DigestAuth("admin", password))


async def ask_udp(host: str, port: int, datagram: bytes) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, datagram, (host, port))
        try:
            async with asyncio.timeout(2):
                return await loop.sock_recv(sock, 8192)
        except TimeoutError:
            return None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nchannel = 2\n', "only a camera on a"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nrecorder = "c1"\n', "is no recorder"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nrecorder = "nvr"\nchannel = 5\n', "twice"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nrecorder = "nvr"\nchannel = 17\n', "16"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nhost = 1\n', "share a lab address"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\npoe = true\n', "only a camera on a"),
        ('[[camera]]\nid = "x"\npersona = "hikvision"\nrecorder = "nvr"\npoe = true\n', "netns"),
    ],
)
def test_bad_seating_is_refused_with_the_reason(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(LAB + extra)


def test_cameras_take_the_next_free_channel() -> None:
    config = parse_config(LAB)
    assert [(c.id, c.channel) for c in config.channels("nvr")] == [("c1", 1), ("c2", 5)]
    assert [c.id for c in config.channels("dnvr")] == ["d1"]


async def test_the_hikvision_channel_list_names_each_seated_camera(fleet: Fleet) -> None:
    nvr, c1, c2 = fleet["nvr"], fleet["c1"], fleet["c2"]
    info = etree.fromstring((await get(nvr, "/ISAPI/System/deviceInfo", "Nvr-2026!x")).content)
    assert info.findtext("h:deviceType", namespaces=NS) == "NVR"
    listing = await get(nvr, "/ISAPI/ContentMgmt/InputProxy/channels", "Nvr-2026!x")
    channels = etree.fromstring(listing.content).findall("h:InputProxyChannel", NS)
    seen = {
        ch.findtext("h:id", namespaces=NS): (
            ch.findtext("h:sourceInputPortDescriptor/h:ipAddress", namespaces=NS),
            ch.findtext("h:sourceInputPortDescriptor/h:serialNumber", namespaces=NS),
        )
        for ch in channels
    }
    assert seen == {"1": (c1.host, c1.camera.serial), "5": (c2.host, c2.camera.serial)}
    assert b"C1-2026" not in listing.content  # ISAPI never returns the stored password
    status = await get(nvr, "/ISAPI/ContentMgmt/InputProxy/channels/status", "Nvr-2026!x")
    online = {
        s.findtext("h:id", namespaces=NS): s.findtext("h:online", namespaces=NS)
        for s in etree.fromstring(status.content).findall("h:InputProxyChannelStatus", NS)
    }
    assert online == {"1": "true", "5": "false"}
    with pytest.raises(httpx.ConnectError):  # the offline channel camera is down
        await get(c2, "/ISAPI/System/deviceInfo", "12345")


async def test_the_dahua_remote_device_table_hands_out_the_password(fleet: Fleet) -> None:
    dnvr, d1 = fleet["dnvr"], fleet["d1"]
    path = "/cgi-bin/configManager.cgi?action=getConfig&name=RemoteDevice"
    lines = (await get(dnvr, path, "Dnvr-2026!x")).text.splitlines()
    block = "table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0."
    assert f"{block}Address={d1.host}" in lines
    assert f"{block}Password=D1-2026!xx" in lines
    assert f"{block}SerialNo={d1.camera.serial}" in lines
    state = "/cgi-bin/LogicDeviceManager.cgi?action=getCameraState&uniqueChannels[0]=-1"
    assert "states[0].connectionState=Connected" in (await get(dnvr, state, "Dnvr-2026!x")).text
    assert (await get(dnvr, path, "wrong")).status_code == 401


async def test_a_channel_follows_its_stored_login(fleet: Fleet) -> None:
    """The recorder reaches a channel camera only with the password it stores: a camera whose
    password changed drops offline until the recorder is given the new one (ISAPI PUT of the
    channel, Dahua setConfig of RemoteDevice.<block>.Password), and the request log keeps no
    password."""
    nvr, dnvr, c1, d1 = fleet["nvr"], fleet["dnvr"], fleet["c1"], fleet["d1"]
    status = "/ISAPI/ContentMgmt/InputProxy/channels/status"
    state = "/cgi-bin/LogicDeviceManager.cgi?action=getCameraState&uniqueChannels[0]=-1"

    async def online() -> tuple[str, str]:
        hik = etree.fromstring((await get(nvr, status, "Nvr-2026!x")).content)
        dahua = (await get(dnvr, state, "Dnvr-2026!x")).text
        return (
            hik.findtext("h:InputProxyChannelStatus/h:online", namespaces=NS) or "",
            "Connected" if "states[0].connectionState=Connected" in dahua else "Unconnect",
        )

    assert await online() == ("true", "Connected")
    assert c1.camera.set_password("admin", "C1-new-2026!x")
    assert d1.camera.set_password("admin", "D1-new-2026!x")
    assert await online() == ("false", "Unconnect")
    document = (
        '<InputProxyChannel xmlns="http://www.hikvision.com/ver20/XMLSchema"><id>1</id>'
        "<sourceInputPortDescriptor><userName>admin</userName><password>C1-new-2026!x</password>"
        "</sourceInputPortDescriptor></InputProxyChannel>"
    )
    async with httpx.AsyncClient(timeout=10) as client:
        put = await client.put(
            nvr.url("/ISAPI/ContentMgmt/InputProxy/channels/1"),
            content=document,
            auth=httpx.DigestAuth("admin", "Nvr-2026!x"),
        )
        missing = await client.put(
            nvr.url("/ISAPI/ContentMgmt/InputProxy/channels/9"),
            content=document,
            auth=httpx.DigestAuth("admin", "Nvr-2026!x"),
        )
        key = "RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.Password"
        dahua = await client.get(
            dnvr.url("/cgi-bin/configManager.cgi"),
            params={"action": "setConfig", key: "D1-new-2026!x"},
            auth=httpx.DigestAuth("admin", "Dnvr-2026!x"),
        )
    assert (put.status_code, missing.status_code, dahua.text) == (200, 400, "OK\r\n")
    assert await online() == ("true", "Connected")
    logged = "\n".join(r.target for r in (*nvr.camera.log, *dnvr.camera.log))
    assert "new-2026" not in logged
    assert "action=setConfig" in logged


async def test_sadp_and_dhdiscover_answer_with_serial_and_mac(fleet: Fleet) -> None:
    nvr, d1 = fleet["nvr"], fleet["d1"]
    answer = await ask_udp(nvr.host, nvr.ports["sadp"], SADP_INQUIRY)
    assert answer is not None
    match = etree.fromstring(answer)
    assert match.tag == "ProbeMatch"
    assert match.findtext("Uuid") == "0F1E2D3C"
    assert match.findtext("DeviceSN") == nvr.camera.serial
    assert match.findtext("MAC") == nvr.camera.mac.replace(":", "-")
    assert match.findtext("DigitalChannelNum") == "16"
    assert await ask_udp(nvr.host, nvr.ports["sadp"], b"<Probe><Types>x</Types></Probe>") is None
    reply = await ask_udp(d1.host, d1.ports["dhdiscover"], DH_SEARCH)
    body = dhip_body(reply or b"")
    assert body is not None
    info = json.loads(body)
    assert info["mac"] == d1.camera.mac
    assert info["params"]["deviceInfo"]["SerialNo"] == d1.camera.serial
    assert info["params"]["deviceInfo"]["Vendor"] == "Imou"
    assert await ask_udp(d1.host, d1.ports["dhdiscover"], b"\xff") is None
    # each family answers its own protocol only
    assert await ask_udp(nvr.host, nvr.ports["dhdiscover"], DH_SEARCH) is None


def test_the_accuracy_lab_truth_names_the_recorder_controls() -> None:
    truth = lab_truth(parse_config(RECORDERS.read_text()))["cameras"]
    assert len([c for c in truth.values() if c.get("recorder") == "nvr-hik"]) == 16
    assert "REC-01" in truth["nvr-kb"]["findings"]
    assert "REC-01" not in truth["nvr-hik"]["findings"]  # ISAPI keeps the passwords
    assert truth["nvr-kb"]["findings"]["REC-02"] == ["router gw forwards 37777 -> SDK port 37777"]
    assert truth["hik-ch16"]["findings"] == {"REC-03": ["nvr-hik lists channel 16 offline"]}
    assert "AUTH-01" in truth["hik-ch03"]["findings"]
    assert "AUTH-01" in truth["kb-ch02"]["findings"]


def test_the_discovery_answers_have_the_shape_of_the_recorded_ones() -> None:
    """The lab's SADP ProbeMatch names the elements of a real one in the same order, its
    DHDiscover deviceInfo the keys of a real camera's, and its RemoteDevice rows carry every
    field a real recorder's table does (``tests/fixtures/real``)."""
    real_sadp = etree.fromstring((REAL / "hikvision/sadp-ProbeMatch-DS-KH6210-L.xml").read_bytes())
    inquiry = (
        b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>X</Uuid><Types>inquiry</Types></Probe>'
    )
    lab_sadp = etree.fromstring(sadp_answer(FACTS, inquiry) or b"")
    assert [e.tag for e in lab_sadp] == [e.tag for e in real_sadp]
    real_dh = json.loads((REAL / "dahua/dhdiscover-IPC-HDW1431T1-S4.json").read_bytes())
    search = dhip_frame(b'{"method":"DHDiscover.search","params":{"mac":"","uni":1}}')
    lab_dh = json.loads(dhip_body(dhdiscover_answer(FACTS, search) or b"") or b"")
    assert set(lab_dh) == set(real_dh)
    real_info, lab_info = real_dh["params"]["deviceInfo"], lab_dh["params"]["deviceInfo"]
    assert set(lab_info) == set(real_info)
    assert lab_info["IPv6Address"] == real_info["IPv6Address"]  # derived from the same MAC
    real_table = (REAL / "dahua/RemoteDevice-DeviceType-lorex-nvr.txt").read_text()
    fields = {line.split("=")[0].rsplit(".", 1)[1] for line in real_table.splitlines()}
    persona = parse_config(LAB).cameras[1].persona
    (route,) = [r for r in persona.api if r.path.endswith("configManager.cgi") and r.rows]
    assert all(f".{field}=" in route.row for field in fields)


async def test_the_channel_list_describes_a_channel_as_a_real_nvr_does(fleet: Fleet) -> None:
    """Each channel's ``sourceInputPortDescriptor`` names the elements, in the order, of the
    ones recorded from real NVRs (``hikvision/nvr-channel-*.json``), and our parser reads it."""
    real = json.loads(
        (REAL / "hikvision/nvr-channel-DS-2CD2386G2-IU-V5.7.15-build-240201.json").read_text()
    )
    listing = await get(fleet["nvr"], "/ISAPI/ContentMgmt/InputProxy/channels", "Nvr-2026!x")
    source = etree.fromstring(listing.content).find(
        "h:InputProxyChannel/h:sourceInputPortDescriptor", NS
    )
    assert source is not None
    assert [etree.QName(e).localname for e in source] == list(real["sourceInputPortDescriptor"])
    first = parse_input_proxy(listing.content, None)[0]
    assert (first.number, first.serial) == (1, fleet["c1"].camera.serial)


async def test_the_hikvision_nvr_forwards_each_channel_cameras_web_interface(fleet: Fleet) -> None:
    """Virtual host: the camera of channel 1 answers, as itself, on a port of the NVR; the
    offline channel's port closes the connection."""
    nvr, c1, c2 = fleet["nvr"], fleet["c1"], fleet["c2"]
    port = nvr.virtual_host_port(1)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.get(
            f"http://{nvr.host}:{port}/ISAPI/System/deviceInfo",
            auth=httpx.DigestAuth("admin", "C1-2026!xx"),
        )
        info = etree.fromstring(reply.content)
        assert info.findtext("h:serialNumber", namespaces=NS) == c1.camera.serial
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://{nvr.host}:{nvr.virtual_host_port(c2.spec.channel)}/")
    assert [r.target for r in c1.camera.log] == ["/ISAPI/System/deviceInfo"] * 2
    assert not nvr.camera.log  # the NVR relays; its own web interface saw nothing
