"""What the lab's cameras say, checked against what the real devices say (one persona each)."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import os
import socket
import ssl
import warnings

import httpx
import onvif
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from wsdiscovery.actions.probe import constructProbe
from wsdiscovery.message import createSOAPMessage, parseSOAPMessage

from lab.fleet import CameraNode, Fleet
from lab.persona import _banners, persona_names
from lab.services.banners import TELNET_NEGOTIATION
from lab.testing import LabFactory

WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
BANNER_LAB = "".join(
    f'[[camera]]\nid = "{name}"\npersona = "{name}"\ntelnet = true\nftp = true\n'
    for name in persona_names()
)


@pytest.fixture
async def banner_fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(BANNER_LAB)


def ftp_welcome(node: CameraNode) -> str:
    with ftplib.FTP() as client:  # noqa: S321  # the camera's FTP is the thing under test
        return client.connect(node.host, node.ports["ftp"], timeout=5)


async def telnet_greeting(node: CameraNode) -> bytes:
    """Everything the camera sends before the client types anything."""
    reader, writer = await asyncio.open_connection(node.host, node.ports["telnet"])
    try:
        data = await asyncio.wait_for(reader.readuntil(b"login: "), 5)
        with contextlib.suppress(TimeoutError):  # more unasked (a second prompt) is the bug
            data += await asyncio.wait_for(reader.read(256), 0.3)
        return data
    finally:
        writer.close()
        await writer.wait_closed()


async def test_banners_carry_their_framing_exactly_once(banner_fleet: Fleet) -> None:
    for node in banner_fleet.cameras.values():
        welcome = await asyncio.to_thread(ftp_welcome, node)
        assert welcome == f"220 {node.camera.persona.banners['ftp']}", node.id
        assert welcome.count("220") == 1, welcome
        greeting = await telnet_greeting(node)
        assert greeting.startswith(TELNET_NEGOTIATION), node.id
        assert greeting.count(b"login:") == 1, greeting
        assert greeting.endswith(node.camera.persona.banners["telnet"].encode() + b"login: ")


def test_persona_banners_with_protocol_framing_are_refused() -> None:
    good = {"ftp": "FTP server ready.", "telnet": "\r\nIPC "}
    assert _banners(good) == good
    with pytest.raises(ValueError, match="220"):
        _banners({**good, "ftp": "220 FTP server ready."})
    with pytest.raises(ValueError, match="login"):
        _banners({**good, "telnet": "\r\nIPC login: "})


TLS_LAB = """
[[camera]]
id = "gap"
persona = "dahua"
https = true
tls = { versions = ["TLSv1", "TLSv1.2"] }
[[camera]]
id = "ends"
persona = "axis"
https = true
tls = { versions = ["TLSv1", "TLSv1.3"] }
[[camera]]
id = "one"
persona = "hikvision"
https = true
tls = { versions = ["TLSv1.1"] }
"""
TLS_NAMES = {
    ssl.TLSVersion.TLSv1: "TLSv1",
    ssl.TLSVersion.TLSv1_1: "TLSv1.1",
    ssl.TLSVersion.TLSv1_2: "TLSv1.2",
    ssl.TLSVersion.TLSv1_3: "TLSv1.3",
}


def handshakes(node: CameraNode) -> set[str]:
    """The versions a Python ``ssl`` client pinned to one version at a time completes."""
    done = set()
    for version, name in TLS_NAMES.items():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # probing TLS 1.0/1.1 on purpose
            ctx.minimum_version = ctx.maximum_version = version
        try:
            with (
                socket.create_connection((node.host, node.ports["https"]), 5) as raw,
                ctx.wrap_socket(raw),
            ):
                done.add(name)
        except (ssl.SSLError, ConnectionResetError):
            pass
    return done


async def test_tls_accepts_exactly_the_listed_versions(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(TLS_LAB)
    for node in fleet.cameras.values():
        assert await asyncio.to_thread(handshakes, node) == set(node.spec.tls.versions), node.id
    assert fleet["gap"].weaknesses["COM-02"] == ["TLSv1 accepted"]
    assert fleet["one"].weaknesses["COM-02"] == ["TLSv1.1 accepted"]


async def test_a_shared_key_group_has_one_key_and_one_truth(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(
        '[[camera]]\nid = "a"\npersona = "axis"\nhttps = true\n'
        'tls = {weak_key = true, shared_key_group = "k"}\n'
        '[[camera]]\nid = "b"\npersona = "hikvision"\nhttps = true\n'
        'tls = {weak_key = true, shared_key_group = "k", versions = ["TLSv1.2"]}\n'
    )
    keys = [
        x509.load_der_x509_certificate(await asyncio.to_thread(certificate, n)).public_key()
        for n in fleet.cameras.values()
    ]
    assert all(isinstance(k, rsa.RSAPublicKey) and k.key_size == 1024 for k in keys)
    assert keys[0] == keys[1]
    for node in fleet.cameras.values():
        assert "RSA-1024 key" in node.weaknesses["COM-02"]
        assert node.weaknesses["COM-03"] == ["TLS key shared with 1 other camera(s)"]


def certificate(node: CameraNode) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection((node.host, node.ports["https"]), 5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


BASELINE_LAB = """
[[camera]]
id = "open"
persona = "onvif-generic"
https = true
lockout = { threshold = 10, window_s = 10, lock_s = 60 }
[[camera]]
id = "closed"
persona = "onvif-generic"
users = [{ name = "admin", password = "R00f!Onvif#2024", role = "admin" }]
https = true
http_redirect = true
discoverable = false
lockout = { threshold = 5, window_s = 30, lock_s = 300 }
"""


async def wsd_probe(node: CameraNode) -> list[object]:
    """A unicast Probe built, and any reply parsed, by the WSDiscovery package."""
    message = createSOAPMessage(constructProbe([], []))
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        client.bind(("127.0.0.1", 0))
        await loop.sock_sendto(client, message.encode(), (node.host, node.ports["wsd"]))
        try:
            data = await asyncio.wait_for(loop.sock_recv(client, 65536), 0.5)
        except TimeoutError:
            return []
    matches: list[object] = parseSOAPMessage(data, node.host).getProbeResolveMatches()
    return matches


async def discovery_mode(node: CameraNode, password: str) -> str:
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], "admin", password, wsdl_dir=WSDL)
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        mode: str = await dev.GetDiscoveryMode()
    finally:
        await cam.close()
    return mode


async def test_discovery_redirect_and_lockout_follow_the_config_and_the_truth(
    lab_fleet: LabFactory,
) -> None:
    fleet = await lab_fleet(BASELINE_LAB)
    opened, closed = fleet["open"], fleet["closed"]
    assert len(await wsd_probe(opened)) == 1
    assert await wsd_probe(closed) == []
    assert await discovery_mode(opened, "123456") == "Discoverable"
    async with httpx.AsyncClient(verify=False, follow_redirects=True) as client:  # noqa: S501
        plain = await client.get(opened.url("/"))
        assert (plain.status_code, plain.history) == (404, [])
        moved = await client.get(closed.url("/onvif/x?y=1"))
        assert [r.status_code for r in moved.history] == [301]
        assert str(moved.url) == closed.url("/onvif/x?y=1", https=True)
    assert opened.weaknesses["SVC-08"] == ["answers WS-Discovery probes (low)"]
    assert opened.weaknesses["COM-01"] == [
        "plain HTTP management served alongside HTTPS, no redirect"
    ]
    assert opened.weaknesses["AUTH-04"] == ["admin has a publicly known (default) password"]
    assert len(opened.weaknesses["AUTH-05"]) == 3
    assert closed.weaknesses == {}
