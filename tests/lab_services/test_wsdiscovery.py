from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from wsdiscovery import QName
from wsdiscovery.actions.probe import constructProbe
from wsdiscovery.message import createSOAPMessage, parseSOAPMessage
from wsdiscovery.scope import Scope

from lab import netns
from lab.services.wsdiscovery import DN, TDS, scope_matches, start_wsdiscovery
from tests.lab_services.sockets import port_of, udp

HOST = "127.77.5.10"
UUID = "5f5a69c2-e0ae-504f-829b-00fbd0e1d1e5"
SCOPES = [
    "onvif://www.onvif.org/type/video_encoder",
    "onvif://www.onvif.org/hardware/DS-2CD2143G2-I",
    "onvif://www.onvif.org/name/HIKVISION",
    "onvif://www.onvif.org/location/city/hanoi",
]


async def unicast_probe(port: int, types: list[QName], scopes: list[str]) -> list[object]:
    """A Probe built and a reply parsed by the WSDiscovery package, sent by unicast only."""
    message = createSOAPMessage(constructProbe(types, [Scope(s) for s in scopes]))
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        client.bind((HOST, 0))
        await loop.sock_sendto(client, message.encode(), (HOST, port))
        try:
            data = await asyncio.wait_for(loop.sock_recv(client, 65536), 0.5)
        except TimeoutError:
            return []
    env = parseSOAPMessage(data, HOST)
    matches: list[object] = env.getProbeResolveMatches()
    return matches


@pytest.fixture
async def responder() -> AsyncIterator[int]:
    sock = udp(HOST)
    service = await start_wsdiscovery(
        sock, uuid=UUID, xaddrs=[f"http://{HOST}:8080/onvif/device_service"], scopes=SCOPES
    )
    yield port_of(sock)
    await service.close()


async def test_unicast_probe_on_loopback(responder: int) -> None:
    nvt = QName(DN, "NetworkVideoTransmitter")
    [match] = await unicast_probe(responder, [nvt], ["onvif://www.onvif.org/name"])
    assert match.getEPR() == f"urn:uuid:{UUID}"  # type: ignore[attr-defined]
    assert match.getXAddrs() == [f"http://{HOST}:8080/onvif/device_service"]  # type: ignore[attr-defined]
    assert {str(s) for s in match.getScopes()} == set(SCOPES)  # type: ignore[attr-defined]
    types = {(t.getNamespace(), t.getLocalname()) for t in match.getTypes()}  # type: ignore[attr-defined]
    assert types == {(DN, "NetworkVideoTransmitter"), (TDS, "Device")}


async def test_non_matching_probes_get_no_answer(responder: int) -> None:
    printer = QName("http://schemas.microsoft.com/windows/2006/08/wdp/print", "PrintDeviceType")
    assert await unicast_probe(responder, [printer], []) == []
    assert await unicast_probe(responder, [], ["onvif://www.onvif.org/name/AXIS"]) == []


@pytest.mark.parametrize(
    ("wanted", "offered", "ok"),
    [
        ("onvif://www.onvif.org/name", "onvif://www.onvif.org/name/HIK", True),
        ("onvif://www.onvif.org/name/HIK", "onvif://www.onvif.org/name/HIK", True),
        ("onvif://www.onvif.org/na", "onvif://www.onvif.org/name/HIK", False),
    ],
)
def test_scope_matching(wanted: str, offered: str, ok: bool) -> None:
    assert scope_matches(wanted, offered) is ok


CLIENT = """
import json
from wsdiscovery import QName
from wsdiscovery.discovery import ThreadedWSDiscovery
wsd = ThreadedWSDiscovery()
wsd.start()
try:
    found = wsd.searchServices(
        types=[QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter")],
        timeout=2,
    )
    print(json.dumps({s.getEPR(): s.getXAddrs() for s in found}))
finally:
    wsd.stop()
"""


@pytest.mark.skipif(not netns.available(), reason="ip netns is not permitted here (needs root)")
async def test_multicast_probe_from_the_agent_namespace() -> None:
    cameras = {
        "10.99.0.11": "1c0ffee0-0000-4000-8000-000000000011",
        "10.99.0.12": "1c0ffee0-0000-4000-8000-000000000012",
    }
    async with netns.NetnsLab(list(cameras)) as lab:
        binder = lab.binder()
        services = [
            await start_wsdiscovery(
                binder.udp(ip, 3702),
                uuid=uid,
                xaddrs=[f"http://{ip}/onvif/device_service"],
                scopes=SCOPES,
            )
            for ip, uid in cameras.items()
        ]
        try:
            async with asyncio.timeout(30):
                done = await netns.arun_in(lab.agent.namespace, [sys.executable, "-c", CLIENT])
        finally:
            for service in services:
                await service.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        f"urn:uuid:{uid}": [f"http://{ip}/onvif/device_service"] for ip, uid in cameras.items()
    }
