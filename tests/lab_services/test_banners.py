from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
from lxml import etree

from lab.services import Service
from lab.services.banners import TELNET_NEGOTIATION, start_banner, strip_telnet_commands
from tests.lab_services.sockets import port_of, tcp

HOST = "127.77.1.10"


async def exchange(port: int, send: list[bytes], *, until: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        received = b""
        for line in [b"", *send]:
            if line:
                writer.write(line)
                await writer.drain()
            received += await asyncio.wait_for(reader.readuntil(until), 5)
        return received
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def services() -> AsyncIterator[dict[str, tuple[Service, int]]]:
    started: dict[str, tuple[Service, int]] = {}
    for kind, banner in (
        ("telnet", "IPC "),
        ("ftp", "(vsFTPd 3.0.3)"),
        ("ssh", "SSH-2.0-dropbear_2019.78"),
    ):
        sock = tcp(HOST)
        started[kind] = (await start_banner(sock, kind, banner), port_of(sock))  # type: ignore[arg-type]
    yield started
    for service, _ in started.values():
        await service.close()


def test_strip_telnet_commands() -> None:
    assert strip_telnet_commands(b"\xff\xfb\x18ad\xff\xffmin\xff\xfa\x18\x00xterm\xff\xf0\r") == (
        b"ad\xffmin\r"
    )


async def test_telnet_negotiates_and_refuses_logins(
    services: dict[str, tuple[Service, int]],
) -> None:
    port = services["telnet"][1]
    got = await exchange(port, [b"\xff\xfc\x01admin\r\n", b"12345\r\n"], until=b": ")
    assert got.startswith(TELNET_NEGOTIATION + b"IPC login: ")
    assert got.endswith(b"Password: \r\nLogin incorrect\r\nIPC login: ")


async def test_ftp_refuses_every_login(services: dict[str, tuple[Service, int]]) -> None:
    port = services["ftp"][1]
    got = await exchange(port, [b"USER admin\r\n", b"PASS admin\r\n", b"QUIT\r\n"], until=b"\r\n")
    assert got.split(b"\r\n")[:4] == [
        b"220 (vsFTPd 3.0.3)",
        b"331 Please specify the password.",
        b"530 Login incorrect.",
        b"221 Goodbye.",
    ]


async def test_ssh_sends_its_identification_then_closes(
    services: dict[str, tuple[Service, int]],
) -> None:
    reader, writer = await asyncio.open_connection(HOST, services["ssh"][1])
    assert await reader.readline() == b"SSH-2.0-dropbear_2019.78\r\n"
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
async def test_nmap_identifies_the_banners(services: dict[str, tuple[Service, int]]) -> None:
    ports = {kind: port for kind, (_, port) in services.items()}
    closed = tcp(HOST)  # bound but never listened to by a service: a closed port for nmap
    closed_port = port_of(closed)
    closed.close()
    scan = ",".join(str(p) for p in [*ports.values(), closed_port])
    process = await asyncio.create_subprocess_exec(
        "nmap",
        "-n",
        "-Pn",
        "-sT",
        "-sV",
        "--version-light",
        "-p",
        scan,
        "-oX",
        "-",
        HOST,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    root = etree.fromstring(out)
    found = {
        int(port.get("portid", "0")): port.find("service").get("name", "")  # type: ignore[union-attr]
        for port in root.iter("port")
        if port.find("state").get("state") == "open"  # type: ignore[union-attr]
    }
    assert found == {port: kind for kind, port in ports.items()}
    products = " ".join(s.get("product", "") for s in root.iter("service"))
    assert "Dropbear" in products
