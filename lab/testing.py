"""pytest plugin: ``pytest_plugins = ["lab.testing"]`` gives tests the ``lab_fleet`` factory.

    async def test_x(lab_fleet: LabFactory) -> None:
        fleet = await lab_fleet('[[camera]]\\nid = "cam"\\npersona = "hikvision"\\n')
        node = fleet["cam"]   # node.host, node.ports, node.url("/ISAPI/System/deviceInfo")

Each fleet gets its own 127.x.y.0 block so tests (and parallel sessions) never share addresses.
Fleets are stopped when the test ends.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lab.config import LabConfig, parse_config
from lab.fleet import Fleet

__all__ = ["LabFactory", "lab_fleet", "private_base"]

LabFactory = Callable[[str | LabConfig], Awaitable[Fleet]]
_blocks = itertools.count()


def private_base() -> ipaddress.IPv4Address:
    """A loopback /24 unlikely to be used by another test or process: 127.(100+pid%100).n.0."""
    return ipaddress.IPv4Address(f"127.{100 + os.getpid() % 100}.{next(_blocks) % 250 + 1}.0")


@pytest.fixture
async def lab_fleet() -> AsyncIterator[LabFactory]:
    fleets: list[Fleet] = []

    async def start(config: str | LabConfig) -> Fleet:
        parsed = parse_config(config) if isinstance(config, str) else config
        if parsed.lab.mode == "loopback":
            lab = dataclasses.replace(parsed.lab, loopback_base=private_base())
            parsed = dataclasses.replace(parsed, lab=lab)
        fleet = await Fleet.start(parsed)
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        await fleet.stop()
