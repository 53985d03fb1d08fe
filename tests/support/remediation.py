"""A remediation rollout over a lab through real processes, shared by the rollout test and
``bench/remediate_rollout.py``: Mosquitto, the collector (``camwarden-server run`` on SQLite,
set up through its command line), the camera lab (``camwarden-lab up``) and one
``camwarden-agent run`` for the site, enrolled with an approved token, the cameras' credentials
in its vault. Then a plan stored and approved through ``camwarden-server remediate``, promoted
after its canary, followed to its end."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import OKPKey
from sqlalchemy import func, select

from lab.broker import Mosquitto
from lab.config import load_config
from lab.testing import private_base
from protocol.remediation import REMEDIES
from server.domain.remediation import Remediations
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

ENDED = ("completed", "paused", "halted")


@dataclass(frozen=True)
class RolloutLab:
    work: Path
    collector: Collector
    repo: Repository
    cameras: dict[str, dict[str, object]]

    def remediations(self) -> Remediations:
        return Remediations(scope(self.repo, ADMIN))

    def audited(self) -> int:
        with self.repo.engine.connect() as conn:
            done = select(func.count()).where(Camera.audited_at.is_not(None))
            return conn.scalar(done) or 0

    def failing(self, cameras: set[tuple[str, str]], families: set[str]) -> Counter[str]:
        """The remediable findings of ``families`` (SVC, COM ...) still failing on
        ``cameras``, by code."""
        with self.repo.engine.connect() as conn:
            rows = conn.execute(
                select(Finding.agent_id, Finding.camera_id, Finding.code, Finding.controls).where(
                    Finding.status == "fail", Finding.code.in_(list(REMEDIES))
                )
            ).all()
        return Counter(
            r.code
            for r in rows
            if (r.agent_id, r.camera_id) in cameras
            and any(c.split("-")[0] in families for c in r.controls)
        )

    def create_plan(self, controls: str, name: str, *options: str) -> int:
        """The plan of ``controls`` stored (``options``: ``--canary`` ...), with an escrow
        key made here; returns its id."""
        escrow = self.work / "escrow.jwk"
        escrow.write_text(json.dumps(OKPKey.generate_key("X25519").as_dict(private=False)))
        out = self.collector.cli(
            "remediate", "plan", "--control", controls, "--create", "--name", name,
            "--escrow-key", str(escrow), *options,
        )  # fmt: skip
        return int(out.split()[1])

    def run_plan(self, plan_id: int, deadline: float) -> str:
        """Approve the plan, promote it after its canary, and follow it to its end or
        ``deadline`` (monotonic); returns the last phase seen."""
        self.collector.cli("remediate", "--by", "operator", "approve", str(plan_id))
        rem = self.remediations()
        phase = ""
        while time.monotonic() < deadline:
            phase = rem.plan(plan_id).rollout.rollout.phase
            if phase == "awaiting_promotion":
                self.collector.cli("remediate", "--by", "operator", "promote", str(plan_id))
            elif phase in ENDED:
                break
            time.sleep(0.25)
        return phase


def wait(what: str, check: Callable[[], bool], deadline: float, every: float = 0.5) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


# the agent of the remediation tests: quick reports, no guessing, probes bounded for the lab
FAST_AGENT = """[intervals]
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


@contextmanager
def rollout_lab(
    work: Path, lab_config: Path, site: str, agent_settings: str, deadline: float
) -> Iterator[RolloutLab]:
    """Everything up, the lab of ``lab_config`` on a free loopback range, and every camera
    audited once by the agent (``agent_settings``: TOML tables; ``{port_offset}`` and
    ``{subnet}``, the lab's /24, are filled in) before ``deadline`` (monotonic); stopped again
    on leaving."""
    with ExitStack() as stack:
        broker = Mosquitto(work / "broker")
        broker.start()
        stack.callback(broker.stop)
        collector = Collector(
            work / "collector", broker.port, settings="[firmware]\nscheduler_interval_s = 0.5"
        )
        collector.cli("migrate")
        collector.organisation([site])
        collector.start()
        stack.callback(collector.stop)
        lab_file, base = work / "lab.toml", private_base()
        lab_file.write_text(
            re.sub(r'(?m)^loopback_base = ".*"$', f'loopback_base = "{base}"',
                   lab_config.read_text())
        )  # fmt: skip
        lab_proc, cameras = start_lab(lab_file, work)
        stack.callback(stop, lab_proc)
        lab = load_config(lab_file)
        config = write_agent_config(
            work / "agent",
            agent_id="agent-1",
            site=site,
            broker=(broker.host, broker.port),
            collector_url=collector.url,
            cameras=cameras,
            lab=lab,
            settings=agent_settings.format(
                port_offset=lab.lab.port_shift,
                subnet=ipaddress.IPv4Network(f"{base}/24", strict=False),
            ),
        )
        enroll_agent(config, collector, site)
        agent = start([*AGENT, "run", "--config", str(config)], work / "agent" / "log")
        stack.callback(stop, agent)
        repo = Repository.open(f"sqlite:///{collector.home / 'collector.db'}")
        stack.callback(repo.close)
        running = RolloutLab(work, collector, repo, cameras)
        wait("the first audit", lambda: running.audited() == len(cameras), deadline, 1.0)
        yield running
