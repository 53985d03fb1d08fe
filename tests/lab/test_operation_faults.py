"""Faults aimed at one ONVIF operation, and ports that accept TCP and never answer, while the
rest of the camera keeps working."""

from __future__ import annotations

import asyncio
import os

import httpx
import onvif
import pytest

from lab.config import parse_config
from lab.errors import ConfigError
from lab.fleet import CameraNode
from lab.testing import LabFactory

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
SOAP = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:{op}/></s:Body></s:Envelope>'
)
LAB = """
[[camera]]
id = "cam"
persona = "onvif-generic"
users = [{name = "admin", password = "Adm1n!pass"}]
[camera.onvif_faults.GetCapabilities]
garbage = "truncated"
[camera.onvif_faults.GetServices]
soap_fault = "ter:ActionNotSupported"
[camera.onvif_faults.GetHostname]
hang = true
[camera.onvif_faults.GetServiceCapabilities]
drop = true
[camera.onvif_faults.GetNTP]
slow_ms = 400
[[camera]]
id = "hik"
persona = "hikvision"
[camera.onvif_faults.GetStreamUri]
garbage = "truncated"
[[camera]]
id = "quiet"
persona = "hikvision"
silent_ports = ["rtsp", "sdk"]
"""


@pytest.fixture
async def nodes(lab_fleet: LabFactory) -> dict[str, CameraNode]:
    return (await lab_fleet(LAB)).cameras


async def soap(client: httpx.AsyncClient, node: CameraNode, op: str) -> httpx.Response:
    return await client.post(
        node.url("/onvif/device_service"),
        content=SOAP.format(op=op),
        headers={"Content-Type": "application/soap+xml"},
    )


async def test_each_seeded_operation_fails_its_own_way(nodes: dict[str, CameraNode]) -> None:
    node = nodes["cam"]
    async with httpx.AsyncClient(timeout=5) as client:
        intact = await soap(client, node, "GetSystemDateAndTime")
        assert intact.status_code == 200
        assert intact.text.rstrip().endswith("Envelope>")
        cut = await soap(client, node, "GetCapabilities")
        assert cut.status_code == 200
        assert not cut.text.rstrip().endswith("Envelope>")
        unsupported = await soap(client, node, "GetServices")
        assert unsupported.status_code == 500
        assert "ter:ActionNotSupported" in unsupported.text
        with pytest.raises(httpx.RemoteProtocolError):
            await soap(client, node, "GetServiceCapabilities")
        started = asyncio.get_running_loop().time()
        assert (await soap(client, node, "GetNTP")).status_code in (400, 401)  # needs a login
        assert asyncio.get_running_loop().time() - started >= 0.4
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await soap(client, node, "GetHostname")


async def test_a_real_client_fails_on_the_seeded_operation_only(
    nodes: dict[str, CameraNode],
) -> None:
    node = nodes["hik"]
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", "12345", wsdl_dir=WSDL)
    try:
        await cam.update_xaddrs()
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        # zeep recovers what it can of the cut answer: no URI comes out of it
        cut = await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": profiles[0].token})
        assert getattr(cut, "Uri", None) is None
        info = await (await cam.create_devicemgmt_service()).GetDeviceInformation()
    finally:
        await cam.close()
    assert info.Model == node.spec.model


async def test_a_silent_port_accepts_and_never_answers(nodes: dict[str, CameraNode]) -> None:
    node = nodes["quiet"]
    reader, writer = await asyncio.open_connection(node.host, node.ports["rtsp"])
    try:
        writer.write(b"OPTIONS / RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 1.0)
    finally:
        writer.close()
    async with httpx.AsyncClient(timeout=5) as client:  # the other ports work
        answer = await client.get(node.url("/SDK/activateStatus"))
    assert answer.status_code == 200


def test_silent_ports_must_be_tcp_services_of_the_persona() -> None:
    with pytest.raises(ConfigError, match=r"silent_ports.*'snmp'"):
        parse_config('[[camera]]\nid = "c"\npersona = "hikvision"\nsilent_ports = ["snmp"]\n')
