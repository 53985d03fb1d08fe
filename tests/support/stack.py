"""A fleet of real processes on loopback, set up the way an operator would: the collector driven
through ``camwarden-server``, agents enrolled with ``camwarden-agent`` whose configs list lab
cameras with their credentials in the encrypted vault.

Shared by ``make demo`` (scripts/demo.py), the integration tests and bench/rollout.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from agent.trust.vault import Vault, load_vault_key
from lab.broker import free_port, wait_port
from lab.config import LabConfig

SERVER = [sys.executable, "-m", "server"]
AGENT = [sys.executable, "-m", "agent"]
LAB = [str(Path(sys.executable).parent / "camwarden-lab")]

ORGANISATION = (
    ("province", "Tỉnh Demo"),
    ("agency", "Sở Thông tin và Truyền thông"),
    ("system", "Hệ thống camera giám sát đô thị"),
)


class CommandFailed(RuntimeError):
    """A ``camwarden-server`` or ``camwarden-agent`` command line exited non-zero."""


def run(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a command line; its standard output, or ``CommandFailed`` with what it printed."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CommandFailed(f"{' '.join(argv[:5])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def start(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running process whose output (both streams) is appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until ``proc`` wrote ``path``; ``CommandFailed`` with its log if it exits first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise CommandFailed(f"start-up failed; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


class Collector:
    """``camwarden-server`` on SQLite under ``home``: its command line and its ``run``."""

    def __init__(self, home: Path, broker_port: int, *, settings: str = "") -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.http_port = free_port()
        self.config = home / "server.toml"
        self.config.write_text(
            f'state_dir = "{home}"\n{settings}\n[mqtt]\nport = {broker_port}\n'
            f'[http]\nbind = "127.0.0.1"\nport = {self.http_port}\n'
        )
        self.log = home / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def argv(self) -> list[str]:
        return [*SERVER, "--config", str(self.config)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``camwarden-server --config ... ARGS``, whatever its exit code."""
        return subprocess.run([*self.argv, *args], check=False, capture_output=True, text=True)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """``camwarden-server --config ... ARGS`` in this process: the command line's parsing
        and code without a Python start per call (importing ``server.cli`` takes seconds of
        CPU). Its standard output, or ``CommandFailed`` with what it printed."""
        from server.cli import main  # noqa: PLC0415  # heavy: only where the CLI is driven

        out, err = io.StringIO(), io.StringIO()
        saved, sys.stdin = sys.stdin, io.StringIO(stdin or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["--config", str(self.config), *args])
        finally:
            sys.stdin = saved
        if code != 0:
            raise CommandFailed(f"camwarden-server {' '.join(args[:3])} failed ({code}):\n"
                                f"{out.getvalue()}{err.getvalue()}")  # fmt: skip
        return out.getvalue()

    def start(self) -> None:
        self.proc = start([*self.argv, "run"], self.log)
        try:
            wait_port("127.0.0.1", self.http_port, timeout=120)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=20)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def token(self, site: str) -> str:
        """A single-use enrollment token for ``site`` whose agent is approved on enrollment."""
        return self.cli("tokens", "create", "--site", site, "--approved").split()[-1]

    def organisation(self, sites: Sequence[str]) -> list[int]:
        """A province, an agency and one information system holding ``sites``; their ids."""
        ids: list[int] = []
        for kind, name in ORGANISATION:
            parent = ["--parent", str(ids[-1])] if ids else []
            ids.append(
                int(self.cli("orgs", "add", "--kind", kind, "--name", name, *parent).split()[-1])
            )
        for site in sites:
            self.cli("orgs", "map-site", site, "--system", str(ids[-1]))
        return ids


def write_agent_config(
    home: Path,
    *,
    agent_id: str,
    site: str,
    broker: tuple[str, int],
    collector_url: str,
    cameras: Mapping[str, Mapping[str, object]],
    lab: LabConfig,
    settings: str,
) -> Path:
    """An agent's home as a site would configure it: ``cameras`` (entries of the lab's state
    file, by id) with each camera's configured credential in the encrypted vault (AES-GCM,
    owner-only key file); ``settings`` adds TOML tables ([intervals], [audit] ...). Returns the
    config path (``home/agent.toml``); the key is ``home/agent.key``, not made here."""
    home.mkdir(parents=True, exist_ok=True)
    key = home / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    lines = [
        f'agent_id = "{agent_id}"',
        f'site = "{site}"',
        f'key_file = "{home / "agent.key"}"',
        f'state_dir = "{home}"',
        f'vault_key_file = "{key}"',
        f'collector_url = "{collector_url}"',
        f'[mqtt]\nhost = "{broker[0]}"\nport = {broker[1]}',
        settings,
    ]
    users = {spec.id: spec.users[0] for spec in lab.cameras}
    # a camera whose first account has an empty password gets no vault entry (the vault
    # refuses one): the agent audits it without a credential
    stored = [camera_id for camera_id in cameras if users[camera_id].password]
    for camera_id, cam in cameras.items():
        ref = f'\ncredentials_ref = "{camera_id}"' if camera_id in stored else ""
        lines.append(
            f'[[cameras]]\nid = "{camera_id}"\naddress = "{cam["address"]}"\n'
            f'vendor = "{str(cam["vendor"]).lower()}"{ref}'
        )
    vault = Vault(home, load_vault_key(key))
    for camera_id in stored:
        vault.set(camera_id, users[camera_id].name, users[camera_id].password)
    path = home / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def enroll_agent(config: Path, collector: Collector, site: str) -> None:
    """``camwarden-agent keygen`` then ``enroll`` with an approved token of ``site``."""
    run([*AGENT, "keygen", "--key", str(config.parent / "agent.key")])
    run([*AGENT, "enroll", "--server", collector.url, "--token", collector.token(site),
         "--config", str(config)])  # fmt: skip


def start_lab(
    config: Path, work: Path
) -> tuple[subprocess.Popen[bytes], dict[str, dict[str, object]]]:
    """``camwarden-lab up`` (log ``work/lab.log``) and the cameras it started, by id: address,
    ports, vendor."""
    state, log = work / "lab.json", work / "lab.log"
    proc = start([*LAB, "up", "--config", str(config), "--state", str(state)], log)
    try:
        wait_file(state, proc, log)
    except CommandFailed:
        stop(proc)
        raise
    cameras: dict[str, dict[str, object]] = json.loads(state.read_text())["cameras"]
    return proc, cameras
