"""What the lab's cameras say, checked against what the real devices say (one persona each)."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import socket
import ssl
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from lab.fleet import CameraNode, Fleet
from lab.persona import _banners, persona_names
from lab.services.banners import TELNET_NEGOTIATION
from lab.testing import LabFactory

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
