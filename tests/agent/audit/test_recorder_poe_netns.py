"""A Hikvision NVR's PoE cameras on its internal network (192.168.254.0/24, lab namespaces):
only the NVR reaches them. The agent, in its own namespace on the lab network, audits the
camera the site configured on channel 1 and the one it learns on channel 2 through the NVR's
per-channel virtual-host ports; a direct connection to a camera's internal address fails."""

from __future__ import annotations

import socket
from pathlib import Path

import msgspec
import pytest

from lab import netns
from lab.testing import LabFactory
from tests.agent.audit_lab import AUDIT, audit, prepare

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not netns.available(), reason="ip netns is not permitted here (needs root or a userns)"
    ),
]

LAB = """
[lab]
mode = "netns"
rtsp = false
[[camera]]
id = "nvr"
persona = "hikvision-nvr"
users = [{ name = "admin", password = "Nvr-2026!x" }]
[[camera]]
id = "c1"
persona = "hikvision"
recorder = "nvr"
poe = true
users = [{ name = "admin", password = "C1-2026!xx" }]
[[camera]]
id = "c2"
persona = "hikvision"
recorder = "nvr"
poe = true
users = [{ name = "admin", password = "C2-2026!xx" }]
"""


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=10):
            return True
    except OSError:
        return False


async def test_poe_cameras_are_reached_only_through_the_nvr(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    fleet = await lab_fleet(LAB)
    nvr, c1, c2 = fleet["nvr"], fleet["c1"], fleet["c2"]
    assert {c1.host, c2.host} <= {str(a) for a in netns.POE_SUBNET.hosts()}
    namespace = fleet.agent_namespace
    assert namespace is not None
    no_guessing = AUDIT.replace(
        "guess_default_credentials = true", "guess_default_credentials = false"
    )
    config = prepare(fleet, tmp_path, skip=frozenset({"c2"}), discovery=False, audit=no_guessing)
    site: dict[str, dict[str, object]] = {
        "nvr": {"virtual_host_port": nvr.virtual_host_port(1)},
        "c1": {"recorder": "nvr", "channel": 1},
    }
    config = msgspec.structs.replace(
        config,
        network=msgspec.structs.replace(  # netns mode: the standard ports
            config.network, camera_subnets=(f"{nvr.host}/32",), port_offset=0
        ),
        cameras=tuple(msgspec.structs.replace(c, **site.get(c.id, {})) for c in config.cameras),
    )
    with netns.entered(namespace):  # the agent's sockets are made on the lab network
        assert not connects(c1.host, c1.ports["http"])  # no route to the PoE network
        assert connects(nvr.host, nvr.virtual_host_port(1))
        cameras = {c.camera_id: c for c in (await audit(config)).cameras}
    assert set(cameras) == {"nvr", "c1", "nvr-ch02"}
    configured, learnt = cameras["c1"], cameras["nvr-ch02"]
    assert (configured.address, configured.reachable) == (c1.host, True)
    assert configured.identity.serial == c1.camera.serial
    assert (learnt.address, learnt.reachable) == (c2.host, True)
    assert (configured.audit, learnt.audit) == ("partial", "login_failed")
    for camera in (configured, learnt):
        assert "nvr's virtual host" in (camera.audit_reason or "")
    assert {r.user for r in c1.camera.log if r.user} == {"admin"}
    assert c2.camera.log
