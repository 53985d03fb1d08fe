"""firmware.apply end to end: the collector's TUF repository on loopback, a lab camera, the
agent's executor; and every attack refused with nothing written to the camera."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.firmware import make_image
from lab.testing import LabFactory
from tests.agent.commands.world import LAB, MODEL, World, writes
from tests.agent.conftest import Collector
from tests.support.firmware import publish_image

pytestmark = pytest.mark.integration


async def world(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, lab: str = LAB
) -> World:
    fleet = await lab_fleet(lab)
    return World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["hik"])


async def test_update_end_to_end(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path)
    ex = w.executor()
    command = w.command()
    assert await ex.submit(w.sign(command)) == "succeeded"
    assert w.node.camera.version == "V5.7.3"
    assert w.trail(command.command_id) == [
        "accepted", "preflight", "downloading", "uploading", "rebooting", "verifying",
        "succeeded",
    ]  # fmt: skip
    final = w.results()[-1]
    assert final.details["version"] == "V5.7.3"
    assert final.details["previous"] == "V5.5.0"
    assert final.details["rtsp"] is True  # DESCRIBE with the credential answered 200
    uploads = [r for r in w.log if r.target == "/ISAPI/System/updateFirmware"]
    assert [(r.method, r.status) for r in uploads] == [("PUT", 200)]
    assert list(ex.journal.pending()) == []
    assert not any((w.state / "firmware" / "partial").iterdir())


@pytest.mark.parametrize("case", ["forged", "garbage", "other_agent", "wrong_typ"])
async def test_unverifiable_commands_are_dropped_silently(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, case: str
) -> None:
    from protocol import encode, generate_private_key, sign  # noqa: PLC0415

    w = await world(lab_fleet, collector_tuf, tmp_path)
    ex = w.executor()
    tokens: dict[str, Callable[[], bytes]] = {
        "forged": lambda: w.sign(w.command(), generate_private_key()),
        "garbage": lambda: b"eyJhbGciOiJub25lIn0.e30.",
        "other_agent": lambda: w.sign(w.command(agent_id="agent-2")),
        "wrong_typ": lambda: sign(encode(w.command()), w.command_key).encode(),
    }
    token = tokens[case]()
    reason = await ex.submit(token)
    assert (
        reason
        == {
            "forged": "unknown_key",
            "garbage": "malformed",
            "other_agent": "misaddressed",
            "wrong_typ": "wrong_typ",
        }[case]
    )
    assert w.results() == []  # nothing signed by the collector for us: no answer
    assert w.log == []


async def test_replayed_expired_and_foreign_camera_commands_are_refused(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path)
    ex = w.executor()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    expired = w.command(now=past, ttl=dt.timedelta(minutes=5))
    assert await ex.submit(w.sign(expired)) == "expired"
    foreign = w.command(camera_id="someone-elses")
    assert await ex.submit(w.sign(foreign)) == "unknown_camera"
    unknown = w.command("camera.wipe", params={})
    assert await ex.submit(w.sign(unknown)) == "unknown_action"
    assert w.log == []
    good = w.sign(w.command())
    assert await ex.submit(good) == "succeeded"
    sent = len(w.log)
    assert await w.executor().submit(good) == "replayed"  # a new executor: the store persists
    assert await ex.submit(w.sign(expired)) == "replayed"
    assert len(w.log) == sent
    assert [r.reason for r in w.results() if r.status == "rejected"] == [
        "expired", "unknown_camera", "unknown_action",
    ]  # fmt: skip


async def test_rollback_and_other_model_are_refused_before_any_write(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path, LAB.replace('"V5.5.0"', '"V5.8.0"'))
    other = make_image("hikvision", "V5.9.0", dt.date(2024, 6, 1), 4096, model="DS-OTHER")
    publish_image(w.tuf_state, collector_tuf.repo, other, version="V5.9.0", models=("DS-OTHER",))
    ex = w.executor()
    assert await ex.submit(w.sign(w.command())) == "rejected:downgrade_not_approved"
    wrong = w.command(params=w.firmware("hikvision/V5.9.0/fw-V5.9.0.bin", "V5.9.0"))
    assert await ex.submit(w.sign(wrong)) == "failed:wrong_model"
    mismatch = w.command(params=w.firmware(version="V5.9.9"))
    assert await ex.submit(w.sign(mismatch)) == "failed:wrong_version"
    assert writes(w.log) == []
    assert w.node.camera.version == "V5.8.0"
    approved = w.command(params=w.firmware(approved="alice"))
    assert await ex.submit(w.sign(approved)) == "succeeded"
    assert w.node.camera.version == "V5.7.3"


def _stored(state: Path) -> Path:
    return next((state / "tuf" / "targets").rglob("*.fw.bin"))


@pytest.mark.parametrize("attack", ["hash", "endless", "short"])
async def test_tampered_images_are_refused(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, attack: str
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path)
    stored = _stored(w.tuf_state)
    data = stored.read_bytes()
    stored.write_bytes(
        {
            "hash": data[:-1] + bytes([data[-1] ^ 1]),
            "endless": data + b"\0" * (8 * 1024 * 1024),
            "short": data[:-100],
        }[attack]
    )
    ex = w.executor()
    assert await ex.submit(w.sign(w.command())) == "failed:download_rejected"
    assert writes(w.log) == []
    assert not (w.state / "firmware" / "images").exists() or not any(
        (w.state / "firmware" / "images").iterdir()
    )
    assert not any((w.state / "firmware" / "partial").iterdir())


async def test_mixed_metadata_is_refused_without_touching_the_camera(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path)
    served = w.tuf_state / "tuf" / "metadata"
    first_targets = (served / "1.targets.json").read_bytes()
    newer = make_image("hikvision", "V5.8.0", dt.date(2024, 6, 1), 4096, model=MODEL)
    publish_image(w.tuf_state, collector_tuf.repo, newer, version="V5.8.0")
    # serve the old (validly signed) targets under the name the new snapshot points to
    (served / "2.targets.json").write_bytes(first_targets)
    assert await w.executor().submit(w.sign(w.command())) == "failed:metadata_rejected"
    assert w.log == []


async def test_frozen_metadata_is_refused_without_touching_the_camera(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path)
    # what a freeze attacker serves: validly signed metadata whose timestamp has expired
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    newer = make_image("hikvision", "V5.8.0", dt.date(2024, 6, 1), 4096, model=MODEL)
    publish_image(w.tuf_state, collector_tuf.repo, newer, version="V5.8.0", now=old)
    assert await w.executor().submit(w.sign(w.command())) == "failed:metadata_rejected"
    assert w.log == []


async def test_cameras_of_one_agent_take_the_same_image_at_once(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """A rollout sends one agent several commands for the same image (one per camera, up to
    the per-site cap): they share one verified download, and the image is kept until the last
    of them is done with it."""
    fleet = await lab_fleet(LAB.replace('id = "hik"', 'id = "hik"\ncount = 4'))
    nodes = [fleet[f"hik-{n}"] for n in range(1, 5)]
    w = World.make(
        tmp_path, collector_tuf.state, collector_tuf.base_url, nodes[0], others=nodes[1:]
    )
    image = make_image("hikvision", "V5.8.0", dt.date(2024, 6, 1), 4 * 2**20, model=MODEL)
    publish_image(w.tuf_state, collector_tuf.repo, image, version="V5.8.0")
    params = w.firmware("hikvision/V5.8.0/fw-V5.8.0.bin", "V5.8.0")
    ex = w.executor()
    tokens = [w.sign(w.command(camera_id=n.id, params=params)) for n in nodes]
    assert await asyncio.gather(*(ex.submit(t) for t in tokens)) == ["succeeded"] * 4
    assert [n.camera.version for n in nodes] == ["V5.8.0"] * 4
    assert not any((w.state / "firmware" / "images").iterdir())  # removed once all are done
    assert not any((w.state / "firmware" / "partial").iterdir())
