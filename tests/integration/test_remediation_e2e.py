"""A remediation plan over a small lab, end to end through real processes: the camera lab, a
real Mosquitto, ``camwarden-server run`` and one ``camwarden-agent run``. The plan is made and
approved through the collector's command line, the rollout goes out as signed commands, the
agent changes the cameras, and the per-setting results come back to the plan; the agent's next
report shows the findings closed. One camera ignores a write (``write_faults``): reported so,
and rolled back later by the operator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from server.domain.remediation import PlanDetail
from server.storage import Repository
from server.storage.models import Finding
from tests.support.remediation import FAST_AGENT, rollout_lab, wait

pytestmark = pytest.mark.integration

LAB = """[lab]
mode = "loopback"
loopback_base = "127.0.0.0"

[[camera]]
id = "hik"
persona = "hikvision"
telnet = true
upnp = true

[[camera]]
id = "dahua"
persona = "dahua"
telnet = true
write_faults = { ignore = ["telnet"] }
"""
TIMEOUT_S = 240.0


def failing(repo: Repository, camera: str) -> set[str]:
    with repo.engine.connect() as conn:
        return set(
            conn.scalars(
                select(Finding.code).where(
                    Finding.camera_id.startswith(camera), Finding.status == "fail"
                )
            )
        )


def test_plan_approve_rollout_results_and_rollback(tmp_path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    lab_file = tmp_path / "lab-config.toml"
    lab_file.write_text(LAB)
    with rollout_lab(tmp_path, lab_file, "site-1", FAST_AGENT, deadline) as lab:
        repo, collector = lab.repo, lab.collector
        found = failing(repo, "hik")
        assert {"svc.telnet_open", "svc.upnp_answers"} <= found, found
        dry = collector.cli("remediate", "plan", "--control", "SVC,COM")
        assert dry.startswith("2 camera(s) to change, 0 left out"), dry
        plan_id = lab.create_plan("SVC,COM", "e2e", "--canary", "1", "--failure-threshold", "5")
        lab.run_plan(plan_id, deadline)  # the Dahua's failure is within the threshold
        rem = lab.remediations()
        d: PlanDetail = rem.plan(plan_id)
        items = {i.camera_id.split("-")[0]: i for i in d.items}
        hik, dahua = items["hik"], items["dahua"]
        assert (hik.outcome, hik.sealed) == ("succeeded", True), hik
        assert {k: v["outcome"] for k, v in hik.results.items()} == {
            "telnet": "applied",
            "upnp": "applied",
        }
        assert (dahua.outcome, dahua.outcome_reason) == ("failed", "not_applied"), dahua
        assert dahua.results["telnet"]["outcome"] == "ignored"
        # the agent's next report carries the re-audit: the Hikvision's findings are closed
        wait(
            "the re-audit's report",
            lambda: not {"svc.telnet_open"} & failing(repo, "hik"),
            deadline,
        )
        status = collector.cli("remediate", "status", str(plan_id))
        assert "telnet applied" in status, status
        # the operator rolls the Hikvision back to its snapshot
        collector.cli("remediate", "--by", "op", "rollback", str(plan_id), hik.agent_id,
                      hik.camera_id)  # fmt: skip

        def restored() -> bool:
            item = next(i for i in rem.plan(plan_id).items if i.camera_id == hik.camera_id)
            return item.rollback_status in ("succeeded", "failed", "rejected")

        wait("the rollback", restored, deadline)
        item = next(i for i in rem.plan(plan_id).items if i.camera_id == hik.camera_id)
        assert item.rollback_status == "succeeded", item
        wait("telnet open again", lambda: "svc.telnet_open" in failing(repo, "hik"), deadline)
