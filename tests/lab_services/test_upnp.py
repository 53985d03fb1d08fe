from __future__ import annotations

import asyncio
import socket
import sys

import httpx
import pytest
from lxml import etree

from lab import netns
from lab.services.igd import CONTROL_PATH, WAN_IP, start_igd
from lab.services.ssdp import search_target, start_ssdp
from tests.lab_services.sockets import port_of, tcp, udp

HOST = "127.77.4.10"
UPNP = "{urn:schemas-upnp-org:device-1-0}"
MAPPINGS = [(8080, "192.168.1.64", 80), (554, "192.168.1.64", 554), (8000, "192.168.1.65", 8000)]


async def m_search(port: int, target: str) -> list[dict[str, str]]:
    """Unicast M-SEARCH (no multicast on loopback) and the replies' headers."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        client.bind((HOST, 0))
        request = (
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
            f'MAN: "ssdp:discover"\r\nMX: 1\r\nST: {target}\r\n\r\n'
        )
        await loop.sock_sendto(client, request.encode(), (HOST, port))
        data = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
    replies = []
    for block in data.decode().split("\r\n\r\n"):
        if block:
            lines = block.split("\r\n")
            assert lines[0] == "HTTP/1.1 200 OK"
            replies.append(
                {k.upper(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
            )
    return replies


async def test_camera_ssdp_and_description() -> None:
    u, h = udp(HOST), tcp(HOST)
    service = await start_ssdp(
        u,
        h,
        friendly_name="Front door",
        manufacturer="Hikvision",
        model="DS-2CD2143G2-I",
        uuid="2a7d1b10-0000-4000-8000-001122334455",
        server_banner="Linux/3.0 UPnP/1.0 IPCam",
    )
    try:
        [reply] = await m_search(port_of(u), "urn:schemas-upnp-org:device:Basic:1")
        assert (
            reply["USN"]
            == "uuid:2a7d1b10-0000-4000-8000-001122334455::urn:schemas-upnp-org:device:Basic:1"
        )
        assert reply["SERVER"] == "Linux/3.0 UPnP/1.0 IPCam"
        assert len(await m_search(port_of(u), "ssdp:all")) == 3
        async with httpx.AsyncClient() as client:
            response = await client.get(reply["LOCATION"])
        assert response.headers["server"] == "Linux/3.0 UPnP/1.0 IPCam"
        device = etree.fromstring(response.content).find(f"{UPNP}device")
        assert device is not None
        assert device.findtext(f"{UPNP}friendlyName") == "Front door"
        assert device.findtext(f"{UPNP}manufacturer") == "Hikvision"
        assert device.findtext(f"{UPNP}modelName") == "DS-2CD2143G2-I"
    finally:
        await service.close()


def soap_call(action: str, **args: str | int) -> tuple[dict[str, str], str]:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    body = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action} xmlns:u="{WAN_IP}">{inner}</u:{action}></s:Body></s:Envelope>'
    )
    headers = {"SOAPAction": f'"{WAN_IP}#{action}"', "Content-Type": 'text/xml; charset="utf-8"'}
    return headers, body


def fields(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml)
    return {etree.QName(e).localname: (e.text or "") for e in root.iter() if len(e) == 0}


async def test_igd_walks_port_mappings_until_713() -> None:
    u, h = udp(HOST), tcp(HOST)
    service = await start_igd(u, h, mappings=MAPPINGS, external_ip="203.0.113.7")
    try:
        [reply] = await m_search(port_of(u), "urn:schemas-upnp-org:service:WANIPConnection:1")
        async with httpx.AsyncClient(timeout=5) as client:
            description = (await client.get(reply["LOCATION"])).content
            control = next(e.text for e in etree.fromstring(description).iter(f"{UPNP}controlURL"))
            assert control == CONTROL_PATH
            url = httpx.URL(reply["LOCATION"]).join(control)
            response = await client.post(
                url, headers=(call := soap_call("GetExternalIPAddress"))[0], content=call[1]
            )
            assert fields(response.content)["NewExternalIPAddress"] == "203.0.113.7"
            found = []
            for index in range(100):
                headers, body = soap_call("GetGenericPortMappingEntry", NewPortMappingIndex=index)
                response = await client.post(url, headers=headers, content=body)
                if response.status_code != 200:
                    break
                got = fields(response.content)
                found.append(
                    (
                        int(got["NewExternalPort"]),
                        got["NewInternalClient"],
                        int(got["NewInternalPort"]),
                    )
                )
            assert response.status_code == 500
            assert fields(response.content)["errorCode"] == "713"
            assert found == MAPPINGS
            headers, body = soap_call(
                "GetSpecificPortMappingEntry",
                NewRemoteHost="",
                NewExternalPort=554,
                NewProtocol="TCP",
            )
            assert (
                fields((await client.post(url, headers=headers, content=body)).content)[
                    "NewInternalClient"
                ]
                == "192.168.1.64"
            )
            headers, body = soap_call(
                "GetSpecificPortMappingEntry",
                NewRemoteHost="",
                NewExternalPort=9,
                NewProtocol="TCP",
            )
            assert (
                fields((await client.post(url, headers=headers, content=body)).content)["errorCode"]
                == "714"
            )
            headers, body = soap_call("AddPortMapping")
            assert (
                fields((await client.post(url, headers=headers, content=body)).content)["errorCode"]
                == "401"
            )
    finally:
        await service.close()


@pytest.mark.parametrize(
    "junk", [b"", b"NOTIFY * HTTP/1.1\r\n\r\n", b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n"]
)
def test_ssdp_ignores_non_searches(junk: bytes) -> None:
    assert search_target(junk) is None


CAMS = ["10.99.0.11", "10.99.0.12"]
SEARCH = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
s.sendto(b'M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\nMAN: "ssdp:discover"\\r\\n'
         b'MX: 1\\r\\nST: upnp:rootdevice\\r\\n\\r\\n', ("239.255.255.250", 1900))
end = time.monotonic() + 1.5
while time.monotonic() < end:
    try:
        data, _ = s.recvfrom(4096)
    except TimeoutError:
        continue
    print([l for l in data.decode().split("\\r\\n") if l.upper().startswith("LOCATION")][0])
"""


@pytest.mark.skipif(not netns.available(), reason="ip netns is not permitted here (needs root)")
async def test_multicast_m_search_in_the_lab() -> None:
    async with netns.NetnsLab(CAMS) as lab:
        binder = lab.binder()
        services = [
            await start_ssdp(
                binder.udp(ip, 1900),
                binder.tcp(ip, 49152),
                friendly_name=ip,
                manufacturer="Dahua",
                model="IPC-HDW",
                uuid=f"00000000-0000-4000-8000-0000000000{ip[-2:]}",
                server_banner="IPC",
            )
            for ip in CAMS
        ]
        try:
            async with asyncio.timeout(20):
                done = await netns.arun_in(lab.agent.namespace, [sys.executable, "-c", SEARCH])
        finally:
            for service in services:
                await service.close()
    locations = sorted(line.split(":", 1)[1].strip() for line in done.stdout.splitlines())
    assert locations == [f"http://{ip}:49152/upnp/description.xml" for ip in CAMS], done.stderr
