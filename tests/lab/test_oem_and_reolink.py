"""Rebranded cameras (an OEM persona is data over its maker's persona) and the Reolink persona
(JSON API with session tokens, ONVIF on its own port, RTSP), checked with onvif-zeep-async,
httpx and ffprobe."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import onvif
import pytest

from lab.config import parse_config
from lab.fleet import CameraNode, Fleet
from lab.persona import load_persona
from lab.services.rtsp import SYSTEM_PYTHON
from lab.testing import LabFactory
from lab.truth import lab_truth
from tests.lab_services.test_rtsp import ffprobe

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
LAB = """
[[camera]]
id = "hilook"
persona = "hilook"
[[camera]]
id = "kb"
persona = "kbvision"
[[camera]]
id = "reo"
persona = "reolink"
lockout = {threshold = 3, window_s = 30, lock_s = 60}
"""
API = "/cgi-bin/api.cgi"


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


async def device_information(node: CameraNode, port: int, user: str, password: str) -> Any:
    cam = onvif.ONVIFCamera(node.host, port, user, password, wsdl_dir=WSDL)
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        return await dev.GetDeviceInformation()
    finally:
        await cam.close()


def test_an_oem_persona_is_its_makers_persona_with_its_own_strings() -> None:
    hik, hilook = load_persona("hikvision"), load_persona("hilook")
    kb = load_persona("kbvision")
    assert (hilook.vendor, hilook.family, hilook.onvif_manufacturer) == (
        "HiLook",
        "Hikvision",
        "HiLook",
    )
    assert hilook.api == hik.api
    assert hilook.rtsp_paths == hik.rtsp_paths
    assert hilook.banners["http"] == hik.banners["http"]  # tables merge key by key
    assert hilook.banners["snmp"] == "HiLook IP Camera"
    assert (kb.family, kb.firmware) == ("Dahua", "2.622.KB01.21.R")
    truth = lab_truth(parse_config(LAB))["cameras"]
    assert (truth["kb"]["vendor"], truth["kb"]["family"]) == ("KBVision", "Dahua")


async def test_oem_cameras_answer_with_the_brand_strings(fleet: Fleet) -> None:
    hilook, kb = fleet["hilook"], fleet["kb"]
    info = await device_information(hilook, hilook.ports["http"], "admin", "12345")
    assert (info.Manufacturer, info.Model) == ("HiLook", "IPC-B140H-M")
    assert info.FirmwareVersion == "V5.5.800 build 210628"
    async with httpx.AsyncClient() as client:
        isapi = await client.get(
            hilook.url("/ISAPI/System/deviceInfo"), auth=httpx.DigestAuth("admin", "12345")
        )
        dahua = await client.get(
            kb.url("/cgi-bin/magicBox.cgi?action=getSoftwareVersion"),
            auth=httpx.DigestAuth("admin", "admin"),
        )
    assert "<model>IPC-B140H-M</model>" in isapi.text
    assert dahua.text.startswith("version=2.622.KB01.21.R,build:2021-08-12")


async def reolink(
    client: httpx.AsyncClient, node: CameraNode, cmd: str, body: object = None, **query: str
) -> Any:
    answer = await client.post(
        node.url(API), params={"cmd": cmd, **query}, json=body or [{"cmd": cmd, "action": 0}]
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html"
    return json.loads(answer.text)[0]


def login(user: str, password: str) -> list[dict[str, object]]:
    user_param = {"userName": user, "password": password}
    return [{"cmd": "Login", "action": 0, "param": {"User": user_param}}]


async def test_reolink_json_api_with_tokens(fleet: Fleet) -> None:
    node = fleet["reo"]
    async with httpx.AsyncClient() as client:
        anonymous = await reolink(client, node, "GetDevInfo")
        assert anonymous["error"]["detail"] == "please login first"
        refused = await reolink(client, node, "Login", login("admin", "nope"), token="null")
        assert (refused["code"], refused["error"]["detail"]) == (1, "login failed")
        logged_in = await reolink(client, node, "Login", login("admin", ""), token="null")
        token = logged_in["value"]["Token"]["name"]
        assert logged_in["value"]["Token"]["leaseTime"] == 3600
        info = (await reolink(client, node, "GetDevInfo", token=token))["value"]["DevInfo"]
        assert (info["model"], info["firmVer"]) == ("RLC-822A", "v3.1.0.956_22041507")
        assert info["buildDay"] == "build 22041507"
        ability = await reolink(client, node, "GetAbility", user="admin", password="")
        assert ability["value"]["Ability"]["onvif"]["permit"] == 6
        ports = (await reolink(client, node, "GetNetPort", token=token))["value"]["NetPort"]
        assert ports["onvifPort"] == 8000
        assert (await reolink(client, node, "GetDevInfo", token="0123"))["code"] == 1
        # failed logins count toward the lockout like any other interface's
        for wrong in ("x", "y", "z"):
            await reolink(client, node, "Login", login("admin", wrong), token="null")
        locked = await reolink(client, node, "Login", login("admin", ""), token="null")
        assert locked["error"]["detail"] == "Login has been locked"
    logged = [r for r in node.camera.log if r.interface == "http"]
    assert all("password" not in r.target and "token=" not in r.target for r in logged)
    assert {r.auth for r in logged} >= {"token", "password", "none"}


async def test_reolink_onvif_has_its_own_port(fleet: Fleet) -> None:
    node = fleet["reo"]
    info = await device_information(node, node.ports["onvif"], "admin", "")
    assert (info.Manufacturer, info.Model) == ("Reolink", "RLC-822A")
    assert info.FirmwareVersion == "v3.1.0.956_22041507"
    async with httpx.AsyncClient() as client:
        on_web_port = await client.post(node.url("/onvif/device_service"), content=b"<x/>")
        api_on_onvif_port = await client.post(
            f"http://{node.host}:{node.ports['onvif']}{API}?cmd=GetDevInfo", content=b"[]"
        )
    assert on_web_port.status_code == 404
    assert api_on_onvif_port.status_code == 404


@pytest.mark.skipif(
    shutil.which("ffprobe") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="ffprobe and Debian's python3 with GStreamer are needed",
)
async def test_reolink_rtsp_paths(fleet: Fleet) -> None:
    node = fleet["reo"]
    at = f"{node.host}:{node.ports['rtsp']}"
    code, out = await ffprobe(f"rtsp://admin:@{at}/h264Preview_01_main")
    assert code == 0, out
    assert "401 Unauthorized" in (await ffprobe(f"rtsp://{at}/h264Preview_01_sub"))[1]
