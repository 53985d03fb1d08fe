"""Record vendor API answers from the camera lab into ``recorded/`` (run once, commit the files).

    .venv/bin/python -m tests.agent.vendors.record_lab

Starts the lab on loopback, asks every endpoint the adapters parse with the cameras' admin
credential (HTTP digest for the vendor APIs, WS-UsernameToken for ONVIF), and writes the bodies
byte for byte. The parser tests read only these files.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
from pathlib import Path

import httpx

from lab.config import parse_config
from lab.fleet import Fleet
from lab.testing import private_base

HERE = Path(__file__).parent / "recorded"
LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
ssh = true
upnp = true
p2p = true
hidden_admin = true
lockout = {threshold = 5, window_s = 30, lock_s = 600}
users = [{name = "admin", password = "Adm1n!pass", role = "admin"},
         {name = "op", password = "0perator!", role = "operator"},
         {name = "view", password = "V1ewer!x", role = "user"}]
[[camera]]
id = "hik-new"
persona = "hikvision"
not_activated = true
[[camera]]
id = "dahua"
persona = "dahua"
ddns = true
manual_time = true
users = [{name = "admin", password = "Adm1n!pass", role = "admin"},
         {name = "view", password = "V1ewer!x", role = "user"}]
[[camera]]
id = "axis"
persona = "axis"
ssh = true
p2p = true
users = [{name = "root", password = "Adm1n!pass", role = "admin"},
         {name = "op", password = "0perator!", role = "operator"},
         {name = "view", password = "V1ewer!x", role = "user"}]
[[camera]]
id = "gen"
persona = "onvif-generic"
ddns = true
users = [{name = "admin", password = "Adm1n!pass", role = "admin"}]
"""
DIRS = {
    "hik": "hikvision",
    "hik-new": "hikvision",
    "dahua": "dahua",
    "axis": "axis",
    "gen": "generic",
}
ADMIN = {"hik": "admin", "hik-new": "admin", "dahua": "admin", "axis": "root", "gen": "admin"}
PASSWORD = {"hik-new": "12345"}

HTTP_GETS: dict[str, dict[str, str]] = {
    "hik": {
        "deviceInfo.xml": "/ISAPI/System/deviceInfo",
        "users.xml": "/ISAPI/Security/users",
        "activateStatus.xml": "/SDK/activateStatus",
        "telnetd.xml": "/ISAPI/System/Network/telnetd",
        "ssh.xml": "/ISAPI/System/Network/ssh",
        "upnp.xml": "/ISAPI/System/Network/UPnP",
        "ezviz.xml": "/ISAPI/System/Network/EZVIZ",
        "illegalLoginLock.xml": "/ISAPI/Security/illegalLoginLock",
    },
    "hik-new": {"activateStatus-not-activated.xml": "/SDK/activateStatus"},
    "dahua": {
        "getSoftwareVersion.txt": "/cgi-bin/magicBox.cgi?action=getSoftwareVersion",
        "getDeviceType.txt": "/cgi-bin/magicBox.cgi?action=getDeviceType",
        "getSerialNo.txt": "/cgi-bin/magicBox.cgi?action=getSerialNo",
        "getSystemInfo.txt": "/cgi-bin/magicBox.cgi?action=getSystemInfo",
        "getUserInfoAll.txt": "/cgi-bin/userManager.cgi?action=getUserInfoAll",
        "config-UPnP.txt": "/cgi-bin/configManager.cgi?action=getConfig&name=UPnP",
        "config-T2UServer.txt": "/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer",
        "config-SSHD.txt": "/cgi-bin/configManager.cgi?action=getConfig&name=SSHD",
        "config-DDNS.txt": "/cgi-bin/configManager.cgi?action=getConfig&name=DDNS",
        "config-NTP.txt": "/cgi-bin/configManager.cgi?action=getConfig&name=NTP",
        "getCurrentTime.txt": "/cgi-bin/global.cgi?action=getCurrentTime",
    },
    "axis": {
        "param-Properties.txt": "/axis-cgi/param.cgi?action=list&group=Properties",
        "param-Brand.txt": "/axis-cgi/param.cgi?action=list&group=Brand",
        "param-Network.SSH.txt": "/axis-cgi/param.cgi?action=list&group=Network.SSH",
        "param-Network.UPnP.txt": "/axis-cgi/param.cgi?action=list&group=Network.UPnP",
        "param-RemoteService.txt": "/axis-cgi/param.cgi?action=list&group=RemoteService",
        "param-Time.txt": "/axis-cgi/param.cgi?action=list&group=Time",
        "pwdgrp.txt": "/axis-cgi/pwdgrp.cgi?action=get",
    },
}
AXIS_JSON = {
    "basicdeviceinfo-getAllProperties.json": "getAllProperties",
    "basicdeviceinfo-getAllUnrestrictedProperties.json": "getAllUnrestrictedProperties",
}
SOAP = (
    '<?xml version="1.0" encoding="UTF-8"?><s:Envelope '
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema"><s:Header>{}</s:Header>'
    "<s:Body>{}</s:Body></s:Envelope>"
)
WSSE = (
    '<Security xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
    "<UsernameToken><Username>{user}</Username><Password "
    'Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">'
    "{digest}</Password><Nonce>{nonce}</Nonce>"
    '<Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
    "{created}</Created></UsernameToken></Security>"
)


