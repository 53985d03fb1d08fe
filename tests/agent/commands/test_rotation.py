"""password.rotate against a lab camera: the new password works and the old one fails, the
vault holds it, the escrow decrypts it, the hook gets it on stdin; a foreign escrow key is
refused before the camera is touched."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from joserfc import jwe
from joserfc.jwk import OKPKey

from agent.commands.schedule import RotationSchedule
from agent.config import RotationConfig
from agent.credentials.passwords import assess_password
from agent.errors import StorageError
from lab.testing import LabFactory
from protocol.commands import PASSWORD_ROTATE
from tests.agent.commands.world import LAB, PASSWORD, World, writes
from tests.agent.conftest import Collector

pytestmark = pytest.mark.integration


def escrow() -> tuple[OKPKey, dict[str, object]]:
    key = OKPKey.generate_key("X25519")
    public = key.as_dict(private=False)
    return key, {
        "escrow_kid": key.thumbprint(),
        "escrow_jwk": json.dumps(public),
        "username": "admin",
        "min_length": 24,
    }


async def test_rotation_end_to_end(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    org, params = escrow()
    received = tmp_path / "hook.json"
    hook = (
        sys.executable,
        "-c",
        f"import sys; open({str(received)!r}, 'w').write(sys.stdin.read())",
    )
    fleet = await lab_fleet(LAB)
    w = World.make(
        tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["hik"],
        rotation=RotationConfig(escrow_kid=org.thumbprint(), hook=hook),
    )  # fmt: skip
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == [
        "accepted", "preflight", "generating", "applying", "verifying", "sealing", "succeeded",
    ]  # fmt: skip
    final = w.results()[-1]
    assert final.details["escrow_kid"] == org.thumbprint()
    assert final.details["hook"] == "ok"
    sealed = final.details["sealed"]
    assert isinstance(sealed, str)
    opened = json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")
    new = opened["password"]
    stored = w.credentials.credential("hik")
    assert stored is not None
    assert stored.password == new != PASSWORD
    assert w.credentials.credential("hik.pending") is None
    assert w.node.camera.users["admin"].password == new
    verdict = assess_password(new)
    assert verdict.meets_724
    assert verdict.length >= 24
    assert json.loads(received.read_text())["password"] == new
    for path in w.state.rglob("*"):
        if path.is_file():
            assert new.encode() not in path.read_bytes(), path  # only the vault has it


@pytest.mark.parametrize("attack", ["not_the_org_key", "kid_mismatch", "private_key_sent"])
async def test_foreign_escrow_keys_are_refused_before_the_camera(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, attack: str
) -> None:
    org, _ = escrow()
    attacker, params = escrow()
    if attack == "kid_mismatch":
        params["escrow_kid"] = org.thumbprint()  # claims the org's kid, carries another key
    if attack == "private_key_sent":
        params["escrow_jwk"] = json.dumps(attacker.as_dict(private=True))
    fleet = await lab_fleet(LAB)
    w = World.make(
        tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["hik"],
        rotation=RotationConfig(escrow_kid=org.thumbprint()),
    )  # fmt: skip
    command = w.command(PASSWORD_ROTATE, params=params)
    reason = await w.executor().submit(w.sign(command))
    assert (
        reason
        == {
            "not_the_org_key": "rejected:escrow_key_not_pinned",
            "kid_mismatch": "rejected:escrow_key_mismatch",
            "private_key_sent": "rejected:escrow_key_mismatch",
        }[attack]
    )
    assert w.log == []
    assert w.node.camera.users["admin"].password == PASSWORD


async def scheduled_world(
    lab_fleet: LabFactory, collector: Collector, tmp_path: Path
) -> tuple[World, OKPKey]:
    """One lab camera and an agent rotating every 30 days, sealing to the organisation's key."""
    org, _ = escrow()
    jwk_file = tmp_path / "org-escrow.jwk"
    jwk_file.write_text(json.dumps(org.as_dict(private=False)))
    fleet = await lab_fleet(LAB)
    w = World.make(
        tmp_path, collector.state, collector.base_url, fleet["hik"],
        rotation=RotationConfig(
            escrow_kid=org.thumbprint(), escrow_jwk_file=str(jwk_file), interval_days=30
        ),
    )  # fmt: skip
    return w, org


async def test_scheduled_rotation_seals_to_the_pinned_key(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w, org = await scheduled_world(lab_fleet, collector_tuf, tmp_path)
    schedule = RotationSchedule(w.executor())
    now = datetime.now(UTC)
    assert await schedule.run_due(now) == ["succeeded"]
    assert await schedule.run_due(now) == []  # not due again for 30 days
    sealed = w.results()[-1].details["sealed"]
    assert isinstance(sealed, str)
    new = json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")["password"]
    assert w.node.camera.users["admin"].password == new
    assert [r for r in writes(w.log) if r.target == "/ISAPI/Security/users/1"]  # ISAPI first


async def test_a_scheduled_rotation_cut_short_is_finished_once_after_a_restart(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w, _ = await scheduled_world(lab_fleet, collector_tuf, tmp_path)
    now = datetime.now(UTC)
    running = asyncio.create_task(RotationSchedule(w.executor()).run_due(now))
    journal = w.state / "commands" / "journal"
    async with asyncio.timeout(30):
        while not list(journal.glob("rot-*.json")):  # noqa: ASYNC110  # written in a thread
            await asyncio.sleep(0.01)
    running.cancel()  # the agent stopped: the command stays in the journal
    with contextlib.suppress(asyncio.CancelledError):
        await running

    executor = w.executor()  # the next start
    schedule = RotationSchedule(executor)
    assert await schedule.run_due(now) == []  # the journal holds the camera's rotation
    finished = await executor.resume()
    assert [status for _, status in finished] == ["succeeded"]
    schedule.settle(finished, now)
    assert await schedule.run_due(now) == []  # rotated: not due for 30 days
    stored = w.credentials.credential("hik")
    assert stored is not None
    assert w.node.camera.users["admin"].password == stored.password != PASSWORD


async def test_an_unreadable_schedule_state_rotates_nothing(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w, _ = await scheduled_world(lab_fleet, collector_tuf, tmp_path)
    (w.state / "rotation.json").write_text('{"rotated": ')
    with pytest.raises(StorageError, match=r"rotation\.json is unreadable"):
        await RotationSchedule(w.executor()).run_due(datetime.now(UTC))
    assert w.node.camera.users["admin"].password == PASSWORD


async def test_resume_leaves_a_rotation_under_way_alone(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """At start the daemon resumes the journal while the schedule may already have journaled
    its rotation: resume must not run that command a second time (it did when the journal was
    read after the schedule wrote to it, on a loaded machine)."""
    w, _ = await scheduled_world(lab_fleet, collector_tuf, tmp_path)
    executor = w.executor()
    now = datetime.now(UTC)
    running = asyncio.create_task(RotationSchedule(executor).run_due(now))
    journal = w.state / "commands" / "journal"
    async with asyncio.timeout(30):
        while not list(journal.glob("rot-*.json")):  # noqa: ASYNC110  # written in a thread
            await asyncio.sleep(0.01)
    assert await executor.resume() == []  # under way here, not cut short
    assert await running == ["succeeded"]
    assert [r.status for r in w.results() if r.status != "in_progress"] == ["succeeded"]
    stored = w.credentials.credential("hik")
    assert stored is not None
    assert w.node.camera.users["admin"].password == stored.password != PASSWORD
