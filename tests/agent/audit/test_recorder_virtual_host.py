"""Channel cameras the agent cannot route to, audited through their recorder's virtual host.

The camera subnets hold the NVR alone and its config names its virtual host port. The site
configured the camera of channel 1 (``recorder``, ``channel``, a vault credential): it is
audited as itself (its serial, its own address) with its credential, through the NVR's port.
The camera of channel 2 the site did not configure: learnt from the NVR's channel list, it is
reached the same way, without a credential, as an unconfigured channel camera inside the
subnets would be. Neither has its own ports probed (they would be the NVR's); nothing is sent
to their own addresses (the agent's scope refuses them)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from lab.testing import LabFactory
from tests.agent.audit_lab import AUDIT, audit, failed_controls, prepare

LAB = """
[lab]
rtsp = false
[[camera]]
id = "nvr"
persona = "hikvision-nvr"
users = [{ name = "admin", password = "Nvr-2026!x" }]
[[camera]]
id = "c1"
persona = "hikvision"
recorder = "nvr"
users = [{ name = "admin", password = "C1-2026!xx" }]
[[camera]]
id = "c2"
persona = "hikvision"
recorder = "nvr"
users = [{ name = "admin", password = "C2-2026!xx" }]
"""


async def test_cameras_behind_their_nvr_are_audited_through_its_virtual_host(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    fleet = await lab_fleet(LAB)
    nvr, c1, c2 = fleet["nvr"], fleet["c1"], fleet["c2"]
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
        network=msgspec.structs.replace(config.network, camera_subnets=(f"{nvr.host}/32",)),
        cameras=tuple(msgspec.structs.replace(c, **site.get(c.id, {})) for c in config.cameras),
    )
    cameras = {c.camera_id: c for c in (await audit(config)).cameras}
    assert set(cameras) == {"nvr", "c1", "nvr-ch02"}
    configured, learnt = cameras["c1"], cameras["nvr-ch02"]
    assert (configured.address, configured.reachable) == (c1.host, True)
    assert (configured.identity.serial, configured.identity.model) == (
        c1.camera.serial,
        c1.spec.model,
    )
    assert (learnt.address, learnt.reachable) == (c2.host, True)
    assert (configured.audit, learnt.audit) == ("partial", "login_failed")
    assert "AUTH-01" not in failed_controls(configured)
    for camera in (configured, learnt):
        assert "nvr's virtual host" in (camera.audit_reason or "")
        assert not any(f.check.startswith(("net", "tls", "services")) for f in camera.findings)
    assert c1.camera.log
    assert c2.camera.log
    assert {r.user for r in c1.camera.log if r.user} == {"admin"}
    assert cameras["nvr"].identity.serial == nvr.camera.serial
    assert "AUTH-01" not in failed_controls(cameras["nvr"])
