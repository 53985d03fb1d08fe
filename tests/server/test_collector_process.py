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
from tests.support.notify import NotifySocket

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start(
    tmp: Path, broker: Mosquitto, db_url: str, client_id: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
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
            env=env,
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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_run_speaks_the_notify_protocol(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, db_url: str, notify: NotifySocket
) -> None:
    """READY once the HTTP port listens, WATCHDOG at half of WATCHDOG_USEC with a STATUS line
    that follows the broker session and the ingest, STOPPING and exit 0 on SIGTERM."""
    repo = Repository.open(db_url)
    repo.migrate()
    agent = SimAgent("pi-notify")
    enroll(repo, agent)
    env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
    proc = start(tmp_path, mosquitto, db_url, "collector-notify", env)
    try:
        assert notify.count("READY=1") == 1  # start() saw /healthz answer: READY came first
        before, started = notify.count("WATCHDOG=1"), time.monotonic()
        wait_until(lambda: notify.count("WATCHDOG=1") >= before + 6)
        pings = (notify.count("WATCHDOG=1") - before) / (time.monotonic() - started)
        assert 3 <= pings <= 8, pings  # every 0.2 s: half of the 0.4 s watchdog
        wait_until(lambda: notify.statuses()[-1].startswith("broker connected, 0 messages"))
        publisher.publish_all([agent.report(cameras=1) for _ in range(3)])
        wait_until(
            lambda: notify.statuses()[-1] == "broker connected, 3 messages stored, 0 rejected"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        repo.close()
    assert notify.lines()[-2:] == ["STOPPING=1", "STATUS=stopping"]
