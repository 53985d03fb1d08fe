"""Scheduled rotation (``[rotation] interval_days``) through ``camwarden-agent run``: a real
agent process, a real broker and a lab camera. The camera's own credential is rotated at start,
sealed to the organisation's key like a command's, the vault takes it, and a restart within
the interval does not rotate again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc import jwe
from joserfc.jwk import OKPKey

from agent.messaging.outbox import Outbox
from agent.trust.vault import KEY_BYTES, Vault
from lab.fleet import CameraNode
from lab.testing import LabFactory
from protocol import CommandResult, decode_agent_message, generate_private_key, verify
from protocol.keys import write_private_key
from tests.agent.commands.world import LAB, PASSWORD
from tests.agent.support import start_agent, state_seq, wait_for
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def home(tmp_path: Path, port: int, node: CameraNode, org: OKPKey) -> Path:
    """Agent key, pinned collector key, vault with the camera's credential, escrow key, config."""
    key = tmp_path / "agent.key"
    write_private_key(key, generate_private_key())
    collector = tmp_path / "collector.jwk"
    collector.write_text(json.dumps(generate_private_key().as_dict(private=False)))
    escrow = tmp_path / "org-escrow.jwk"
    escrow.write_text(json.dumps(org.as_dict(private=False)))
    vault_key = tmp_path / "vault.key"
    vault_key.write_bytes(os.urandom(KEY_BYTES))
    vault_key.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    Vault(state, vault_key.read_bytes()).set("hik", "admin", PASSWORD)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
agent_id = "a1"
site = "s1"
key_file = "{key}"
state_dir = "{state}"
collector_key_file = "{collector}"
vault_key_file = "{vault_key}"
[mqtt]
port = {port}
reconnect_max_s = 1
[intervals]
heartbeat_s = 0.2
report_s = 1.0
shutdown_grace_s = 1.0
[audit]
enabled = false
[rotation]
escrow_kid = "{org.thumbprint()}"
escrow_jwk_file = "{escrow}"
interval_days = 30
[[cameras]]
id = "hik"
address = "{node.host}"
http_port = {node.ports["http"]}
vendor = "hikvision"
credentials_ref = "hik"
""")
    return config


async def until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    """Wait in a thread: the lab camera answers from this test's event loop."""
    await asyncio.to_thread(wait_for, condition, seconds)


async def stopped(proc: subprocess.Popen[bytes]) -> int | None:
    proc.send_signal(signal.SIGTERM)
    await until(lambda: proc.poll() is not None, 20.0)
    return proc.returncode


def rotated(config: Path) -> dict[str, str]:
    path = config.parent / "state" / "rotation.json"
    return dict(json.loads(path.read_text())["rotated"]) if path.exists() else {}


def results(config: Path) -> list[CommandResult]:
    """The command results in the outbox (kept there: no collector acknowledges them)."""
    outbox = Outbox(config.parent / "state" / "outbox", 64 * 1024 * 1024, 20_000)
    key = OKPKey.import_key((config.parent / "agent.key").read_bytes())
    out = []
    for entry in outbox.entries():
        token = outbox.read(entry)
        assert token is not None
        message = decode_agent_message(verify(token, lambda _kid: key).payload)
        if isinstance(message, CommandResult):
            out.append(message)
    return out


async def test_the_daemon_rotates_when_due_and_not_again_after_a_restart(
    lab_fleet: LabFactory, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    fleet = await lab_fleet(LAB)
    node = fleet["hik"]
    org = OKPKey.generate_key("X25519")
    config = home(tmp_path, mosquitto.port, node, org)
    vault_key = (tmp_path / "vault.key").read_bytes()
    agent = start_agent(config)
    try:
        await until(lambda: "hik" in rotated(config))
        assert await stopped(agent) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
    new = node.camera.users["admin"].password
    assert new != PASSWORD
    stored = Vault(config.parent / "state", vault_key).credential("hik")
    assert stored is not None
    assert stored.password == new
    final = [r for r in results(config) if r.status != "in_progress"]
    assert [r.status for r in final] == ["succeeded"]
    sealed = final[0].details["sealed"]
    assert isinstance(sealed, str)
    opened = json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")
    assert (opened["camera_id"], opened["password"]) == ("hik", new)
    first = rotated(config)

    agent = start_agent(config)  # within the interval: nothing is due
    try:
        seq = state_seq(config)
        await until(lambda: state_seq(config) >= seq + 3)  # hello, heartbeats: it ran a while
        assert await stopped(agent) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
    assert node.camera.users["admin"].password == new
    assert rotated(config) == first
    assert [r.status for r in results(config) if r.status != "in_progress"] == ["succeeded"]
