"""Vendor HTTP APIs against real clients: curl --digest and httpx."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess

import httpx
import onvif
import pytest
from lxml import etree
from zeep.exceptions import Fault

from lab.fleet import Fleet
from lab.testing import LabFactory
from lab.truth import lab_truth

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")

LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
firmware = "V5.5.0"
build_date = 2021-06-28
not_activated = true
hidden_admin = true
[[camera]]
id = "dahua"
persona = "dahua"
[[camera]]
id = "dahua-basic"
persona = "dahua"
basic_over_http = true
[[camera]]
id = "axis"
persona = "axis"
anonymous_snapshot = true
lockout = {threshold = 3, window_s = 5, lock_s = 1}
"""


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


async def curl(url: str, *args: str) -> tuple[int, str, str]:
    """Run curl in a thread; return (HTTP status, headers, body)."""
    cmd = ["curl", "-sS", "--max-time", "5", "-D", "-", "-w", "\n%{http_code}", *args, url]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, check=True)
    text, _, code = out.stdout.rpartition("\n")
    headers, _, body = text.rpartition("\n\n")  # text mode turns CRLF into LF
    return int(code), headers, body


@pytest.mark.parametrize(
    ("camera", "path", "user", "expect"),
    [
        ("hik", "/ISAPI/System/deviceInfo", "admin:12345", "<firmwareReleasedDate>build 210628"),
        ("hik", "/ISAPI/Security/users", "admin:12345", "<userName>system</userName>"),
        ("hik", "/ISAPI/System/Network/telnetd", "admin:12345", "<enabled>false</enabled>"),
        (
            "dahua",
            "/cgi-bin/magicBox.cgi?action=getSoftwareVersion",
            "admin:admin",
            "version=2.800.0000000.25.R,build:2022-09-20",
        ),
        (
            "dahua",
            "/cgi-bin/userManager.cgi?action=getUserInfoAll",
            "admin:admin",
            "users[0].Name=admin",
        ),
        (
            "dahua",
            "/cgi-bin/configManager.cgi?action=getConfig&name=NTP",
            "admin:admin",
            "table.NTP.Enable=true",
        ),
        (
            "axis",
            "/axis-cgi/param.cgi?action=list&group=Properties",
            "root:pass",
            "root.Properties.Firmware.Version=10.12.182",
        ),
        ("axis", "/axis-cgi/pwdgrp.cgi?action=get", "root:pass", 'digusers="root"'),
    ],
)
async def test_curl_digest(fleet: Fleet, camera: str, path: str, user: str, expect: str) -> None:
    node = fleet[camera]
    status, headers, body = await curl(node.url(path), "--digest", "-u", user)
    assert status == 200, body
    assert expect in body
    assert f"Server: {node.camera.persona.banners['http']}" in headers
    status, headers, _ = await curl(
        node.url(path), "--digest", "-u", user.split(":", maxsplit=1)[0] + ":bad"
    )
    assert status == 401


async def test_basic_refused_unless_seeded(fleet: Fleet) -> None:
    status, headers, _ = await curl(
        fleet["hik"].url("/ISAPI/System/deviceInfo"), "--basic", "-u", "admin:12345"
    )
    assert status == 401
    assert 'WWW-Authenticate: Digest realm="IP Camera(' in headers
    status, headers, body = await curl(
        fleet["dahua-basic"].url("/cgi-bin/magicBox.cgi?action=getDeviceType"),
        "--basic",
        "-u",
        "admin:admin",
    )
    assert (status, body) == (200, "type=IPC-HFW2431S-S-S2\n")
    assert fleet["dahua-basic"].camera.log[-1].auth == "basic"


async def test_unauthenticated_endpoints(fleet: Fleet) -> None:
    async with httpx.AsyncClient() as client:
        activate = await client.get(fleet["hik"].url("/SDK/activateStatus"))
        snap_axis = await client.get(fleet["axis"].url("/axis-cgi/jpg/image.cgi"))
        snap_hik = await client.get(fleet["hik"].url("/ISAPI/Streaming/channels/101/picture"))
        props = await client.post(
            fleet["axis"].url("/axis-cgi/basicdeviceinfo.cgi"),
            json={"apiVersion": "1.0", "method": "getAllUnrestrictedProperties"},
        )
        restricted = await client.post(
            fleet["axis"].url("/axis-cgi/basicdeviceinfo.cgi"),
            json={"apiVersion": "1.0", "method": "getAllProperties"},
        )
        missing = await client.get(fleet["hik"].url("/nothing/here"))
    assert "<Activated>false</Activated>" in activate.text
    assert (snap_axis.status_code, snap_axis.content[:2]) == (200, b"\xff\xd8")
    assert snap_hik.status_code == 401
    assert json.loads(props.text)["data"]["propertyList"]["Version"] == "10.12.182"
    assert restricted.status_code == 401
    assert missing.status_code == 404


