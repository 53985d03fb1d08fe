"""One remediation plan over the 50 cameras of ``configs/lab/mixed-50.toml`` (Hikvision, Dahua,
Axis, generic ONVIF; ``tests/fixtures/lab/remediate-50.toml``: telnet and UPnP left on, two
Dahua cameras that ignore the telnet write), end to end through real processes: planned and
approved through the collector's command line, its canary then large batches carried out by one
agent, every camera's per-setting results back on the plan, the re-audit clean, and the agent's
next report showing the planned SVC/COM findings closed. Nothing is ignored or clamped but the
seeded write faults."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.remediation import FAST_AGENT, rollout_lab, wait

pytestmark = pytest.mark.integration

LAB = Path(__file__).resolve().parents[1] / "fixtures" / "lab" / "remediate-50.toml"
STUCK = "dahua-stuck"  # ignores the telnet write
CONTROLS = "SVC,COM,SVC-08"  # SVC-08 named: the site asks for discovery off
TIMEOUT_S = 420.0  # generous for a loaded machine; about a minute at low load


def test_plan_over_fifty_cameras_canary_then_batches(tmp_path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    with rollout_lab(tmp_path, LAB, "site-1", FAST_AGENT, deadline) as lab:
        assert len(lab.cameras) == 50
        plan_id = lab.create_plan(
            CONTROLS, "fifty", "--canary", "2", "--batch-size", "30", "--max-parallel", "25",
            "--failure-threshold", "3",
        )  # fmt: skip
        assert lab.run_plan(plan_id, deadline) == "completed"
        d = lab.remediations().plan(plan_id)
        planned = [i for i in d.items if i.state == "planned"]
        assert len(planned) >= 40, [(i.camera_id, i.reason) for i in d.items]
        assert d.rollout.rollout.stages >= 3  # the canary, then batches
        for item in planned:
            assert set(item.results) == set(item.changes), item
            outcomes = {k: v["outcome"] for k, v in item.results.items()}
            if item.camera_id.startswith(STUCK):
                assert (item.outcome, item.outcome_reason) == ("failed", "not_applied"), item
                assert outcomes["telnet"] == "ignored", item
                continue
            assert (item.outcome, item.sealed) == ("succeeded", True), item
            assert not set(outcomes.values()) & {"ignored", "clamped", "unsupported"}, item
            assert item.reaudit, item
            assert not item.reaudit.get("fail"), item
        assert sum(i.camera_id.startswith(STUCK) for i in planned) == 2
        assert sum("telnet" in i.results for i in planned) == 35
        # the agent's next report carries the re-audit: the planned findings are closed
        cameras = {(i.agent_id, i.camera_id) for i in planned if i.outcome == "succeeded"}
        wait(
            "the re-audit's report",
            lambda: not lab.failing(cameras, {"SVC", "COM"}),
            deadline,
        )
