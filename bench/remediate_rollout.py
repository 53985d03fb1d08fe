"""Remediation of every SVC and COM finding of ``configs/lab/mixed-100.toml`` as one planned
rollout, real end to end.

Everything is a real process on loopback: the camera lab (``camwarden-lab up`` with the
mixed-100 cameras: Hikvision, Dahua, Axis, generic ONVIF); Mosquitto; the collector
(``camwarden-server run`` on SQLite, set up through its command line); one
``camwarden-agent run`` for the site, enrolled with an approved token, the cameras' credentials
in its vault, auditing once at start. Then, through ``camwarden-server remediate``: the dry run
over controls ``SVC,COM``, the plan stored (canary, batches, per-site parallel cap), approved,
promoted after its canary; the agent carries out each signed ``settings.apply``.

Prints the set-up time, the dry run (cameras to change and left out by reason, settings by
name, its time), the wall time from approval to the end, cameras fixed, per-setting outcomes
(applied, clamped, ignored ...), the re-audit's verdicts, the SVC/COM findings still failing on
the planned cameras after their next report, and the machine's load.

    python bench/remediate_rollout.py [--canary 5] [--batch-size 25] [--max-parallel 10]
                                      [--timeout-s 900] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import end_to_end
from bench.end_to_end import AGENT_SETTINGS, load
from server.domain.remediation import Options, PlanDetail, PlanItem, Selection
from tests.support.remediation import RolloutLab, rollout_lab

LAB = Path(__file__).resolve().parents[1] / "configs" / "lab" / "mixed-100.toml"
SITE, CONTROLS = "site-1", "SVC,COM,SVC-08"  # SVC-08 named: the site asks for discovery off


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canary", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--max-parallel", type=int, default=10, help="per site")
    return end_to_end.main(parser, run, timeout_s=900.0, prefix="remediate-")


def run(args: argparse.Namespace, work: Path, stack: ExitStack) -> int:
    started = time.monotonic()
    deadline = started + args.timeout_s
    try:
        lab = stack.enter_context(rollout_lab(work, LAB, SITE, AGENT_SETTINGS, deadline))
    except AssertionError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"set-up: {len(lab.cameras)} lab cameras audited by one agent in "
          f"{time.monotonic() - started:.1f} s; {load()}")  # fmt: skip
    t = time.monotonic()
    dry = lab.collector.cli("remediate", "plan", "--control", CONTROLS)
    print(f"dry run ({time.monotonic() - t:.2f} s): {dry.splitlines()[0]}")
    rem = lab.remediations()
    describe(rem.preview(Selection(control=CONTROLS), Options()).items)
    t = time.monotonic()
    plan_id = lab.create_plan(
        CONTROLS, "svc-com", "--canary", str(args.canary), "--batch-size", str(args.batch_size),
        "--max-parallel", str(args.max_parallel), "--failure-threshold", str(len(lab.cameras)),
    )  # fmt: skip
    print(f"stored ({time.monotonic() - t:.2f} s): plan {plan_id}")
    t0 = time.monotonic()
    phase = lab.run_plan(plan_id, deadline)
    wall = time.monotonic() - t0
    d = rem.plan(plan_id)
    planned = {(i.agent_id, i.camera_id) for i in d.items if i.state == "planned"}
    report(d, wall, phase)
    left = settled(lab, planned, deadline + 120)
    print(f"SVC/COM findings still failing on the planned cameras: {sum(left.values())} "
          f"{dict(left) if left else ''}")  # fmt: skip
    print(f"{load()}; measured at {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 0 if phase == "completed" and not left else 1


def settled(lab: RolloutLab, planned: set[tuple[str, str]], until: float) -> Counter[str]:
    """The findings still failing once the agent's ordinary report after the re-audit came
    (or ``until``, monotonic)."""
    families = {"SVC", "COM"}
    while (left := lab.failing(planned, families)) and time.monotonic() < until:
        time.sleep(2)
    return left


def describe(items: list[PlanItem]) -> None:
    planned = [i for i in items if i.reason is None]
    reasons = Counter(i.reason for i in items if i.reason)
    settings = Counter(k for i in planned for k in i.changes)
    skipped = Counter(f"{k.setting or k.code}: {k.reason}" for i in items for k in i.skipped)
    print(f"plan: {len(planned)} cameras to change, left out {dict(reasons)}")
    print(f"  settings: {dict(settings)}")
    print(f"  left out per finding: {dict(skipped)}")


def report(d: PlanDetail, wall: float, phase: str) -> None:
    r = d.rollout.rollout
    planned = [i for i in d.items if i.state == "planned"]
    outcomes = Counter(v["outcome"] for i in planned for v in i.results.values())
    finals = Counter(
        f"{i.outcome}{'/' + i.outcome_reason if i.outcome_reason else ''}" for i in planned
    )
    clean = sum(1 for i in planned if i.reaudit and not i.reaudit.get("fail"))
    print(f"wall time: {wall:.1f} s from approval to {phase} ({r.stages} stages)")
    print(f"cameras fixed: {r.succeeded}/{r.total}; results {dict(finals)}")
    print(f"settings: {dict(outcomes)}")
    print(f"re-audit clean (no control failing after the change): {clean}/{len(planned)}")
    for e in d.rollout.events:
        print(f"  {e.at.isoformat(timespec='seconds')}  {e.action} ({e.actor}) {e.detail}")


if __name__ == "__main__":
    sys.exit(main())
