"""Scheduled audits in a worker process (agent.audit.worker): real worker processes that hang, crash
or answer garbage, and ``camwarden-agent run`` auditing lab cameras through its worker."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from agent.audit.worker import WorkerFailed, audit_in_worker, failed_result
from agent.checks import CHECKS
from agent.config import AgentConfig, CameraConfig
from lab.testing import LabFactory
from protocol.keys import generate_private_key, write_private_key
from protocol.messages import Camera, Identity, StatusReport
from tests.agent.audit_lab import prepare
from tests.agent.support import agent_key, decode_all, make_home, start_agent, stop, wait_for
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt import Subscriber

CONFIG = AgentConfig(
    agent_id="a1",
    site="s1",
    cameras=(CameraConfig(id="cam-1", address="127.0.0.1", http_port=free_port()),),
)
DAEMON_RSS_MIB = 60  # the agent's budget (the "hardened service" figure)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def test_a_hung_worker_is_killed_at_its_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerFailed) as failed:
        await audit_in_worker(CONFIG, timeout_s=1.0, command=python("import time; time.sleep(120)"))
    assert time.monotonic() - started < 10
    assert failed.value.timeout_s == 1.0
    assert failed.value.reason == "the audit worker was killed after 1 s"
    assert psutil.Process().children() == []  # killed and reaped


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "exited with signal SIGSEGV"),
        ("import sys; sys.exit(3)", "exited with status 3"),
        ("print('not json')", "answer is unreadable"),
        ('import sys; sys.stdout.write(\'{"type": "Finished"}\')', "answer is unreadable"),
    ],
)
async def test_a_worker_that_dies_or_answers_garbage_fails(code: str, reason: str) -> None:
    with pytest.raises(WorkerFailed) as failed:
        await audit_in_worker(CONFIG, timeout_s=30, command=python(code))
    assert reason in failed.value.reason
    assert failed.value.timeout_s is None


def test_failed_audit_leaves_every_check_of_every_camera_inconclusive() -> None:
    cameras = [
        Camera(camera_id=f"cam-{n}", address="127.0.0.1", reachable=True, identity=Identity())
        for n in range(2)
    ]
    error = WorkerFailed("the audit worker exited with signal SIGKILL")
    result = failed_result(cameras, error, datetime.now(UTC), 1.5)
    for camera in result.cameras:
        assert [f.check for f in camera.findings] == [c.id for c in CHECKS]
        assert {f.code for f in camera.findings} == {"check.internal_error"}
        assert {f.status for f in camera.findings} == {"inconclusive"}
        assert all(f.controls for f in camera.findings)
        assert {f.reason for f in camera.findings} == {error.reason}
    assert result.host_findings == ()


@pytest.mark.integration
def test_run_reports_a_timed_out_audit_inconclusive(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The worker cannot even start within 0.05 s: killed, the cameras' checks inconclusive
    (check.timeout) in the next report, and the daemon goes on."""
    extra = (
        f'[[cameras]]\nid = "cam-1"\naddress = "127.0.0.1"\nhttp_port = {free_port()}\n'
        "[audit]\nworker_timeout_s = 0.05\n"
    )
    config = make_home(tmp_path, mosquitto.port, extra=extra, report_s=60)
    sub = Subscriber(mosquitto.port)
    agent = start_agent(config)

    def reports() -> list[StatusReport]:
        messages = decode_all([p for _, p in sub.snapshot()], agent_key(config)).values()
        return [m for m, _ in messages if isinstance(m, StatusReport)]

    try:
        wait_for(lambda: any(r.cameras[0].findings for r in reports()))
        stop(agent)
    finally:
        if agent.poll() is None:
            agent.kill()
        sub.close()
    camera = next(r for r in reports() if r.cameras[0].findings).cameras[0]
    assert {f.code for f in camera.findings} == {"check.timeout"}
    assert {f.evidence["timeout_s"] for f in camera.findings} == {"0.05"}
    assert not camera.reachable
    assert (
        "audit failed: the audit worker was killed after 0.05 s"
        in (tmp_path / "agent.log").read_text()
    )


@pytest.mark.integration
async def test_daemon_memory_stays_low_after_an_audit(
    lab_fleet: LabFactory, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The audit's libraries (httpx, zeep, onvif) live and die in the worker: the daemon's
    peak RSS (VmHWM, over its whole life) stays within the budget after a full audit."""
    fleet = await lab_fleet(
        '[[camera]]\nid = "hik"\npersona = "hikvision"\n'
        '[[camera]]\nid = "onvif"\npersona = "onvif-generic"\n'
    )
    write_private_key(tmp_path / "agent.key", generate_private_key())
    # guessing off: its lockout pacing (minutes) is not what this measures
    audit = (
        f"[mqtt]\nport = {mosquitto.port}\n[audit]\nrequest_timeout_s = 2\n"
        "guess_default_credentials = false\n"
    )
    config = prepare(fleet, tmp_path, audit=audit, discovery=False)
    agent = start_agent(tmp_path / "agent.toml")
    log = tmp_path / "agent.log"
    try:
        finished = lambda: "audit of 2 cameras finished" in log.read_text()  # noqa: E731
        await asyncio.to_thread(wait_for, finished, 120)  # the lab answers on this event loop
        status = await asyncio.to_thread(Path(f"/proc/{agent.pid}/status").read_text)
        children = psutil.Process(agent.pid).children()
        await asyncio.to_thread(stop, agent)
    finally:
        if agent.poll() is None:
            agent.kill()
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if "kB" in line}
    rss, peak = kib["VmRSS"] / 1024, kib["VmHWM"] / 1024
    worker = float(log.read_text().split("audit worker: peak RSS ")[1].split()[0])
    print(f"\ndaemon RSS {rss:.1f} MiB, peak {peak:.1f} MiB; audit worker peak {worker:.1f} MiB")
    assert children == []  # the worker is gone
    assert peak < DAEMON_RSS_MIB
    assert worker > peak  # the audit's memory was the worker's (onvif alone is ~20 MiB)
    assert (config.state_path / "inventory.json").exists()  # the worker wrote the inventory


@pytest.mark.integration
def test_sigterm_during_an_audit_stops_the_worker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A camera that accepts connections and never answers keeps the worker busy; SIGTERM
    stops the daemon within its grace and the worker with it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        extra = f'[[cameras]]\nid = "cam-1"\naddress = "127.0.0.1"\nhttp_port = {port}\n'
        config = make_home(tmp_path, mosquitto.port, extra=extra)
        agent = start_agent(config)
        try:
            wait_for(lambda: psutil.Process(agent.pid).children() != [])
            worker = psutil.Process(agent.pid).children()[0]
            took = stop(agent)
        finally:
            if agent.poll() is None:
                agent.kill()
    assert took < 5
    assert not worker.is_running()
