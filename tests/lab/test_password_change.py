"""The vendor password changes (ISAPI users, Dahua modifyPassword, VAPIX pwdgrp update) change
the camera's one credential: HTTP digest, ONVIF and RTSP all take the new password and refuse
the old one; a change without the proof the vendor asks for is refused; the request log never
holds a password. ONVIF SetUser can be turned off per camera."""

from __future__ import annotations

import asyncio
import os

import httpx
import onvif
import pytest
from zeep.exceptions import Fault

from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory

pytestmark = pytest.mark.integration

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
OLD, NEW = "Old-pass.1", "New-pass.2"
LAB = "".join(
    f"""
[[camera]]
id = "{persona}"
persona = "{persona}"
onvif_user_management = false
users = [{{name = "admin", password = "{OLD}", role = "admin"}},
         {{name = "op", password = "Op-pass.3", role = "operator"}}]
"""
    for persona in ("hikvision", "dahua", "axis")
)
PROTECTED = {
    "hikvision": "/ISAPI/Security/users",
    "dahua": "/cgi-bin/userManager.cgi?action=getUserInfoAll",
    "axis": "/axis-cgi/pwdgrp.cgi?action=get",
}


def _hik_user(password: str, login_password: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<User version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">'
        f"<id>1</id><userName>admin</userName><password>{password}</password>"
        f"<loginPassword>{login_password}</loginPassword></User>"
    ).encode()


async def change(client: httpx.AsyncClient, node: CameraNode, proof: str) -> httpx.Response:
    """The persona's password change of admin to NEW; ``proof`` is the current password the
    vendor asks for (Axis asks none: a wrong proof there names an unknown account)."""
    persona = node.id
    if persona == "hikvision":
        return await client.put(
            node.url("/ISAPI/Security/users/1"),
            content=_hik_user(NEW, proof),
            headers={"Content-Type": "application/xml"},
        )
    if persona == "dahua":
        query = {"action": "modifyPassword", "name": "admin", "pwd": NEW, "pwdOld": proof}
        return await client.get(node.url("/cgi-bin/userManager.cgi"), params=query)
    user = "admin" if proof == OLD else "nobody"
    query = {"action": "update", "user": user, "pwd": NEW}
    return await client.get(node.url("/axis-cgi/pwdgrp.cgi"), params=query)


async def _http_ok(node: CameraNode, password: str) -> bool:
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", password)) as client:
        reply = await client.get(node.url(PROTECTED[node.id]))
    return reply.status_code == 200


async def _onvif_ok(node: CameraNode, password: str) -> bool:
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", password, wsdl_dir=WSDL)
    try:
        device = await cam.create_devicemgmt_service()
        await device.GetDeviceInformation()
    except (Fault, onvif.exceptions.ONVIFError):
        return False
    finally:
        await cam.close()
    return True


async def _rtsp_ok(fleet: Fleet, node: CameraNode, password: str) -> bool:
    url = f"rtsp://admin:{password}@{node.host}:{node.ports['rtsp']}"
    url += node.spec.persona.stream_uris[0]
    probe = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries"]
    done = await fleet.run_in_agent([*probe, "stream=codec_name", "-of", "csv=p=0", url])
    return done.stdout.strip() in {"h264", "mjpeg"}


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


@pytest.mark.parametrize("persona", ["hikvision", "dahua", "axis"])
async def test_vendor_password_change_reaches_every_interface(fleet: Fleet, persona: str) -> None:
    node = fleet[persona]
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", OLD)) as client:
        refused = await change(client, node, "not-the-password")
        assert refused.status_code != 200 or refused.text.startswith("Error")
        assert node.camera.users["admin"].password == OLD
        done = await change(client, node, OLD)
    assert done.status_code == 200
    assert {"hikvision": "<statusCode>1<", "dahua": "OK", "axis": "Modified account admin."}[
        persona
    ] in done.text
    assert node.camera.users["admin"].password == NEW
    assert node.camera.users["op"].password == "Op-pass.3"
    async with asyncio.timeout(60):
        assert (await _http_ok(node, NEW), await _http_ok(node, OLD)) == (True, False)
        assert (await _onvif_ok(node, NEW), await _onvif_ok(node, OLD)) == (True, False)
        new, old = await asyncio.gather(_rtsp_ok(fleet, node, NEW), _rtsp_ok(fleet, node, OLD))
    assert (new, old) == (True, False)
    logged = " ".join(record.target for record in node.camera.log)
    assert "modifyPassword" in logged or persona != "dahua"
    assert NEW not in logged
    assert OLD not in logged


async def test_onvif_set_user_can_be_turned_off(fleet: Fleet) -> None:
    node = fleet["dahua"]
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", OLD, wsdl_dir=WSDL)
    try:
        device = await cam.create_devicemgmt_service()
        with pytest.raises(Fault, match="User management is disabled"):
            await device.SetUser(
                {"User": [{"Username": "admin", "Password": NEW, "UserLevel": "Administrator"}]}
            )
    finally:
        await cam.close()
    assert node.camera.users["admin"].password == OLD
