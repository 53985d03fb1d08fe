"""Agent, broker and collector as real processes, driven through their command lines.

The foundation's loss test: enrol through the HTTP API, publish through a real Mosquitto, stop
the broker mid-stream, kill -9 the agent mid-flush and the collector mid-ingest, restart them:
every message the agent issued is stored exactly once, and an auditor holding only the agent's
public key verifies the whole stored chain offline. The broker's PUBACK is not enough for that
(Mosquitto 2.0 drops an offline session's shared subscription on restart); the agent keeps each
message until the collector acknowledges it end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from server.storage import Repository
from server.storage.models import Message
from tests.agent.support import make_home, outbox_files, start_agent, state_seq, stop, wait_for
from tests.support import stack
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt import Subscriber
from tests.support.stack import AGENT

pytestmark = pytest.mark.integration


class Collector(stack.Collector):
    """``camwarden-server run`` on SQLite, restartable; what it stored."""

    def stored_seqs(self) -> list[int]:
        repo = Repository.open(f"sqlite:///{self.home / 'collector.db'}")
        try:
            with repo.engine.connect() as conn:
                return list(conn.scalars(select(Message.seq).where(Message.agent_id == "a1")))
        finally:
            repo.close()

    def stored_jws(self) -> list[str]:
        repo = Repository.open(f"sqlite:///{self.home / 'collector.db'}")
        try:
            with repo.engine.connect() as conn:
                return list(conn.scalars(select(Message.jws).order_by(Message.seq)))
        finally:
            repo.close()

    def metric(self, name: str, label: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.http_port}/metrics").text
        for line in text.splitlines():
            if line.startswith(f"{name}{{") and label in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
def collector(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Collector]:
    home = tmp_path / "collector"
    home.mkdir()
    col = Collector(home, mosquitto.port)
    col.cli("migrate")
    col.start()
    try:
        yield col
    finally:
        if col.proc is not None and col.proc.poll() is None:
            stop(col.proc, timeout=20)


def enrol(collector: Collector, config: Path) -> None:
    token = collector.token("s1")
    assert token.startswith("cwe_")  # never "-...", which --token would take for an option
    done = subprocess.run(
        [
            *AGENT,
            "enroll",
            "--server",
            f"http://127.0.0.1:{collector.http_port}",
            "--token",
            token,
            "--config",
            str(config),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr  # the token is a secret: never echoed
    answer = json.loads((config.parent / "state" / "enrollment.json").read_text())
    assert answer["status"] == "approved"


ACK_TIMEOUTS = {"ack_timeout_s": 1, "ack_timeout_max_s": 2}


def enrolled_agent(
    collector: Collector,
    mosquitto: Mosquitto,
    tmp_path: Path,
    *,
    heartbeat_s: float,
    report_s: float,
) -> Path:
    """An enrolled agent's config with short ack timeouts; returns the config path."""
    home = tmp_path / "agent"
    home.mkdir()
    config = make_home(
        home,
        mosquitto.port,
        mqtt=ACK_TIMEOUTS,
        shutdown_grace_s=20,
        heartbeat_s=heartbeat_s,
        report_s=report_s,
    )
    enrol(collector, config)
    return config


