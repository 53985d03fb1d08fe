"""The recorder accuracy lab (configs/lab/recorders.toml): a 16-channel Hikvision NVR and an
8-channel KBVision (Dahua) NVR with their cameras, a Hikvision DVR, seeded channel weaknesses,
an offline channel on each NVR and the KBVision DVRIP port forwarded by the site router.

The site configures the recorders and the online channel cameras (vault credentials for each);
the offline channel cameras are not configured: the audit learns them from their recorders.
Per device, the failed controls equal the lab's truth, with the differences of the main
accuracy test (SVC-01 beside a seeded telnet; FW-02 beside FW-01) and SVC-05 beside REC-02
(a forwarded SDK port is a forwarded port). Before that audit, the first camera of each NVR
has its password rotated through its recorder: the audit finds every channel as before (the
recorders reach the rotated cameras with their new passwords). Then a second audit after one
camera moved to another address and another camera was replaced by a different device at its
address: the moved camera keeps its identity (changed, not vanished + new), the replaced one is
a swap.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from agent.trust.vault import Vault, load_vault_key
from agent.vendors.versions import canonical_vendor
from lab.config import parse_config
from lab.fleet import Fleet
from lab.testing import LabFactory
from protocol.commands import PASSWORD_ROTATE
from protocol.messages import Camera
from tests.agent.audit_lab import AUDIT, audit, failed_controls, prepare
from tests.agent.commands.test_rotation import escrow
from tests.agent.commands.world import World
from tests.agent.conftest import Collector

RECORDERS = Path(__file__).parents[3] / "configs" / "lab" / "recorders.toml"
OFFLINE = frozenset({"hik-ch16", "kb-ch08"})
# Deviations the main accuracy test explains (tests/agent/test_audit_accuracy.py)
EXTRA = {"SVC-01": "telnet", "SVC-05": "REC-02"}


ROTATED = {"hik-ch01": "nvr-hik", "kb-ch01": "nvr-kb"}  # camera -> its recorder


async def rotate_through_recorders(
    fleet: Fleet, tmp_path: Path, collector: Collector
) -> dict[str, str]:
    """``password.rotate`` of each camera of ``ROTATED`` (the site configures its recorder);
    returns the new passwords."""
    nodes = [n for n in fleet.cameras.values() if n.id not in OFFLINE]
    (tmp_path / "rotation").mkdir()
    w = World.make(
        tmp_path / "rotation", collector.state, collector.base_url, nodes[0], others=nodes[1:]
    )
    w.config = msgspec.structs.replace(
        w.config,
        cameras=tuple(
            msgspec.structs.replace(
                c,
                recorder=ROTATED.get(c.id),
                https_port=fleet[c.id].ports.get("https"),
                vendor=canonical_vendor(fleet[c.id].spec.persona.family),  # the API it speaks
            )
            for c in w.config.cameras
        ),
    )
    for node in nodes:
        w.credentials.set(node.id, node.spec.users[0].name, node.spec.users[0].password)
    new = {}
    for camera_id in ROTATED:
        _org, params = escrow()
        params["username"] = fleet[camera_id].spec.users[0].name
        command = w.command(PASSWORD_ROTATE, params=params, camera_id=camera_id)
        assert await w.executor().submit(w.sign(command)) == "succeeded", camera_id
        assert "recorder" in w.trail(command.command_id)
        stored = w.credentials.credential(camera_id)
        assert stored is not None
        new[camera_id] = stored.password
    return new


def expected(fleet: Fleet, camera_id: str) -> set[str]:
    truth = set(fleet[camera_id].weaknesses)
    if fleet[camera_id].spec.telnet:
        truth.add("SVC-01")
    if "REC-02" in truth:
        truth.add("SVC-05")
    return truth


def found(cameras: dict[str, Camera], camera_id: str) -> set[str]:
    return failed_controls(cameras[camera_id]) - {"FW-02"}


async def test_every_recorder_weakness_found_and_nothing_false(
    lab_fleet: LabFactory, tmp_path: Path, collector_tuf: Collector
) -> None:
    fleet = await lab_fleet(RECORDERS.read_text())
    rotated = await rotate_through_recorders(fleet, tmp_path, collector_tuf)
    config = prepare(fleet, tmp_path, skip=OFFLINE)
    vault = Vault(config.state_path, load_vault_key(config.vault_key_path))
    for camera_id, password in rotated.items():  # the site's vault after the rotations
        vault.set(camera_id, fleet[camera_id].spec.users[0].name, password)
    result = await audit(config)
    cameras = {c.camera_id: c for c in result.cameras}
    for node in fleet.cameras.values():
        if node.id in OFFLINE:
            continue
        assert found(cameras, node.id) == expected(fleet, node.id), node.id
    # the recorders list their channels: every seated camera, with serial and state
    for recorder, size in (("nvr-hik", 16), ("nvr-kb", 8)):
        listed = {
            f.evidence["serial"]: f.evidence["state"]
            for f in cameras[recorder].findings
            if f.code == "rec.channel"
        }
        seated = [n for n in fleet.cameras.values() if n.spec.recorder == recorder]
        assert len(seated) == size
        assert listed == {
            n.camera.serial: "offline" if n.spec.channel_offline else "online" for n in seated
        }
    # the offline channel cameras appear, learnt from their recorders, unreachable, REC-03 only
    for camera_id, recorder in (("hik-ch16", "nvr-hik"), ("kb-ch08", "nvr-kb")):
        node = fleet[camera_id]
        record = cameras[f"{recorder}-ch{node.spec.channel:02}"]
        assert (record.address, record.identity.serial) == (node.host, node.camera.serial)
        assert (record.reachable, record.audit) == (False, "unreachable")
        assert failed_controls(record) == {"REC-03"}
    # the DVR's inputs are analog: nothing to list, not a camera either
    assert [f.code for f in cameras["dvr-hik"].findings if f.check == "recorder"] == [
        "rec.no_ip_channels"
    ]
    assert not any(c.camera_id.startswith("found-") for c in result.cameras)
    assert all(f.code != "inv.unregistered" for c in result.cameras for f in c.findings)


MOVED, SWAPPED = "hik-ch07", "kb-ch05"


async def test_a_moved_camera_keeps_its_identity_and_a_replaced_one_is_a_swap(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    before = await lab_fleet(RECORDERS.read_text())
    no_guessing = AUDIT.replace(
        "guess_default_credentials = true", "guess_default_credentials = false"
    )
    config = prepare(before, tmp_path, skip=OFFLINE, vendor_discovery=True, audit=no_guessing)
    first = {c.camera_id: c for c in (await audit(config)).cameras}
    assert first[MOVED].identity.serial == before[MOVED].camera.serial
    old_address = before[MOVED].host
    free_slot = len(before.cameras) + len(before.routers) + 5  # an unused lab address
    text = (
        RECORDERS.read_text()
        .replace(f'id = "{MOVED}"', f'id = "{MOVED}"\nhost = {free_slot}')
        # another device (another maker's serial and MAC) in the replaced camera's slot
        .replace(f'id = "{SWAPPED}"\npersona = "kbvision"', f'id = "{SWAPPED}-x"\npersona = "imou"')
    )
    lab = dataclasses.replace(parse_config(text).lab, loopback_base=before.config.lab.loopback_base)
    await before.stop()
    after = await Fleet.start(dataclasses.replace(parse_config(text), lab=lab))
    try:
        result = await audit(config)  # the same site config and vault as before
    finally:
        await after.stop()
    cameras = {c.camera_id: c for c in result.cameras}
    moved_to = after[MOVED].host
    assert moved_to != old_address
    assert after[MOVED].camera.serial == before[MOVED].camera.serial
    assert after[f"{SWAPPED}-x"].host == before[SWAPPED].host
    # the moved camera: found at its new address by its MAC, "changed: address", not unknown
    at_new = [c for c in result.cameras if c.address == moved_to]
    assert [f.code for c in at_new for f in c.findings if f.check == "inventory"] == ["inv.changed"]
    changed = next(f for c in at_new for f in c.findings if f.code == "inv.changed")
    assert "address" in str(changed.evidence["changed"])
    vanished = [f.evidence["address"] for f in result.host_findings if f.code == "inv.vanished"]
    assert old_address not in vanished
    # the replaced camera: a swap, naming both identities
    swap = [f for f in cameras[SWAPPED].findings if f.code == "inv.swapped"]
    assert len(swap) == 1
    assert swap[0].evidence["serial_before"] == before[SWAPPED].camera.serial
    assert swap[0].evidence["serial"] == after[f"{SWAPPED}-x"].camera.serial
    assert swap[0].status == "fail"
    # nothing else of the site is reported as moved, swapped or new
    others = [
        f.code
        for c in result.cameras
        for f in c.findings
        if f.code in ("inv.swapped", "inv.unregistered") and c.camera_id != SWAPPED
    ]
    assert others == []


async def test_the_hikvision_nvr_channels_through_its_virtual_host(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    """The same lab with the channel cameras on the recorders' own networks: the camera subnets
    hold the recorders alone and the site names the Hikvision NVR's virtual host. Every online
    camera of that NVR is audited, as itself at its own address, through the NVR's port for its
    channel; the KBVision NVR has no virtual host, so its cameras are not contacted."""
    fleet = await lab_fleet(RECORDERS.read_text())
    seated = {n.id for n in fleet.cameras.values() if n.spec.recorder}
    no_guessing = AUDIT.replace(
        "guess_default_credentials = true", "guess_default_credentials = false"
    )
    config = prepare(fleet, tmp_path, skip=frozenset(seated), discovery=False, audit=no_guessing)
    hik = fleet["nvr-hik"]
    recorders = tuple(f"{fleet[r].host}/32" for r in ("nvr-hik", "nvr-kb", "dvr-hik"))
    config = msgspec.structs.replace(
        config,
        network=msgspec.structs.replace(config.network, camera_subnets=recorders),
        cameras=tuple(
            msgspec.structs.replace(c, virtual_host_port=hik.virtual_host_port(1))
            if c.id == "nvr-hik"
            else c
            for c in config.cameras
        ),
    )
    cameras = {c.camera_id: c for c in (await audit(config)).cameras}
    for camera_id in seated:
        node = fleet[camera_id]
        record = cameras.get(f"{node.spec.recorder}-ch{node.spec.channel:02}")
        if node.spec.channel_offline:
            assert record is not None
            assert failed_controls(record) == {"REC-03"}
        elif node.spec.recorder == "nvr-kb":
            assert record is None, camera_id  # outside the subnets, no virtual host
        else:
            assert record is not None, camera_id
            assert (record.address, record.reachable) == (node.host, True)
            assert "nvr-hik's virtual host" in (record.audit_reason or "")
            assert node.camera.log, camera_id