def wsse(user: str, password: str) -> str:
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha1(nonce + created.encode() + password.encode()).digest()  # noqa: S324
    return WSSE.format(
        user=user,
        digest=base64.b64encode(digest).decode(),
        nonce=base64.b64encode(nonce).decode(),
        created=created,
    )


STREAM_SETUP = (
    "<tt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP"
    "</tt:Protocol></tt:Transport></tt:StreamSetup>"
)
ONVIF_CALLS = {
    "GetDeviceInformation": ("device", "<tds:GetDeviceInformation/>"),
    "GetSystemDateAndTime": ("device", "<tds:GetSystemDateAndTime/>"),
    "GetUsers": ("device", "<tds:GetUsers/>"),
    "GetNetworkProtocols": ("device", "<tds:GetNetworkProtocols/>"),
    "GetDiscoveryMode": ("device", "<tds:GetDiscoveryMode/>"),
    "GetDynamicDNS": ("device", "<tds:GetDynamicDNS/>"),
    "GetNTP": ("device", "<tds:GetNTP/>"),
    "GetProfiles": ("media", "<trt:GetProfiles/>"),
    "GetStreamUri": (
        "media",
        f"<trt:GetStreamUri>{STREAM_SETUP}<trt:ProfileToken>Profile_1</trt:ProfileToken>"
        "</trt:GetStreamUri>",
    ),
}
ONVIF_CAMERAS = ("gen", "hik", "dahua", "axis")


async def record() -> None:
    config = parse_config(LAB)
    config = type(config)(
        type(config.lab)(loopback_base=private_base()), config.cameras, config.routers
    )
    fleet = await Fleet.start(config)
    try:
        for cam_id, calls in HTTP_GETS.items():
            node = fleet[cam_id]
            auth = httpx.DigestAuth(ADMIN[cam_id], PASSWORD.get(cam_id, "Adm1n!pass"))
            async with httpx.AsyncClient(base_url=node.url(), auth=auth) as client:
                for name, path in calls.items():
                    reply = await client.get(path)
                    reply.raise_for_status()
                    write(DIRS[cam_id], name, reply.content)
        axis = fleet["axis"]
        async with httpx.AsyncClient(
            base_url=axis.url(), auth=httpx.DigestAuth("root", "Adm1n!pass")
        ) as client:
            for name, method in AXIS_JSON.items():
                body = {"apiVersion": "1.3", "method": method}
                reply = await client.post("/axis-cgi/basicdeviceinfo.cgi", json=body)
                reply.raise_for_status()
                write("axis", name, reply.content)
        for cam_id in ONVIF_CAMERAS:
            node = fleet[cam_id]
            async with httpx.AsyncClient() as client:
                for op, (service, call) in ONVIF_CALLS.items():
                    url = node.url(f"/onvif/{service}_service")
                    reply = await client.post(
                        url,
                        content=SOAP.format(wsse(ADMIN[cam_id], "Adm1n!pass"), call),
                        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
                    )
                    reply.raise_for_status()
                    write("onvif", f"{DIRS[cam_id]}-{op}.xml", reply.content)
            async with httpx.AsyncClient() as client:
                reply = await client.post(
                    node.url("/onvif/device_service"),
                    content=SOAP.format("", "<tds:GetUsers/>"),
                    headers={"Content-Type": "application/soap+xml; charset=utf-8"},
                )
                write("onvif", f"{DIRS[cam_id]}-fault-NotAuthorized.xml", reply.content)
    finally:
        await fleet.stop()


def write(vendor: str, name: str, body: bytes) -> None:
    path = HERE / vendor / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    print(f"recorded {path.relative_to(HERE.parent)} ({len(body)} bytes)")


if __name__ == "__main__":
    asyncio.run(record())
