"""Multicast discovery and the sweep inside lab namespaces (10.99.0.x), run from the agent's
namespace; nothing here touches the caller's network."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import pytest

from lab import netns
from lab.services import Service
from lab.services.banners import start_banner
from lab.services.ssdp import start_ssdp
from lab.services.vendordiscovery import DeviceFacts, start_dhdiscover, start_sadp
from lab.services.wsdiscovery import start_wsdiscovery

pytestmark = pytest.mark.skipif(
    not netns.available(), reason="ip netns is not permitted here (needs root or a userns)"
)
CAMERAS = {"10.99.0.11": "1c0ffee0-0000-4000-8000-000000000011", "10.99.0.12": None}
AGENT = """
import asyncio, ipaddress, json
from agent.inventory.discover import Scope, ssdp_hosts, sweep, ws_discovery_hosts
scope = Scope((ipaddress.IPv4Network("10.99.0.0/24"),))
async def main():
    wsd = await ws_discovery_hosts(scope, window_s=1.0, multicast=True)
    upnp = await ssdp_hosts(scope, window_s=1.0, multicast=True)
    swept = await sweep(ipaddress.IPv4Network("10.99.0.8/29"), scope, timeout_s=0.5)
    print(json.dumps({
        "wsd": sorted([h.address, h.endpoint] for h in wsd),
        "ssdp": sorted({h.address for h in upnp}),
        "sweep": sorted([h.address, list(h.open_ports)] for h in swept),
    }))
asyncio.run(main())
"""


async def test_multicast_discovery_and_sweep_in_namespaces() -> None:
    async with netns.NetnsLab(list(CAMERAS)) as lab:
        binder = lab.binder()
        services: list[Service] = [
            await start_wsdiscovery(
                binder.udp("10.99.0.11", 3702),
                uuid=str(CAMERAS["10.99.0.11"]),
                xaddrs=["http://10.99.0.11/onvif/device_service"],
                scopes=["onvif://www.onvif.org/name/HIKVISION"],
            ),
            await start_ssdp(
                binder.udp("10.99.0.12", 1900),
                binder.tcp("10.99.0.12", 49152),
                friendly_name="cam",
                manufacturer="Dahua",
                model="IPC",
                uuid="2c0ffee0-0000-4000-8000-000000000012",
                server_banner="Webs",
            ),
            await start_banner(binder.tcp("10.99.0.12", 554), "ssh", "SSH-2.0-x"),
        ]
        try:
            async with asyncio.timeout(60):
                done = await netns.arun_in(lab.agent.namespace, [sys.executable, "-c", AGENT])
        finally:
            for service in services:
                await service.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "wsd": [["10.99.0.11", f"urn:uuid:{CAMERAS['10.99.0.11']}"]],
        "ssdp": ["10.99.0.12"],
        "sweep": [["10.99.0.12", [554]]],
    }


VENDOR_AGENT = """
import asyncio, ipaddress, json
from agent.inventory.discover import Scope, vendor_hosts
scope = Scope((ipaddress.IPv4Network("10.99.0.0/24"),))
async def main():
    sadp = await vendor_hosts("sadp", scope, window_s=1.0, multicast=True)
    dh = await vendor_hosts("dhdiscover", scope, window_s=1.0, unicast=["10.99.0.12"])
    print(json.dumps(sorted([h.address, h.serial, h.mac, h.recorder] for h in [*sadp, *dh])))
asyncio.run(main())
"""


async def test_sadp_multicast_and_dhdiscover_in_namespaces() -> None:
    nvr = DeviceFacts(
        vendor="Hikvision",
        model="DS-7616NI-K2",
        serial="DS-7616NI-K220220518CCRRK00000001WCVU",
        mac="44:19:b6:00:00:11",
        host="10.99.0.11",
        http_port=80,
        sdk_port=8000,
        version="V4.62.210",
        build="build 220518",
        device_class="NVR",
        channels=16,
        activated=True,
    )
    cam = dataclasses.replace(
        nvr, vendor="KBVision", model="KX-A2111N2", serial="KB0000002PAZ", channels=0
    )
    cam = dataclasses.replace(cam, mac="9c:14:63:00:00:12", host="10.99.0.12", device_class="IPC")
    async with netns.NetnsLab(list(CAMERAS)) as lab:
        binder = lab.binder()
        services: list[Service] = [
            await start_sadp(binder.udp("10.99.0.11", 37020), nvr),
            await start_dhdiscover(binder.udp("10.99.0.12", 37810), cam),
        ]
        try:
            async with asyncio.timeout(60):
                argv = [sys.executable, "-c", VENDOR_AGENT]
                done = await netns.arun_in(lab.agent.namespace, argv)
        finally:
            for service in services:
                await service.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        ["10.99.0.11", nvr.serial, nvr.mac, True],
        ["10.99.0.12", cam.serial, cam.mac, False],
    ]