async def test_lockout_applies_across_interfaces(fleet: Fleet) -> None:
    node = fleet["axis"]
    url = node.url("/axis-cgi/pwdgrp.cgi?action=get")
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            bad = await client.get(url, auth=httpx.DigestAuth("root", "nope"))
            assert bad.status_code == 401
        locked = await client.get(url, auth=httpx.DigestAuth("root", "pass"))
        assert locked.status_code == 401
        assert node.camera.locked("root")
        await asyncio.sleep(1.1)
        unlocked = await client.get(url, auth=httpx.DigestAuth("root", "pass"))
    assert unlocked.status_code == 200


async def test_request_log_has_no_passwords(fleet: Fleet) -> None:
    node = fleet["dahua"]
    await curl(
        node.url("/cgi-bin/magicBox.cgi?action=getSerialNo"), "--digest", "-u", "admin:admin"
    )
    assert node.camera.log[-1].user == "admin"
    assert "admin:admin" not in repr(node.camera.log)
    assert all(not hasattr(r, "password") for r in node.camera.log)


async def test_isapi_time_honours_skew_and_manual_time(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(
        '[[camera]]\nid = "ntp"\npersona = "hikvision"\nclock_skew_s = -900\n'
        '[[camera]]\nid = "manual"\npersona = "hikvision"\nmanual_time = true\n'
    )
    ns = {"h": "http://www.hikvision.com/ver20/XMLSchema"}
    for camera_id, skew, mode, server in (
        ("ntp", -900, "NTP", "pool.ntp.org"),
        ("manual", 0, "manual", None),
    ):
        node = fleet[camera_id]
        status, _, body = await curl(
            node.url("/ISAPI/System/time"), "--digest", "-u", "admin:12345"
        )
        assert status == 200, body
        clock = etree.fromstring(body.encode())
        assert clock.findtext("h:timeMode", namespaces=ns) == mode
        local = dt.datetime.fromisoformat(clock.findtext("h:localTime", "", namespaces=ns))
        assert abs((local - dt.datetime.now(dt.UTC)).total_seconds() - skew) < 5
        status, _, body = await curl(
            node.url("/ISAPI/System/time/ntpServers"), "--digest", "-u", "admin:12345"
        )
        assert status == 200, body
        servers = etree.fromstring(body.encode()).findall("h:NTPServer", namespaces=ns)
        assert [s.findtext("h:hostName", namespaces=ns) or None for s in servers] == [server]


LOCK_LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
lockout = {threshold = 2, window_s = 30, lock_s = 60}
[[camera]]
id = "dahua"
persona = "dahua"
lockout = {threshold = 2, window_s = 30, lock_s = 60}
[[camera]]
id = "axis"
persona = "axis"
lockout = {threshold = 2, window_s = 30, lock_s = 60}
"""
PROTECTED = {
    "hik": ("/ISAPI/System/deviceInfo", "admin"),
    "dahua": ("/cgi-bin/magicBox.cgi?action=getDeviceType", "admin"),
    "axis": ("/axis-cgi/param.cgi?action=list&group=Properties", "root"),
}


async def test_a_locked_account_answers_as_the_vendor_does(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LOCK_LAB)
    answers = {}
    for camera_id, (path, user) in PROTECTED.items():
        node = fleet[camera_id]
        wrong = await curl(node.url(path), "--digest", "-u", f"{user}:wrong")
        await curl(node.url(path), "--digest", "-u", f"{user}:wrong")  # the second locks
        password = node.spec.users[0].password
        locked = await curl(node.url(path), "--digest", "-u", f"{user}:{password}")
        assert (wrong[0], locked[0]) == (401, 401), camera_id
        answers[camera_id] = (wrong[2], locked[2])
        [event] = node.camera.lock_events
        assert (event.user, round(event.until - event.at)) == (user, 60)
    check = etree.fromstring(answers["hik"][1].encode())
    assert check.tag == "userCheck"
    assert check.findtext("lockStatus") == "lock"
    assert 55 <= int(check.findtext("unlockTime", "")) <= 60
    assert "lock" not in answers["hik"][0]
    assert "User locked" in answers["dahua"][1]
    assert answers["axis"][0] == answers["axis"][1]  # AXIS OS does not tell
    truth = lab_truth(fleet.config)["cameras"]
    assert {c: truth[c]["lock_signalled"] for c in PROTECTED} == {
        "hik": True,
        "dahua": True,
        "axis": False,
    }


async def test_a_locked_account_gets_the_onvif_lock_fault(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(
        '[[camera]]\nid = "gen"\npersona = "onvif-generic"\n'
        "lockout = {threshold = 2, window_s = 30, lock_s = 60}\n"
    )
    node = fleet["gen"]
    faults = []
    for password in ("wrong", "wrong", "123456"):
        cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", password, wsdl_dir=WSDL)
        try:
            dev = await cam.create_devicemgmt_service()
            with pytest.raises(Fault) as caught:
                await dev.GetDeviceInformation()
            subcodes = [code.localname for code in caught.value.subcodes or []]
            faults.append((caught.value.message, subcodes))
        finally:
            await cam.close()
    assert node.camera.locked("admin")
    assert faults == [
        ("Sender not Authorized", ["NotAuthorized"]),
        ("Account locked", ["NotAuthorized", "AccountLocked"]),  # the failure that locks
        ("Account locked", ["NotAuthorized", "AccountLocked"]),  # the right password, locked
    ]
