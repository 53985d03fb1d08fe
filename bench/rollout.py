"""A simulated firmware rollout: 100 lab cameras across 5 sites, real broker, real collector.

The collector side is real (ingest subscriber, database, TUF repository, scheduler signing and
publishing commands). The agent side is SIMULATED: there is no agent update executor yet, so
tests/firmware/fleet.py answers each signed firmware.apply command with the contract's
CommandResult steps over MQTT (no camera is flashed). Prints wall time and a per-step timeline.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import import_public_jwk, public_jwk
from server.firmware.scheduler import Scheduler
from server.firmware.service import FirmwareScoped, Selector
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.web.scope import Principal
from tests.firmware.fleet import SimFleet
from tests.server.conftest import Collector, Publisher, enroll, make_config, wait_until
from tests.support.agents import SimAgent
from tests.support.firmware import ADMIN, published_repo, scope
from tests.support.mosquitto import Mosquitto

SITES, AGENTS_PER_SITE, CAMERAS_PER_AGENT = 5, 2, 10
STEP_DELAY_S = 0.05


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        broker = Mosquitto(base / "broker")
        broker.start()
        db = f"sqlite:///{base / 'collector.db'}"
        repo = Repository.open(db)
        repo.migrate()
        collector = Collector(make_config(db, broker.port), repo)
        collector.subscriber.start()
        publisher = Publisher(broker.port)
        try:
            return run(base, repo, collector, publisher, broker)
        finally:
            publisher.close()
            collector.subscriber.stop()
            repo.close()
            broker.stop()


def run(
    base: Path, repo: Repository, collector: Collector, publisher: Publisher, broker: Mosquitto
) -> int:
    agents = [
        SimAgent(f"agent-{s}-{i}", site=f"site-{s}")
        for s in range(SITES)
        for i in range(AGENTS_PER_SITE)
    ]
    for a in agents:
        enroll(repo, a)
        publisher.publish(*a.report(cameras=CAMERAS_PER_AGENT))
    total = len(agents) * CAMERAS_PER_AGENT
    wait_until(lambda: scope(repo, ADMIN).fleet().cameras == total, 60)
    image_id = published_repo(base, repo)
    fleet = SimFleet(
        broker.port,
        agents,
        import_public_jwk(public_jwk(collector.command_key)),
        step_delay_s=STEP_DELAY_S,
    )
    tuf = TufRepository.under(base)
    fw = FirmwareScoped(scope(repo, ADMIN), tuf)
    sched = Scheduler(
        repo,
        tuf,
        collector.command_key,
        collector.subscriber.publish,
        clock=lambda: datetime.now(UTC),
        interval_s=0.1,
    )
    t0 = time.monotonic()
    rid = fw.create_rollout(
        name="bench",
        image_id=image_id,
        selector=Selector(model="DS-2CD2143G2-I"),
        canary_count=5,
        canary_percent=None,
        batch_size=25,
        max_parallel_per_site=4,
        failure_threshold=5,
        windows={},
    ).rollout.id
    sched.start()
    operator = FirmwareScoped(scope(repo, Principal(2, "bench", "operator", None, None, None)), tuf)
    marks: list[tuple[float, str]] = [(0.0, "created (canary of 5 starts)")]
    try:
        wait_until(lambda: fw.rollout(rid).rollout.phase == "awaiting_promotion", 120)
        marks.append((time.monotonic() - t0, "canary done; promoted by the operator"))
        operator.act(rid, "promote")
        wait_until(lambda: fw.rollout(rid).rollout.phase == "completed", 600)
        marks.append((time.monotonic() - t0, "completed"))
    finally:
        sched.stop()
        fleet.close()
    wall = time.monotonic() - t0
    d = fw.rollout(rid)
    for e in d.events:
        if e.action == "batch_done":
            marks.append(
                (e.at.timestamp() - d.events[0].at.timestamp(), f"batch {e.detail['stage']} done")
            )
    print(
        "simulated agents (no update executor yet): "
        f"{len(agents)} agents, {total} cameras, {SITES} sites"
    )
    print("policy: canary 5, batches of 25, at most 4 upgrades in parallel per site")
    print(
        f"wall time: {wall:.2f} s; succeeded {d.rollout.succeeded}/{d.rollout.total}; "
        f"commands {len(fleet.commands)}, rejected by agents {fleet.rejected}"
    )
    print("timeline:")
    for at, what in sorted(marks):
        print(f"  {at:7.2f} s  {what}")
    first: dict[str, float] = {}
    steps: dict[str, list[float]] = {}
    for t, command, status, step in fleet.timeline:
        start = first.setdefault(command, t)
        steps.setdefault(f"{status}:{step}" if step else status, []).append(t - start)
    print("per step, seconds after the agent accepted the command (median / max):")
    for name, values in sorted(steps.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {name:24s} {statistics.median(values):6.3f} {max(values):6.3f}")
    return 0 if d.rollout.succeeded == total else 1


if __name__ == "__main__":
    sys.exit(main())
