"""Hardened lab cameras (``https = true`` with ``http_redirect = true``: every plain HTTP request
gets a 301 to HTTPS) are identified over HTTPS, by their vendor API, with vendor, model and
firmware; a camera whose plain HTTP port is closed too. Certificates are self-signed: the
identity's source says they were not verified."""

from __future__ import annotations

import socket

import pytest

from agent.audit.identify import UNVERIFIED_HTTPS, identify
from agent.vendors.base import AdapterConfig
from agent.vendors.http import https_only
from agent.vendors.models import Credential, Interface, Landing, Target
from agent.vendors.versions import canonical_vendor
from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory

pytestmark = pytest.mark.integration

PASSWORD = "Hard3ned!cam"
PERSONAS = {
    "hik": ("hikvision", "admin", "hikvision/isapi"),
    "dahua": ("dahua", "admin", "dahua/cgi"),
    "axis": ("axis", "root", "axis/basicdeviceinfo.getAllProperties"),
    "gen": ("onvif-generic", "admin", "onvif"),
}
LAB = "\n".join(
    f"""
[[camera]]
id = "{cid}"
persona = "{persona}"
https = true
http_redirect = true
discoverable = false
users = [{{name = "{user}", password = "{PASSWORD}", role = "admin"}}]
"""
    for cid, (persona, user, _source) in PERSONAS.items()
)
CONFIG = AdapterConfig(timeout_s=3.0)


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


def target(node: CameraNode, http_port: int | None = None) -> Target:
    http = node.ports["http"] if http_port is None else http_port
    ports = {Interface.HTTP: http, Interface.ONVIF: http, Interface.HTTPS: node.ports["https"]}
    return Target(node.id, node.host, ports)


def credential(node: CameraNode) -> Credential:
    return Credential(PERSONAS[node.id][1], PASSWORD)


def closed_port(host: str) -> int:
    """A port on ``host`` that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("cid", sorted(PERSONAS))
async def test_hardened_camera_is_identified_over_https(fleet: Fleet, cid: str) -> None:
    node = fleet[cid]
    found = await identify(target(node), CONFIG, credential(node))
    assert found.adapter is not None
    try:
        assert found.adapter.https
        identity = found.identity
        persona = node.spec.persona
        assert canonical_vendor(identity.vendor) == canonical_vendor(persona.onvif_manufacturer)
        assert identity.model == node.spec.model
        assert identity.firmware is not None
        assert identity.firmware.startswith(node.spec.firmware)
        assert identity.serial == node.camera.serial
        assert identity.source == f"{PERSONAS[cid][2]} over {UNVERIFIED_HTTPS}"
        # the reads the checks make go over HTTPS too, with the agent's credential
        assert next(a.name for a in await found.adapter.accounts()) == PERSONAS[cid][1]
    finally:
        await found.adapter.close()


@pytest.mark.parametrize("cid", ["hik", "gen"])
async def test_logins_go_over_https(fleet: Fleet, cid: str) -> None:
    node = fleet[cid]
    found = await identify(target(node), CONFIG, credential(node))
    assert found.adapter is not None
    interface = Interface.ONVIF if cid == "gen" else Interface.HTTPS
    user = PERSONAS[cid][1]
    try:
        assert await found.adapter.try_login(interface, user, PASSWORD) is True
        assert await found.adapter.try_login(interface, user, "not-the-password") is False
    finally:
        await found.adapter.close()


async def test_closed_plain_http_falls_back_to_https(fleet: Fleet) -> None:
    node = fleet["dahua"]
    found = await identify(target(node, closed_port(node.host)), CONFIG, credential(node))
    assert found.adapter is not None
    await found.adapter.close()
    assert found.identity.model == node.spec.model
    assert found.identity.source == f"dahua/cgi over {UNVERIFIED_HTTPS}"


async def test_a_camera_down_on_both_ports_is_asked_again_when_it_is_back(fleet: Fleet) -> None:
    """A rebooting camera refuses plain HTTP and HTTPS alike: that is no reason to move to HTTPS
    for good (a plain-HTTP camera would be unreachable after its reboot)."""
    node = fleet["hik"]
    down = Target(
        node.id,
        node.host,
        {Interface.HTTP: closed_port(node.host), Interface.HTTPS: closed_port(node.host)},
    )
    assert await https_only(down, CONFIG, "/") is None
    plain = Target(
        node.id,
        node.host,
        {Interface.HTTP: node.ports["http"], Interface.HTTPS: closed_port(node.host)},
    )
    assert await https_only(plain, CONFIG, "/") is True  # redirects to https://
    assert await https_only(target(node, closed_port(node.host)), CONFIG, "/") is True


def plain_gets(node: CameraNode) -> int:
    return sum(1 for r in node.camera.log if r.interface == "http" and r.target == "/")


async def test_one_cameras_adapters_ask_plain_http_once(fleet: Fleet) -> None:
    """Identification tries adapter after adapter: with one camera's ``web_answers`` only the
    first asks plain HTTP; a config without them (or the next audit's, with new ones) asks
    again."""
    node = fleet["gen"]  # identified by ONVIF, after the three vendor adapters
    answers: dict[str, Landing] = {}
    config = AdapterConfig(timeout_s=3.0, web_answers=answers)
    found = await identify(target(node), config, credential(node))
    assert found.adapter is not None
    await found.adapter.close()
    assert found.identity.source == f"onvif over {UNVERIFIED_HTTPS}"
    assert plain_gets(node) == 1
    # "/" for the vendor adapters, the device service's URL for the ONVIF one
    assert [answer.https_only for answer in answers.values()] == [True, True]
    assert await https_only(target(node), CONFIG, "/") is True  # no memo: asked
    assert plain_gets(node) == 2
    next_audit = AdapterConfig(timeout_s=3.0, web_answers={})
    assert await https_only(target(node), next_audit, "/") is True
    assert plain_gets(node) == 3


async def test_a_camera_down_is_not_remembered_as_down(fleet: Fleet) -> None:
    node = fleet["hik"]
    answers: dict[str, Landing] = {}
    config = AdapterConfig(timeout_s=3.0, web_answers=answers)
    down = Target(
        node.id,
        node.host,
        {Interface.HTTP: closed_port(node.host), Interface.HTTPS: closed_port(node.host)},
    )
    assert await https_only(down, config, "/") is None
    assert answers == {}
