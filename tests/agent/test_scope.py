"""The scope gate (``agent.scope``): every kind of connection an audit makes is refused before a
packet leaves when its address is outside the scope, and device-supplied URLs are followed
only on the camera's own address. Listeners on loopback count what reaches them."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from agent.probes import _net, _udp, ports, snmp
from agent.scope import ForeignUrl, OutOfScope, admit, allows, confined, own_url, site_scope
from agent.vendors.base import AdapterConfig, translate
from agent.vendors.http import NO_AUTH, anonymous_session, fetch, landing
from agent.vendors.models import Interface, Target
from lab.testing import private_base
from tests.agent.listeners import Listeners, listening


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10/onvif/media_service",
        "https://192.0.2.10:8443/onvif/media_service",
        "HTTP://192.0.2.10:80/x",
    ],
)
def test_a_url_on_the_camera_itself_is_followed(url: str) -> None:
    assert own_url(url, "192.0.2.10", "XAddr") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.11/onvif/media_service",  # a neighbour
        "http://192.0.2.10@198.51.100.1/x",  # the camera's address as a user name
        "http://198.51.100.1/?h=192.0.2.10",
        "ftp://192.0.2.10/image.bin",
        "http://192.0.2.10:port/x",
        "/onvif/media_service",
        "http://[::1]/x",
    ],
)
def test_a_url_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(ForeignUrl, match="XAddr"):
        own_url(url, "192.0.2.10", "XAddr")


def test_outside_an_audit_the_gate_lets_everything_through() -> None:
    assert allows("198.51.100.1")
    with confined([ipaddress.IPv4Network("192.0.2.0/24")]):
        assert allows("192.0.2.7")
        assert not allows("198.51.100.1")
        assert not allows("camera.example")  # a name: resolved by admit first
    assert allows("198.51.100.1")


async def test_a_name_is_admitted_only_when_it_resolves_inside() -> None:
    with confined([ipaddress.IPv4Network("127.0.0.1/32")]):
        assert await admit("localhost") == "127.0.0.1"
    with confined([ipaddress.IPv4Network("192.0.2.0/24")]), pytest.raises(OutOfScope):
        await admit("localhost")


async def test_a_site_without_subnets_is_scoped_to_its_configured_cameras() -> None:
    subnets = (ipaddress.IPv4Network("192.0.2.0/24"),)
    assert await site_scope(subnets, ["198.51.100.1"]) == subnets
    named = await site_scope((), ["198.51.100.1", "localhost"])  # /etc/hosts: no DNS query
    assert ipaddress.ip_network("198.51.100.1/32") in named
    assert ipaddress.ip_network("127.0.0.1/32") in named
    with confined(named):
        assert await admit("localhost") == "127.0.0.1"
        with pytest.raises(OutOfScope):
            await admit("198.51.100.2")


@dataclass
class Listener:
    host: str
    port: int


@pytest.fixture
async def listener() -> AsyncIterator[tuple[Listener, Listeners]]:
    """TCP and UDP on the same port of a loopback address."""
    async with listening(str(private_base() + 30), tcp=[0], udp=[0]) as found:
        yield Listener(found.host, next(iter(found.tcp))), found


async def _http(listener: Listener) -> None:
    async with anonymous_session(2.0) as session:
        url = f"http://{listener.host}:{listener.port}/"
        await fetch(session, "GET", url, max_bytes=1024, accept={"text/plain"}, auth=NO_AUTH)


async def _landing(listener: Listener) -> None:
    target = Target("t", listener.host, {Interface.HTTP: listener.port})
    if await landing(target, AdapterConfig(timeout_s=2.0), "/") is None:
        raise OutOfScope("neither port took a connection")  # what the gate leaves: nothing


async def _tcp(listener: Listener) -> None:
    async with _net.connected(listener.host, listener.port, 2.0):
        pass


async def _ports(listener: Listener) -> None:
    await ports.scan(listener.host, [listener.port], timeout_s=2.0)


async def _udp_probe(listener: Listener) -> None:
    await _udp.exchange(listener.host, listener.port, b"M-SEARCH", window_s=0.2)


async def _snmp(listener: Listener) -> None:
    await snmp.get_sys_descr(listener.host, listener.port, "v2c", "public", timeout_s=0.2)


PROBES: dict[str, Callable[[Listener], Awaitable[None]]] = {
    "vendor API session": _http,
    "landing": _landing,
    "TCP/TLS probe": _tcp,
    "port scan": _ports,
    "UDP probe": _udp_probe,
    "SNMP": _snmp,
}


@pytest.mark.parametrize("probe", PROBES)
async def test_nothing_leaves_for_an_address_outside_the_scope(
    listener: tuple[Listener, Listeners], probe: str
) -> None:
    address, counts = listener
    with (
        confined([ipaddress.IPv4Network("192.0.2.0/24")]),
        pytest.raises(Exception) as raised,  # noqa: PT011  # each function raises its own type
    ):
        await PROBES[probe](address)
    assert isinstance(translate(raised.value), OutOfScope), raised.value
    await asyncio.sleep(0.05)
    assert counts.reached == 0


@pytest.mark.parametrize("probe", ["TCP/TLS probe", "port scan", "UDP probe"])
async def test_inside_the_scope_the_same_probes_reach_the_listener(
    listener: tuple[Listener, Listeners], probe: str
) -> None:
    address, counts = listener
    with confined([ipaddress.IPv4Network(f"{address.host}/32")]):
        await PROBES[probe](address)
    for _ in range(250):  # the datagram or the accept may be handled a moment later
        if counts.reached:
            break
        await asyncio.sleep(0.02)
    assert counts.reached >= 1
