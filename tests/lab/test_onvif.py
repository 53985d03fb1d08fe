"""ONVIF fidelity: a real client (onvif-zeep-async) against the simulated cameras."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from typing import Any

import httpx
import onvif
import pytest
from zeep.exceptions import Fault

from lab.fleet import CameraNode
from lab.testing import LabFactory

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
LAB = """
[[camera]]
id = "gen"
persona = "onvif-generic"
users = [{name = "admin", password = "Adm1n!pass", role = "admin"},
         {name = "view", password = "V1ew!pass", role = "user"}]
onvif_noauth_ops = ["GetStreamUri"]
[[camera]]
id = "hik"
persona = "hikvision"
clock_skew_s = -900
"""


@pytest.fixture
async def nodes(lab_fleet: LabFactory) -> dict[str, CameraNode]:
    return (await lab_fleet(LAB)).cameras


async def _camera(node: CameraNode, user: str | None, password: str | None) -> Any:
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], user, password, wsdl_dir=WSDL)
    await cam.update_xaddrs()
    return cam


async def test_every_operation_parses(nodes: dict[str, CameraNode]) -> None:
    node = nodes["gen"]
    cam = await _camera(node, "admin", "Adm1n!pass")
    try:
        dev = await cam.create_devicemgmt_service()
        info = await dev.GetDeviceInformation()
        assert (info.Manufacturer, info.Model) == ("IPCAM", "IPC-1080P")
        assert info.FirmwareVersion == "V2.1.4 build 20220301"
        caps = await dev.GetCapabilities({"Category": "All"})
        assert caps.Media.XAddr == node.url("/onvif/media_service")
        services = await dev.GetServices({"IncludeCapability": False})
        assert {s.Namespace for s in services} >= {"http://www.onvif.org/ver10/media/wsdl"}
        clock = await dev.GetSystemDateAndTime()
        assert clock.DateTimeType == "NTP"
        protocols = {p.Name: (p.Enabled, p.Port[0]) for p in await dev.GetNetworkProtocols()}
        assert protocols["HTTP"] == (True, node.ports["http"])
        assert protocols["HTTPS"][0] is False
        interfaces = await dev.GetNetworkInterfaces()
        assert interfaces[0].IPv4.Config.Manual[0].Address == node.host
        users = {u.Username: u.UserLevel for u in await dev.GetUsers()}
        assert users == {"admin": "Administrator", "view": "User"}
        assert (await dev.GetNTP()).NTPManual[0].DNSname == "pool.ntp.org"
        scopes = [s.ScopeItem for s in await dev.GetScopes()]
        assert "onvif://www.onvif.org/hardware/IPC-1080P" in scopes
        assert await dev.GetDiscoveryMode() == "Discoverable"
        assert (await dev.GetDynamicDNS()).Type == "NoUpdate"
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        assert [p.token for p in profiles] == ["Profile_1", "Profile_2"]
        uri = await media.GetStreamUri(
            {
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                "ProfileToken": "Profile_1",
            }
        )
        assert uri.Uri == f"rtsp://{node.host}:{node.ports['rtsp']}/stream1"
        await dev.SetUser(
            {"User": [{"Username": "view", "Password": "N3w!pass", "UserLevel": "User"}]}
        )
        assert node.camera.users["view"].password == "N3w!pass"
        upgrade = await dev.StartFirmwareUpgrade()
        assert upgrade.UploadUri.startswith(node.url("/onvif/firmware/"))
        assert upgrade.UploadDelay == dt.timedelta(0)
    finally:
        await cam.close()
    schemes = {r.auth for r in node.camera.log if r.target == "GetDeviceInformation"}
    assert schemes == {"wsse-digest"}


async def test_wrong_password_faults(nodes: dict[str, CameraNode]) -> None:
    cam = await _camera(nodes["gen"], "admin", "wrong")
    try:
        dev = await cam.create_devicemgmt_service()
        with pytest.raises(Fault, match="not Authorized"):
            await dev.GetDeviceInformation()
    finally:
        await cam.close()


async def test_role_is_enforced(nodes: dict[str, CameraNode]) -> None:
    cam = await _camera(nodes["gen"], "view", "V1ew!pass")
    try:
        dev = await cam.create_devicemgmt_service()
        assert (await dev.GetDeviceInformation()).Model == "IPC-1080P"
        with pytest.raises(Fault, match="not Authorized"):
            await dev.GetUsers()
    finally:
        await cam.close()


def _soap(op: str, ns: str = "http://www.onvif.org/ver10/device/wsdl", header: str = "") -> str:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        f'<s:Header>{header}</s:Header><s:Body><{op} xmlns="{ns}"/></s:Body></s:Envelope>'
    )


def _token(user: str, password: str, created: dt.datetime, nonce: bytes) -> str:
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    raw = nonce + stamp.encode() + password.encode()
    digest = base64.b64encode(hashlib.sha1(raw).digest())  # noqa: S324  # the WS-Security digest
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    kind = (
        "http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
    )
    return (
        f'<Security xmlns="{wsse}"><UsernameToken><Username>{user}</Username>'
        f'<Password Type="{kind}">{digest.decode()}</Password>'
        f"<Nonce>{base64.b64encode(nonce).decode()}</Nonce>"
        f'<Created xmlns="{wsu}">{stamp}</Created></UsernameToken></Security>'
    )


@pytest.mark.parametrize(
    ("op", "status"),
    [
        ("GetSystemDateAndTime", 200),
        ("GetServices", 200),
        ("GetCapabilities", 200),
        ("GetHostname", 200),
        ("GetDeviceInformation", 400),
        ("GetUsers", 400),
        ("GetNetworkInterfaces", 400),
        ("GetStreamUri", 400),  # seeded open, but without a ProfileToken: InvalidArgVal
        ("GetProfiles", 400),
        ("FrobnicateWidget", 500),
    ],
)
async def test_pre_auth_and_seeded_noauth(
    nodes: dict[str, CameraNode], op: str, status: int
) -> None:
    node = nodes["gen"]
    ns = "http://www.onvif.org/ver10/media/wsdl" if op in ("GetStreamUri", "GetProfiles") else None
    body = _soap(op, ns) if ns else _soap(op)
    async with httpx.AsyncClient() as client:
        reply = await client.post(node.url("/onvif/device_service"), content=body)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/soap+xml; charset=utf-8"
    if op == "GetStreamUri":
        assert "ter:InvalidArgVal" in reply.text
    elif status == 400:
        assert "ter:NotAuthorized" in reply.text
    elif status == 500:
        assert "ter:ActionNotSupported" in reply.text


async def test_hikvision_answers_401_with_digest_challenge(nodes: dict[str, CameraNode]) -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            nodes["hik"].url("/onvif/device_service"), content=_soap("GetUsers")
        )
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Digest realm=")
    assert "ter:NotAuthorized" in reply.text


async def test_replayed_and_stale_tokens_are_rejected(nodes: dict[str, CameraNode]) -> None:
    node = nodes["gen"]
    now = node.camera.now()
    fresh = _token("admin", "Adm1n!pass", now, b"nonce-1-abcdefgh")
    stale = _token("admin", "Adm1n!pass", now - dt.timedelta(minutes=15), b"nonce-2-abcdefgh")
    async with httpx.AsyncClient() as client:
        url = node.url("/onvif/device_service")
        first = await client.post(url, content=_soap("GetDeviceInformation", header=fresh))
        replay = await client.post(url, content=_soap("GetDeviceInformation", header=fresh))
        old = await client.post(url, content=_soap("GetDeviceInformation", header=stale))
    assert (first.status_code, replay.status_code, old.status_code) == (200, 400, 400)


async def test_skewed_camera_needs_adjusted_time(nodes: dict[str, CameraNode]) -> None:
    node = nodes["hik"]
    cam = onvif.ONVIFCamera(
        node.host, node.ports["http"], "admin", "12345", wsdl_dir=WSDL, adjust_time=True
    )
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        assert (await dev.GetDeviceInformation()).FirmwareVersion == "V5.7.3 build 221114"
    finally:
        await cam.close()


async def test_http_digest_is_accepted_for_onvif(nodes: dict[str, CameraNode]) -> None:
    node = nodes["hik"]  # answers 401 + a digest challenge, so an HTTP Digest client can start
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", "12345")) as client:
        reply = await client.post(
            node.url("/onvif/device_service"), content=_soap("GetDeviceInformation")
        )
    assert reply.status_code == 200
    assert "<tds:Model>DS-2CD2143G2-I</tds:Model>" in reply.text
    assert node.camera.log[-1].auth == "digest"
