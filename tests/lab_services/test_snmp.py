from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pyasn1.codec.ber import decoder
from pyasn1_modules import rfc1901, rfc1905

from agent.probes import snmp as probe
from lab.services import Service
from lab.services.snmp import (
    SYS_DESCR,
    SYS_OBJECT_ID,
    SystemGroup,
    answer,
    oid_value,
    start_snmp,
    string_value,
)
from tests.lab_services.sockets import port_of, udp

HOST = "127.77.2.10"
DESCR = "Hikvision DS-2CD2143G2-I V5.5.0 build 170725"
needs_snmpget = pytest.mark.skipif(
    shutil.which("snmpget") is None, reason="net-snmp's snmpget (Debian package snmp) is missing"
)


@pytest.fixture
async def agent() -> AsyncIterator[int]:
    sock = udp(HOST)
    service: Service = await start_snmp(sock, frozenset({"public"}), DESCR, sys_name="cam11")
    yield port_of(sock)
    await service.close()


async def net_snmp(tool: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        tool,
        "-t",
        "1",
        "-r",
        "0",
        "-On",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode is not None
    return process.returncode, out.decode()


def test_the_agents_probe_reads_the_lab() -> None:
    """The agent's request and the lab's answer, both through pyasn1, meet in the middle."""
    mib = SystemGroup({SYS_DESCR: lambda: string_value(DESCR)})
    versions: tuple[tuple[probe.Version, int], ...] = (("v2c", 1), ("v1", 0))
    for version, number in versions:
        reply = answer(mib, frozenset({"public"}), probe.encode_get(version, "public", 2**31 - 1))
        assert reply is not None
        assert probe.decode_response(reply, 2**31 - 1) == (number, "public", DESCR)
    assert answer(mib, frozenset({"public"}), probe.encode_get("v2c", "private", 7)) is None


def test_large_oid_arcs_are_encoded() -> None:
    oid = (1, 3, 6, 1, 4, 1, 39165, 1, 2**32 - 1)
    mib = SystemGroup({SYS_OBJECT_ID: lambda: oid_value(oid)})
    request = probe.encode_get("v2c", "public", 1).replace(
        bytes.fromhex("2b06010201010100"), bytes.fromhex("2b06010201010200")
    )  # sysDescr.0 -> sysObjectID.0 in the agent's request
    reply = answer(mib, frozenset({"public"}), request)
    assert reply is not None
    message, _ = decoder.decode(reply, asn1Spec=rfc1901.Message())
    pdus, _ = decoder.decode(message["data"].asOctets(), asn1Spec=rfc1905.PDUs())
    [bind] = pdus.getComponent()["variable-bindings"]
    assert tuple(bind[""]["value"]["simple"]["objectID-value"]) == oid


@pytest.mark.parametrize(
    "datagram", [b"", b"\x30", b"\x30\x03\x02\x01", b"\x30\x84\xff\xff\xff\xff"]
)
def test_garbage_gets_no_answer(datagram: bytes) -> None:
    assert (
        answer(SystemGroup({SYS_DESCR: lambda: string_value("")}), frozenset({"public"}), datagram)
        is None
    )


@needs_snmpget
@pytest.mark.parametrize("version", ["1", "2c"])
async def test_snmpget_reads_the_system_group(agent: int, version: str) -> None:
    rc, out = await net_snmp(
        "snmpget",
        f"-v{version}",
        "-c",
        "public",
        f"{HOST}:{agent}",
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.5.0",
        "1.3.6.1.2.1.1.2.0",
    )
    assert rc == 0, out
    assert f'.1.3.6.1.2.1.1.1.0 = STRING: "{DESCR}"' in out
    assert '.1.3.6.1.2.1.1.5.0 = STRING: "cam11"' in out
    assert ".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.8072.3.2.10" in out


@needs_snmpget
async def test_unknown_oid(agent: int) -> None:
    _, v2 = await net_snmp(
        "snmpget", "-v2c", "-c", "public", f"{HOST}:{agent}", "1.3.6.1.2.1.2.1.0"
    )
    assert "No Such Object" in v2
    rc, v1 = await net_snmp(
        "snmpget", "-v1", "-c", "public", f"{HOST}:{agent}", "1.3.6.1.2.1.2.1.0"
    )
    assert rc != 0
    assert "noSuchName" in v1


@needs_snmpget
async def test_snmpwalk_walks_the_system_group(agent: int) -> None:
    rc, out = await net_snmp("snmpwalk", "-v2c", "-c", "public", f"{HOST}:{agent}", "1.3.6.1.2.1.1")
    assert rc == 0, out
    names = [line.split(" = ")[0] for line in out.splitlines() if "No more variables" not in line]
    assert "past the end of the MIB tree" in out
    assert names == [
        ".1.3.6.1.2.1.1.1.0",
        ".1.3.6.1.2.1.1.2.0",
        ".1.3.6.1.2.1.1.3.0",
        ".1.3.6.1.2.1.1.5.0",
    ]


@needs_snmpget
async def test_wrong_community_times_out(agent: int) -> None:
    rc, out = await net_snmp(
        "snmpget", "-v2c", "-c", "private", f"{HOST}:{agent}", "1.3.6.1.2.1.1.1.0"
    )
    assert rc != 0
    assert "Timeout" in out


def can_bind_161() -> bool:
    return (
        os.geteuid() == 0
        or Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text(encoding="ascii").strip()
        <= "161"
    )


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
@pytest.mark.skipif(
    not can_bind_161(), reason="nmap's snmp scripts need port 161, not bindable here"
)
async def test_nmap_snmp_sysdescr() -> None:
    """nmap sends its SNMP probe and runs snmp-sysdescr for port 161 only."""
    sock = udp(HOST, 161)
    service = await start_snmp(sock, frozenset({"public"}), DESCR)
    try:
        process = await asyncio.create_subprocess_exec(
            "nmap",
            "-n",
            "-Pn",
            "-sU",
            "-p",
            "161",
            "--script",
            "snmp-sysdescr",
            HOST,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await service.close()
    text = out.decode()
    assert "161/udp open  snmp" in text, text
    assert f"snmp-sysdescr: {DESCR}" in text
