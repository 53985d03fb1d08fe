"""Inventory (INV-04): discovery on loopback (unicast), the sweep's scope rule, the diff."""

from __future__ import annotations

import ipaddress

import pytest

from agent.inventory.diff import diff
from agent.inventory.discover import (
    Host,
    OutOfScope,
    Scope,
    merge,
    ssdp_hosts,
    static_hosts,
    sweep,
    ws_discovery_hosts,
)
from lab.testing import LabFactory

LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
upnp = true
[[camera]]
id = "dahua"
persona = "dahua"
"""


def _scope(host: str) -> Scope:
    return Scope((ipaddress.IPv4Network(f"{host}/24", strict=False),), port_offset=10000)


async def test_discovery_and_sweep_on_loopback(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    hik, dahua = fleet["hik"], fleet["dahua"]
    scope = _scope(hik.host)
    addresses = [hik.host, dahua.host]
    wsd = await ws_discovery_hosts(scope, window_s=0.3, unicast=addresses)
    assert {(h.address, h.vendor_hint) for h in wsd} == {
        (hik.host, "Hikvision"),
        (dahua.host, "Dahua"),
    }
    upnp = await ssdp_hosts(scope, window_s=0.3, unicast=addresses)
    assert {h.address for h in upnp} == {hik.host}
    block = ipaddress.IPv4Network(f"{hik.host}/29", strict=False)  # the lab's first addresses
    swept = await sweep(block, scope, timeout_s=0.5)
    assert {h.address: h.open_ports for h in swept} == {
        hik.host: (80, 554, 8000),
        dahua.host: (80, 554, 37777),
    }
    inventory = merge(static_hosts([hik.host], scope), wsd, upnp, swept)
    assert inventory[hik.host].sources == {"static", "ws-discovery", "ssdp", "sweep"}
    assert inventory[hik.host].endpoint == wsd[[h.address for h in wsd].index(hik.host)].endpoint


async def test_sweep_refuses_anything_outside_the_camera_subnets() -> None:
    scope = Scope((ipaddress.IPv4Network("127.55.0.0/24"),))
    for network in ("10.0.0.0/24", "127.55.0.0/23", "0.0.0.0/0"):
        with pytest.raises(OutOfScope, match="outside the camera subnets"):
            await sweep(ipaddress.IPv4Network(network), scope, timeout_s=0.1)
    with pytest.raises(OutOfScope):
        await sweep(ipaddress.IPv4Network("127.55.0.0/24"), Scope(()), timeout_s=0.1)
    with pytest.raises(OutOfScope):
        static_hosts(["192.0.2.1"], scope)
    with pytest.raises(OutOfScope):
        await ws_discovery_hosts(scope, window_s=0.1, unicast=["192.0.2.1"])
    wide = Scope((ipaddress.IPv4Network("127.0.0.0/8"),))
    with pytest.raises(ValueError, match="more than"):
        await sweep(ipaddress.IPv4Network("127.0.0.0/16"), wide, timeout_s=0.1)


def test_diff_new_vanished_changed() -> None:
    a = Host("10.0.0.11", frozenset({"sweep"}), endpoint="urn:uuid:a", open_ports=(80, 554))
    b = Host("10.0.0.12", frozenset({"sweep"}), open_ports=(80,))
    c = Host("10.0.0.13", frozenset({"ws-discovery"}), endpoint="urn:uuid:c")
    moved = Host("10.0.0.21", frozenset({"sweep"}), endpoint="urn:uuid:a", open_ports=(80, 554, 23))
    result = diff([a, b], [moved, c])
    assert result.new == (c,)
    assert result.vanished == (b,)
    assert result.changed == ((a, moved, ("address", "open_ports")),)
    assert diff([a, b], [b, a]).empty
    assert not result.empty
