"""A rollout end to end on a real broker and database: the scheduler signs and publishes
``firmware.apply`` commands, simulated agents verify and answer them, the ingest stores the
results, and the campaign moves canary -> promotion -> batches -> completed (or pauses)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from protocol import import_public_jwk, public_jwk
from server.domain.scope import Forbidden, Invalid, Principal
from server.firmware.scheduler import Scheduler
from server.firmware.service import FirmwareScoped, Selector
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.firmware_models import CommandRecord
from tests.firmware.fleet import SimFleet
from tests.server.conftest import Collector, Publisher, enroll, wait_until
from tests.support.agents import SimAgent
from tests.support.firmware import ADMIN, published_repo, scope
from tests.support.mosquitto import Mosquitto
from tests.support.sqlite import another_writer


@pytest.fixture
def fleet_agents(collector: Collector, publisher: Publisher, repo: Repository) -> list[SimAgent]:
    agents = [SimAgent(f"agent-{i}", site=f"site-{i % 3}") for i in range(6)]
    for a in agents:
        enroll(repo, a)
        publisher.publish(*a.report(cameras=2))
    wait_until(
        lambda: len(scope(repo, ADMIN).agents()) == 6 and scope(repo, ADMIN).fleet().cameras == 12
    )
    return agents


def run_scheduler(repo: Repository, state: Path, collector: Collector) -> Scheduler:
    sched = Scheduler(
        repo,
        TufRepository.under(state),
        collector.command_key,
        collector.subscriber.publish,
        clock=lambda: datetime.now(UTC),
        interval_s=0.05,
    )
    sched.start()
    return sched


def phase(repo: Repository, state: Path, rollout_id: int) -> str:
    return (
        FirmwareScoped(scope(repo, ADMIN), TufRepository.under(state))
        .rollout(rollout_id)
        .rollout.phase
    )


def test_campaign_canary_promotion_batches_completed(
    tmp_path: Path,
    repo: Repository,
    collector: Collector,
    mosquitto: Mosquitto,
    fleet_agents: list[SimAgent],
) -> None:
    image_id = published_repo(tmp_path, repo)
    key = import_public_jwk(public_jwk(collector.command_key))
    fleet = SimFleet(mosquitto.port, fleet_agents, key)
    fw = FirmwareScoped(scope(repo, ADMIN), TufRepository.under(tmp_path))
    created = fw.create_rollout(
        name="hik 5.7.3",
        image_id=image_id,
        selector=Selector(model="DS-2CD2143G2-I"),
        canary_count=2,
        canary_percent=None,
        batch_size=4,
        max_parallel_per_site=1,
        failure_threshold=2,
        windows={},
    )
    rid = created.rollout.id
    assert (created.rollout.total, created.rollout.stages) == (12, 4)
    sched = run_scheduler(repo, tmp_path, collector)
    try:
        wait_until(lambda: phase(repo, tmp_path, rid) == "awaiting_promotion", 30)
        assert len(fleet.commands) == 2
        FirmwareScoped(scope(repo, Principal(2, "bob", "operator", None, None, None)), fw.tuf).act(
            rid, "promote"
        )
        wait_until(lambda: phase(repo, tmp_path, rid) == "completed", 60)
    finally:
        sched.stop()
        fleet.close()
    d = fw.rollout(rid)
    assert d.rollout.succeeded == 12
    assert {t.step for t in d.targets} == {"verifying"}
    actions = [(e.action, e.actor) for e in d.events]
    assert actions[0] == ("create", "alice")
    assert ("promote", "bob") in actions
    assert actions[-1] == ("completed", "system")
    c = fleet.commands[0]
    assert c.action == "firmware.apply"
    assert c.params["target"] == "hikvision/V5.7.3/fw.bin"
    assert c.params["version"] == "V5.7.3"
    assert "downgrade_approved_by" not in c.params
    assert fleet.rejected == 0
    with repo.engine.connect() as conn:
        statuses = set(conn.execute(select(CommandRecord.status)).scalars())
    assert statuses == {"succeeded"}


def test_failures_pause_the_campaign_until_resumed(
    tmp_path: Path,
    repo: Repository,
    collector: Collector,
    mosquitto: Mosquitto,
    fleet_agents: list[SimAgent],
) -> None:
    image_id = published_repo(tmp_path, repo)
    key = import_public_jwk(public_jwk(collector.command_key))
    fleet = SimFleet(
        mosquitto.port,
        fleet_agents,
        key,
        fail=lambda agent, _cam: agent in ("agent-0", "agent-1"),
    )
    fw = FirmwareScoped(scope(repo, ADMIN), TufRepository.under(tmp_path))
    rid = fw.create_rollout(
        name="pause",
        image_id=image_id,
        selector=Selector(),
        canary_count=None,
        canary_percent=25,
        batch_size=12,
        max_parallel_per_site=2,
        failure_threshold=2,
        windows={},
    ).rollout.id
    sched = run_scheduler(repo, tmp_path, collector)
    try:
        wait_until(lambda: phase(repo, tmp_path, rid) == "paused", 30)
        wait_until(lambda: fw.rollout(rid).rollout.in_flight == 0, 30)  # results still land
    finally:
        sched.stop()
        fleet.close()
    d = fw.rollout(rid)
    assert d.events[-1].action == "auto_pause"
    assert {t.reason for t in d.targets if t.state == "failed"} == {"camera_refused"}
    viewer = FirmwareScoped(scope(repo, Principal(3, "vic", "viewer", None, None, None)), fw.tuf)
    with pytest.raises(Forbidden, match="operator"):
        viewer.act(rid, "resume")
    with pytest.raises(Invalid):
        fw.act(rid, "promote")
    assert fw.act(rid, "resume").rollout.phase == "awaiting_promotion"
    assert [e.actor for e in fw.rollout(rid).events if e.action == "resume"] == ["alice"]


def test_operator_actions_wait_for_a_concurrent_writer(
    tmp_path: Path, db_url: str, repo: Repository, fleet_agents: list[SimAgent]
) -> None:
    """Creating and halting a rollout read, then write: on SQLite they wait for the lock the
    running collector's ingest or scheduler holds instead of failing "database is locked"."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer")
    image_id = published_repo(tmp_path, repo)
    fw = FirmwareScoped(scope(repo, ADMIN), TufRepository.under(tmp_path))
    with another_writer(db_url):
        created = fw.create_rollout(
            name="busy",
            image_id=image_id,
            selector=Selector(),
            canary_count=2,
            canary_percent=None,
            batch_size=4,
            max_parallel_per_site=1,
            failure_threshold=2,
            windows={},
        )
    assert created.rollout.total == 12
    with another_writer(db_url):
        halted = fw.act(created.rollout.id, "halt")
    assert halted.rollout.phase == "halted"
