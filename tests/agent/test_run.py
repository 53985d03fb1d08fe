"""``camwarden-agent run`` and ``report --once`` as real processes against a real broker."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psutil
import pytest

from agent.cli import main
from protocol.messages import StatusReport
from tests.agent.support import (
    agent_key,
    check_chain,
    decode_all,
    make_home,
    outbox_files,
    start_agent,
    state_seq,
    stop,
    wait_for,
)
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt import Subscriber

pytestmark = pytest.mark.integration


def test_outage_then_everything_delivered_signed_and_chained(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_home(tmp_path, mosquitto.port, heartbeat_s=0.1, report_s=0.5)
    sub = Subscriber(mosquitto.port)
    agent = start_agent(config)
    try:
        wait_for(lambda: len(sub.snapshot()) >= 5)
        mosquitto.stop()
        time.sleep(0.3)
        offline_from = state_seq(config)
        wait_for(lambda: len(outbox_files(config)) >= 10)  # still issuing, into the outbox
        mosquitto.start()
        wait_for(lambda: state_seq(config) > offline_from + 15)
        took = stop(agent)
        last = state_seq(config)
        wait_for(
            lambda: (
                {
                    m.seq
                    for m, _ in decode_all(
                        [p for _, p in sub.snapshot()], agent_key(config)
                    ).values()
                }
                >= set(range(1, last + 1))
            )
        )
    finally:
        if agent.poll() is None:
            agent.kill()
        sub.close()
    print(f"\nSIGTERM to exit: {took:.2f} s")
    assert took < 5
    by_seq = decode_all([p for _, p in sub.snapshot()], agent_key(config))
    assert set(by_seq) == set(range(1, last + 1))
    assert check_chain(by_seq) >= 2
    assert outbox_files(config) == []


def test_kill_9_mid_flush_loses_nothing_and_reuses_no_seq(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_home(
        tmp_path, mosquitto.port, heartbeat_s=0.004, report_s=0.05, shutdown_grace_s=10
    )
    sub = Subscriber(mosquitto.port)
    mosquitto.stop()
    agent = start_agent(config)
    try:
        wait_for(lambda: len(outbox_files(config)) >= 400)
        mosquitto.start()
        wait_for(lambda: len(sub.snapshot()) >= 20, step=0.002)
        agent.kill()  # SIGKILL while it drains the outbox and keeps issuing
        agent.wait()
        left = len(outbox_files(config))
        assert left > 0, "killed too late to be mid-flush"
        killed_at = state_seq(config)
        agent = start_agent(config)
        wait_for(lambda: state_seq(config) > killed_at + 20)
        stop(agent, timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
    last = state_seq(config)
    key = agent_key(config)
    try:
        wait_for(lambda: len(decode_all([p for _, p in sub.snapshot()], key)) >= last)
    finally:
        sub.close()
    print(f"\nkill -9 with {left} messages in the outbox; {last} issued in all")
    by_seq = decode_all([p for _, p in sub.snapshot()], key)  # asserts no seq reuse
    assert set(by_seq) == set(range(1, last + 1))
    check_chain(by_seq)
    assert outbox_files(config) == []


def test_report_once_writes_chained_jws_lines(tmp_path: Path) -> None:
    config = make_home(tmp_path, free_port())  # no broker: air-gapped
    agent = start_agent(config)
    wait_for(lambda: len(outbox_files(config)) >= 3)
    stop(agent)
    pending = len(outbox_files(config))
    first, second = tmp_path / "one.jws", tmp_path / "two.jws"
    assert main(["report", "--once", "--out", str(first), "--config", str(config)]) == 0
    assert outbox_files(config) == []
    assert main(["report", "--once", "--out", str(second), "--config", str(config)]) == 0
    lines = first.read_bytes().splitlines()
    assert len(lines) == pending + 1
    more = second.read_bytes().splitlines()
    assert len(more) == 1
    by_seq = decode_all(lines + more, agent_key(config))
    assert list(by_seq) == sorted(by_seq)  # seq order in the files
    assert set(by_seq) == set(range(1, state_seq(config) + 1))
    assert check_chain(by_seq) >= 3


def test_idle_agent_memory(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = make_home(tmp_path, mosquitto.port, heartbeat_s=0.5, report_s=1)
    agent = start_agent(config)
    try:
        time.sleep(3)
        proc = psutil.Process(agent.pid)
        rss = proc.memory_info().rss / 2**20
        status = Path(f"/proc/{agent.pid}/status").read_text()
        peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
        stop(agent)
    finally:
        if agent.poll() is None:
            agent.kill()
    print(f"\ncamwarden-agent run idle: RSS {rss:.1f} MiB, peak {peak:.1f} MiB")
    assert peak < 60


def _door(reports: list[tuple[int, StatusReport]]) -> list[bool]:
    """The door camera's reachability in each report, in seq order."""
    return [c.reachable for _, r in sorted(reports) for c in r.cameras if c.camera_id == "door"]


def test_quick_liveness_reports_a_camera_that_goes_away_and_comes_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    camera = socket.create_server(("127.0.0.1", 0))
    port = camera.getsockname()[1]
    config = make_home(
        tmp_path,
        mosquitto.port,
        report_s=3600,
        liveness_s=0.2,
        extra=(
            "[audit]\nenabled = false\n"
            f'[[cameras]]\nid = "door"\naddress = "127.0.0.1"\nhttp_port = {port}'
        ),
    )
    sub = Subscriber(mosquitto.port)
    agent = start_agent(config)

    def reports() -> list[tuple[int, StatusReport]]:
        decoded = decode_all([p for _, p in sub.snapshot()], agent_key(config))
        return [(s, m) for s, (m, _) in decoded.items() if isinstance(m, StatusReport)]

    try:
        wait_for(lambda: _door(reports()) == [True])  # the report at start
        camera.close()
        wait_for(lambda: _door(reports()) == [True, False])  # at once, not after report_s
        camera = socket.create_server(("127.0.0.1", port))
        wait_for(lambda: _door(reports()) == [True, False, True])
        stop(agent)
    finally:
        camera.close()
        if agent.poll() is None:
            agent.kill()
        sub.close()
    log = (config.parent / "agent.log").read_text()
    assert "camera door is unreachable" in log
    assert "camera door is reachable now" in log
