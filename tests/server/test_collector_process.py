"""``camwarden-server run`` as real processes: kill -9 mid-stream, and two collectors sharing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.storage import Repository
from server.storage.models import Message
from tests.server.conftest import Publisher, enroll, wait_until
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start(tmp: Path, broker: Mosquitto, db_url: str, client_id: str) -> subprocess.Popen[bytes]:
    """Start a collector and wait until it reports MQTT connected on /healthz."""
    port = free_port()
    config = tmp / f"{client_id}.toml"
    config.write_text(
        f'state_dir = "{tmp}"\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[mqtt]\nport = {broker.port}\nclient_id = "{client_id}"\n'
        f"[http]\nport = {port}\n"
        "[ingest]\nbatch_size = 50\nbatch_latency_s = 0.05\n",
        encoding="utf-8",
    )
    with (tmp / f"{client_id}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: proc.poll() is None and healthy(port), timeout=30)
    return proc


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def reports(n: int, agents: list[SimAgent]) -> list[tuple[str, bytes]]:
    return [agents[i % len(agents)].report(cameras=1) for i in range(n)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_kill_9_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, db_url: str
) -> None:
    repo = Repository.open(db_url)
    repo.migrate()
    agents = [SimAgent(f"pi-{i}") for i in range(4)]
    for agent in agents:
        enroll(repo, agent)
    proc = start(tmp_path, mosquitto, db_url, "collector-a")
    messages = reports(3000, agents)
    publisher.publish_all(messages)
    wait_until(lambda: repo.count(Message) > 200, timeout=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored_at_kill = repo.count(Message)
    assert stored_at_kill < len(messages), "the collector finished before it was killed"
    proc = start(tmp_path, mosquitto, db_url, "collector-a")
    try:
        wait_until(lambda: repo.count(Message) == len(messages), timeout=60)
        time.sleep(0.5)
        assert repo.count(Message) == len(messages)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        repo.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_two_collectors_share_the_subscription(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, db_url: str
) -> None:
    repo = Repository.open(db_url)
    repo.migrate()
    agents = [SimAgent(f"pi-{i}") for i in range(4)]
    for agent in agents:
        enroll(repo, agent)
    procs = [start(tmp_path, mosquitto, db_url, f"collector-{n}") for n in "ab"]
    messages = reports(1000, agents)
    try:
        publisher.publish_all(messages)
        wait_until(lambda: repo.count(Message) == len(messages), timeout=60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=10) for proc in procs]
    assert codes == [0, 0]
    logs = [(tmp_path / f"collector-{n}.log").read_text() for n in "ab"]
    assert all("Traceback" not in log for log in logs), logs
    assert repo.quarantine_reasons() == {}
    repo.close()
