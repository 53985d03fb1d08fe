"""A throwaway Mosquitto broker on a free loopback port, for the demo, tests and benchmarks.

Stoppable and restartable, with persistence on, so outage tests can stop it mid-stream."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port}")


class Mosquitto:
    """``mosquitto -c <generated conf>``, persistent: queued QoS 1 messages survive restarts."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", extra: str = "") -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/install-system-deps.sh)")
        self.binary = binary
        self.host = host
        self.port = free_port(host)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        lines = [
            f"listener {self.port} {host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            extra,
        ]
        self.config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            # started as root, mosquitto would drop to user 'mosquitto', which cannot reach a
            # test's private temp directory; a test broker on loopback keeps the caller's user
            self.config.write_text(self.config.read_text() + "user root\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        if self.proc is not None:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603  # fixed program, generated config
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port(self.host, self.port)

    def stop(self) -> None:
        """Clean stop (SIGTERM): mosquitto saves its persistent state before exiting."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