def test_nothing_lost_through_broker_outage_and_kill_9(
    mosquitto: Mosquitto, collector: Collector, tmp_path: Path
) -> None:
    config = enrolled_agent(collector, mosquitto, tmp_path, heartbeat_s=0.01, report_s=0.05)
    home = config.parent
    agent = start_agent(config)
    watcher = Subscriber(mosquitto.port)  # a plain persistent subscription: sees the flush
    try:
        wait_for(lambda: len(collector.stored_seqs()) >= 30, timeout=30)
        mosquitto.stop()  # outage mid-stream: the agent buffers on disk
        wait_for(lambda: len(outbox_files(config)) >= 300, timeout=30)
        collector.kill()  # the collector dies too; mosquitto 2.0 drops its shared subscription
        seen = len(watcher.snapshot())
        mosquitto.start()
        wait_for(lambda: len(watcher.snapshot()) > seen + 20, timeout=30, step=0.002)
        agent.kill()  # kill -9 mid-flush: published, PUBACKed, never acknowledged end to end
        agent.wait()
        assert outbox_files(config), "nothing is acknowledged while the collector is down"
        collector.start()
        agent = start_agent(config)
        killed_at = state_seq(config)
        wait_for(lambda: state_seq(config) > killed_at + 20, timeout=30)
        stop(agent, timeout=30)  # SIGTERM: flushes what is left and waits for the acks
    finally:
        watcher.close()
        if agent.poll() is None:
            agent.kill()
    issued = state_seq(config)
    assert outbox_files(config) == []
    wait_for(lambda: len(collector.stored_seqs()) >= issued, timeout=60)
    seqs = collector.stored_seqs()
    assert sorted(seqs) == list(range(1, issued + 1))  # every seq, each exactly once
    assert collector.metric("camwarden_ingest_rejected_total", 'reason="replay"') == 0
    assert collector.metric("camwarden_ingest_rejected_total", 'reason="broken_chain"') == 0

    # An auditor with only the agent's public key walks the stored chain offline.
    pubkey = home / "agent.jwk"
    pubkey.write_text(
        subprocess.run(
            [*AGENT, "pubkey", "--key", str(home / "agent.key")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    export = home / "stored.jws"
    export.write_text("\n".join(collector.stored_jws()) + "\n")
    done = collector.run("verify-report", "--pubkey", str(pubkey), str(export))
    assert done.returncode == 0, done.stdout + done.stderr
    tampered = export.read_text().replace("\n", "\nx", 1)
    export.write_text(tampered)
    bad = collector.run("verify-report", "--pubkey", str(pubkey), str(export))
    assert bad.returncode == 1
    assert f"{export}:2: malformed" in bad.stdout  # the CLI's file:line: reason format


def test_broker_restart_while_the_collector_is_down_loses_nothing(
    mosquitto: Mosquitto, collector: Collector, tmp_path: Path
) -> None:
    """Mosquitto 2.0 forgets an offline session's shared subscription when it restarts: what it
    had queued for the collector, and what agents publish until the collector subscribes again,
    is PUBACKed and dropped. The agent republishes until the collector acknowledges."""
    config = enrolled_agent(collector, mosquitto, tmp_path, heartbeat_s=0.05, report_s=0.25)
    agent = start_agent(config)
    try:
        wait_for(lambda: len(collector.stored_seqs()) >= 10, timeout=30)
        assert collector.proc is not None
        stop(collector.proc, timeout=20)  # clean stop: its session stays, queueing
        stopped_at = state_seq(config)
        wait_for(lambda: state_seq(config) > stopped_at + 10, timeout=30)
        mosquitto.restart()  # the offline collector session loses its shared subscription
        restarted_at = state_seq(config)
        wait_for(lambda: state_seq(config) > restarted_at + 10, timeout=30)  # no subscriber
        lost = set(range(stopped_at + 1, state_seq(config) + 1))
        collector.start()
        wait_for(lambda: lost <= set(collector.stored_seqs()), timeout=30)
        stop(agent, timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    issued = state_seq(config)
    assert outbox_files(config) == []
    wait_for(lambda: len(collector.stored_seqs()) >= issued, timeout=30)
    assert sorted(collector.stored_seqs()) == list(range(1, issued + 1))


def test_air_gapped_site_file_imports_through_the_same_checks(
    mosquitto: Mosquitto, collector: Collector, tmp_path: Path
) -> None:
    home = tmp_path / "agent"
    home.mkdir()
    config = make_home(home, free_port())  # no broker reachable from this site
    enrol(collector, config)
    out = home / "site.jws"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(2):
        subprocess.run(
            [*AGENT, "report", "--once", "--out", str(out), "--config", str(config)],
            check=True,
            env=env,
            capture_output=True,
        )
        first = collector.cli("import", str(out))
        assert "accepted" in first
    issued = state_seq(config)
    assert sorted(collector.stored_seqs()) == list(range(1, issued + 1))
    again = collector.run("import", str(out))
    assert "duplicate" in again.stdout  # the same file twice changes nothing
