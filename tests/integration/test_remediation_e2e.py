"""A remediation plan over a small lab, end to end through real processes: the camera lab, a
real Mosquitto, ``camwarden-server run`` and one ``camwarden-agent run``. The plan is made and
approved through the collector's command line, the rollout goes out as signed commands, the
agent changes the cameras, and the per-setting results come back to the plan; the agent's next
report shows the findings closed. One camera ignores a write (``write_faults``): reported so,
and rolled back later by the operator."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import select

from lab.broker import Mosquitto
from lab.config import load_config
from lab.testing import private_base
from server.domain.remediation import PlanDetail, Remediations
from server.storage import Repository
from server.storage.models import Camera, Finding
from tests.support.firmware import ADMIN, scope
from tests.support.stack import (
    AGENT,
    Collector,
    enroll_agent,
    start,
    start_lab,
    stop,
    write_agent_config,
)

pytestmark = pytest.mark.integration

LAB = """[lab]
mode = "loopback"
loopback_base = "{base}"

[[camera]]
id = "hik"
persona = "hikvision"
telnet = true
upnp = true

[[camera]]
id = "dahua"
persona = "dahua"
telnet = true
write_faults = {{ ignore = ["telnet"] }}
"""
AGENT_SETTINGS = """[intervals]
heartbeat_s = 5
report_s = 10
[audit]
interval_s = 86400
guess_default_credentials = false
[network]
port_offset = {port_offset}
camera_subnets = ["{subnet}"]
probe_timeout_s = 2.0
udp_window_s = 0.3
"""
TIMEOUT_S = 240.0


def wait(what: str, check: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


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
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    collector = Collector(
        tmp_path / "collector", broker.port, settings="[firmware]\nscheduler_interval_s = 0.5"
    )
    procs = []
    repo: Repository | None = None
    try:
        collector.cli("migrate")
        collector.organisation(["site-1"])
        collector.start()
        lab_file = tmp_path / "lab.toml"
        base = private_base()
        lab_file.write_text(LAB.format(base=base))
        lab_proc, cameras = start_lab(lab_file, tmp_path)
        procs.append(lab_proc)
        lab = load_config(lab_file)
        config = write_agent_config(
            tmp_path / "agent",
            agent_id="agent-1",
            site="site-1",
            broker=(broker.host, broker.port),
            collector_url=collector.url,
            cameras=cameras,
            lab=lab,
            settings=AGENT_SETTINGS.format(
                port_offset=lab.lab.port_shift,
                subnet=ipaddress.IPv4Network(f"{base}/24", strict=False),
            ),
        )
        enroll_agent(config, collector, "site-1")
        procs.append(start([*AGENT, "run", "--config", str(config)], tmp_path / "agent.log"))
        repo = Repository.open(f"sqlite:///{collector.home / 'collector.db'}")

        def audited() -> bool:
            with repo.engine.connect() as conn:
                done = select(Camera.camera_id).where(Camera.audited_at.is_not(None))
                return len(conn.scalars(done).all()) == len(cameras)

        wait("the first audit", audited)
        found = failing(repo, "hik")
        assert {"svc.telnet_open", "svc.upnp_answers"} <= found, found
        dry = collector.cli("remediate", "plan", "--control", "SVC,COM")
        assert dry.startswith("2 camera(s) to change, 0 left out"), dry
        escrow = tmp_path / "escrow.jwk"
        escrow.write_text(json.dumps(OKPKey.generate_key("X25519").as_dict(private=False)))
        made = collector.cli(
            "remediate", "plan", "--control", "SVC,COM", "--create", "--name", "e2e",
            "--escrow-key", str(escrow), "--canary", "1", "--failure-threshold", "5",
        )  # fmt: skip
        plan_id = int(made.split()[1])
        collector.cli("remediate", "--by", "op", "approve", str(plan_id))
        rem = Remediations(scope(repo, ADMIN))

        def phase() -> str:
            return rem.plan(plan_id).rollout.rollout.phase

        wait("the canary", lambda: phase() in ("awaiting_promotion", "paused", "completed"))
        if phase() == "awaiting_promotion":
            collector.cli("remediate", "--by", "op", "promote", str(plan_id))
        wait("the rollout's end", lambda: phase() in ("completed", "paused"))
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
        wait("the re-audit's report", lambda: not {"svc.telnet_open"} & failing(repo, "hik"))
        status = collector.cli("remediate", "status", str(plan_id))
        assert "telnet applied" in status, status
        # the operator rolls the Hikvision back to its snapshot
        collector.cli("remediate", "--by", "op", "rollback", str(plan_id), hik.agent_id,
                      hik.camera_id)  # fmt: skip

        def restored() -> bool:
            item = next(i for i in rem.plan(plan_id).items if i.camera_id == hik.camera_id)
            return item.rollback_status in ("succeeded", "failed", "rejected")

        wait("the rollback", restored)
        item = next(i for i in rem.plan(plan_id).items if i.camera_id == hik.camera_id)
        assert item.rollback_status == "succeeded", item
        wait("telnet open again", lambda: "svc.telnet_open" in failing(repo, "hik"))
    finally:
        if repo is not None:
            repo.close()
        for proc in reversed(procs):
            stop(proc)
        collector.stop()
        broker.stop()
