"""The vendors' own discovery (SADP, DHDiscover) against lab recorders and cameras on loopback,
its parsers on hostile datagrams, and the inventory diff keyed by serial and MAC: a camera that
moves keeps its identity, another device at a known address is a swap."""

from __future__ import annotations

import ipaddress

import pytest

from agent.inventory.diff import diff, key
from agent.inventory.discover import Host, Scope, merge, vendor_hosts, ws_discovery_hosts
from agent.probes.vendordiscovery import (
    dhip_frame,
    normal_mac,
    parse_dhdiscover,
    parse_sadp,
    sadp_inquiry,
)
from agent.vendors.base import BadResponse
from lab.testing import LabFactory

LAB = """
[lab]
rtsp = false
[[camera]]
id = "nvr"
persona = "hikvision-nvr"
[[camera]]
id = "kbnvr"
persona = "kbvision-nvr"
[[camera]]
id = "ez"
persona = "ezviz"
recorder = "nvr"
[[camera]]
id = "imou"
persona = "imou"
recorder = "kbnvr"
[[camera]]
id = "axis"
persona = "axis"
"""


def _scope(host: str) -> Scope:
    return Scope((ipaddress.IPv4Network(f"{host}/24", strict=False),), port_offset=10000)


async def test_sadp_and_dhdiscover_name_serial_mac_and_recorders(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    nodes = [fleet[n] for n in ("nvr", "kbnvr", "ez", "imou", "axis")]
    scope = _scope(nodes[0].host)
    addresses = [n.host for n in nodes]
    sadp = await vendor_hosts("sadp", scope, window_s=0.3, unicast=addresses)
    dh = await vendor_hosts("dhdiscover", scope, window_s=0.3, unicast=addresses)
    found = {h.address: h for h in [*sadp, *dh]}
    expected = {
        n.host: (n.camera.serial, n.camera.mac, n.spec.model, n.camera.persona.recorder)
        for n in nodes[:4]
    }
    assert {a: (h.serial, h.mac, h.model, h.recorder) for a, h in found.items()} == expected
    assert {h.address for h in sadp} == {fleet["nvr"].host, fleet["ez"].host}
    assert found[fleet["kbnvr"].host].vendor_hint == "Dahua"  # the family: its API
    wsd = await ws_discovery_hosts(scope, window_s=0.3, unicast=addresses)
    merged = merge(wsd, sadp, dh)
    nvr = merged[fleet["nvr"].host]
    assert nvr.sources == {"ws-discovery", "sadp"}
    assert (nvr.serial, nvr.endpoint is not None, nvr.recorder) == (
        fleet["nvr"].camera.serial,
        True,
        True,
    )


def test_answers_that_are_not_the_protocol_are_refused_or_skipped() -> None:
    assert parse_sadp("10.0.0.1", sadp_inquiry("T1"), "T1") is None  # our own inquiry
    other = b"<ProbeMatch><Uuid>T2</Uuid><DeviceSN>X</DeviceSN></ProbeMatch>"
    assert parse_sadp("10.0.0.1", other, "T1") is None  # another inquirer's answer
    with pytest.raises(BadResponse):
        parse_sadp("10.0.0.1", b"<ProbeMatch><Uuid>T1", "T1")
    with pytest.raises(BadResponse):
        parse_sadp("10.0.0.1", b'<!DOCTYPE x [<!ENTITY a "b">]><ProbeMatch/>', "T1")
    with pytest.raises(BadResponse):
        parse_dhdiscover("10.0.0.1", b"\xff")
    with pytest.raises(BadResponse):
        parse_dhdiscover("10.0.0.1", dhip_frame(b"not json"))
    search = dhip_frame(b'{"method": "DHDiscover.search", "params": {"mac": ""}}')
    assert parse_dhdiscover("10.0.0.1", search) is None
    long_model = (
        b'{"method": "client.notifyDevInfo", "params": {"deviceInfo": {"DeviceType": "%s"}}}'
    )
    answer = parse_dhdiscover("10.0.0.1", dhip_frame(long_model % (b"M" * 5000)))
    assert answer is not None
    assert answer.model == "M" * 128
    assert (answer.mac, answer.serial) == (None, None)


@pytest.mark.parametrize(
    ("text", "mac"),
    [
        ("44-19-B6-60-12-4A", "44:19:b6:60:12:4a"),
        ("4c:11:bf:c2:0b:9d", "4c:11:bf:c2:0b:9d"),
        ("4c11bfc20b9d", "4c:11:bf:c2:0b:9d"),
        ("4c:11:bf", None),
        ("zz:11:bf:c2:0b:9d:00", None),
        ("", None),
        (None, None),
    ],
)
def test_mac_spellings(text: str | None, mac: str | None) -> None:
    assert normal_mac(text) == mac


CAM = Host("10.0.0.11", frozenset({"sadp"}), serial="DS-1", mac="44:19:b6:00:00:01")


def test_a_camera_that_moves_keeps_its_identity() -> None:
    moved = Host("10.0.0.42", frozenset({"sadp"}), serial="DS-1", mac="44:19:b6:00:00:01")
    result = diff([CAM], [moved])
    assert (result.new, result.vanished, result.swapped) == ((), (), ())
    assert result.changed == ((CAM, moved, ("address",)),)
    assert key(CAM) == key(moved) == "mac:44:19:b6:00:00:01"


def test_another_device_at_a_known_address_is_a_swap() -> None:
    other = Host("10.0.0.11", frozenset({"sadp"}), serial="DS-9", mac="44:19:b6:00:00:09")
    result = diff([CAM], [other])
    assert result.swapped == ((CAM, other),)
    assert (result.new, result.vanished, result.changed) == ((), (), ())
    assert not result.empty


def test_learning_an_identity_is_no_swap_and_no_change() -> None:
    before = Host("10.0.0.11", frozenset({"sweep"}), open_ports=(80,))
    after = Host("10.0.0.11", frozenset({"sweep", "sadp"}), open_ports=(80,), serial="DS-1")
    assert diff([before], [after]).empty
    unknown = Host("10.0.0.11", frozenset({"sweep"}))
    assert diff([CAM], [unknown]).empty  # nothing contradicts: the same device
