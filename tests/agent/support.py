"""Helpers for the agent tests: config files, a real MQTT subscriber, chain checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from joserfc.jwk import OKPKey

from agent.trust.identity import keygen
from protocol.envelope import digest, verify
from protocol.messages import GENESIS, AgentMessage, StatusReport, decode_agent_message

AGENT = [sys.executable, "-m", "agent"]


def make_home(
    tmp_path: Path,
    port: int,
    *,
    extra: str = "",
    mqtt: Mapping[str, float] | None = None,
    **intervals: float,
) -> Path:
    """A key and a config file for agent ``a1`` at site ``s1``; returns the config path.

    ``mqtt`` adds keys to the ``[mqtt]`` table, ``intervals`` to ``[intervals]``."""
    key = tmp_path / "agent.key"
    if not key.exists():
        keygen(key)
    timers = {"heartbeat_s": 0.2, "report_s": 1.0, "shutdown_grace_s": 3.0} | intervals
    lines = [
        'agent_id = "a1"',
        'site = "s1"',
        f'key_file = "{key}"',
        f'state_dir = "{tmp_path / "state"}"',
        "[mqtt]",
        f"port = {port}",
        "reconnect_max_s = 1",
        *(f"{name} = {value}" for name, value in (mqtt or {}).items()),
        "[intervals]",
        *(f"{name} = {value}" for name, value in timers.items()),
        extra,
    ]
    config = tmp_path / "agent.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def agent_key(config: Path) -> OKPKey:
    return OKPKey.import_key((config.parent / "agent.key").read_bytes())


def start_agent(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """``camwarden-agent run``; its log goes to ``agent.log`` beside the config."""
    with (config.parent / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [*AGENT, "run", "--config", str(config), *args],
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> None:
    """Poll ``condition`` until true. The default bound is wide: an agent process that starts
    on a loaded 2-core machine may take tens of seconds to import and connect; only a failing
    test ever waits it out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(step)


def decode_all(tokens: list[bytes], key: OKPKey) -> dict[int, tuple[AgentMessage, bytes]]:
    """Verify every JWS against ``key``; map seq to (message, token); a reused seq fails."""
    by_seq: dict[int, tuple[AgentMessage, bytes]] = {}
    for token in tokens:
        verified = verify(token, lambda _kid: key)
        message = decode_agent_message(verified.payload)
        if message.seq in by_seq:
            assert by_seq[message.seq][1] == token, f"seq {message.seq} reused for other bytes"
        by_seq[message.seq] = (message, token)
    return by_seq


def check_chain(by_seq: dict[int, tuple[AgentMessage, bytes]]) -> int:
    """Every message points at the report before it; return the number of reports."""
    head, head_seq, reports = GENESIS, 0, 0
    for seq in sorted(by_seq):
        message, token = by_seq[seq]
        assert (message.prev, message.prev_seq) == (head, head_seq), f"chain broken at {seq}"
        if isinstance(message, StatusReport):
            head, head_seq, reports = digest(token), seq, reports + 1
    return reports


def state_seq(config: Path) -> int:
    return int(json.loads((config.parent / "state" / "state.json").read_text())["seq"])


def outbox_files(config: Path) -> list[Path]:
    return sorted((config.parent / "state" / "outbox").glob("*.jws"))


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> float:
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout) == 0
    return time.monotonic() - start


def lockout_window_only(reasons: list[str], vendor: str) -> bool:
    """True when the lab's only AUTH-05 reason is a failure window shorter than 30 s and the
    vendor's API hides the window: Hikvision and Dahua expose the threshold and lock time only,
    so the agent cannot see it; Axis's brute-force blocking names its interval."""
    window_hidden = vendor != "Axis"
    return window_hidden and bool(reasons) and all("counts failures over" in r for r in reasons)
