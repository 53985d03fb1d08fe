"""Auditing a lab fleet the way a site would: an agent config naming the lab's cameras, the
vault holding each camera's configured account, ``Auditor`` or the CLI driving the audit."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from agent.audit.auditor import Auditor, AuditResult, vault_secrets
from agent.config import AgentConfig, load_config
from agent.trust.vault import Vault, load_vault_key
from lab.fleet import CameraNode, Fleet
from protocol.messages import Camera, Finding

PORT_SHIFT = 10000  # lab.config.LabSettings.port_shift default
# The lab's lockout windows are 1 s; the agent is told to assume as much for cameras whose
# policy it cannot read, so that spaced guessing finishes in seconds (the spacing rule is the
# same as with the 30 s default). One budget serves HTTP, ONVIF and RTSP together: 40 lets every
# catalogue candidate reach each interface of a camera of unknown vendor (the default 12 covers
# the vendor's own defaults everywhere, and says "not tested" for the rest).
AUDIT = """
[audit]
concurrency = 12
check_timeout_s = 30
guess_timeout_s = 120
camera_timeout_s = 240
request_timeout_s = 1.5
guess_default_credentials = true
guess_budget = 40
assumed_lockout = { threshold = 3, window_s = 1, lock_s = 300, margin_s = 0.2 }
"""


def subnet(fleet: Fleet) -> ipaddress.IPv4Network:
    first = next(iter(fleet.cameras.values()))
    return ipaddress.IPv4Network(f"{first.host}/24", strict=False)


def write_config(
    fleet: Fleet,
    directory: Path,
    *,
    audit: str = AUDIT,
    discovery: bool = True,
    skip: frozenset[str] = frozenset(),
) -> Path:
    """``agent.toml`` for ``fleet`` (cameras in ``skip`` left out) and a 0600 vault key."""
    key = directory / "vault.key"
    if not key.exists():
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
    routers = ", ".join(f'"{r.host}"' for r in fleet.routers.values())
    switch = "true" if discovery else "false"
    lines = [
        'agent_id = "lab-agent"',
        'site = "lab"',
        f'state_dir = "{directory / "state"}"',
        f'key_file = "{directory / "agent.key"}"',
        f'vault_key_file = "{key}"',
        audit,
        "[network]",
        f'camera_subnets = ["{subnet(fleet)}"]',
        f"routers = [{routers}]",
        f"port_offset = {PORT_SHIFT}",
        "probe_timeout_s = 2",
        "udp_window_s = 0.3",
        # on loopback a closed port refuses at once: the timeout only matters when the machine
        # stalls the connect (a busy suite once did for 0.5 s and the sweep missed a camera)
        "sweep_timeout_s = 2",
        f"ws_discovery = {switch}",
        f"ssdp = {switch}",
        f"sweep = {switch}",
    ]
    for node in fleet.cameras.values():
        if node.id in skip:
            continue
        approved = ", ".join(f'"{u.name}"' for u in node.spec.users)
        lines += [
            "[[cameras]]",
            f'id = "{node.id}"',
            f'address = "{node.host}"',
            f'credentials_ref = "{node.id}"',
            f"approved_accounts = [{approved}]",
        ]
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fill_vault(fleet: Fleet, config: AgentConfig) -> None:
    """The site's vault: each camera's configured (first listed) account."""
    vault = Vault(config.state_path, load_vault_key(config.vault_key_path))
    for node in fleet.cameras.values():
        user = node.spec.users[0]
        vault.set(node.id, user.name, user.password)


def prepare(fleet: Fleet, directory: Path, **options: object) -> AgentConfig:
    config = load_config(write_config(fleet, directory, **options))  # type: ignore[arg-type]
    fill_vault(fleet, config)
    return config


async def audit(config: AgentConfig) -> AuditResult:
    credentials, site_key = vault_secrets(config)
    return await Auditor(config, credentials=credentials, site_key=site_key).run()


def failed_controls(camera: Camera) -> set[str]:
    return {c for f in camera.findings if f.status == "fail" for c in f.controls}


def by_control(camera: Camera, control: str) -> list[Finding]:
    return [f for f in camera.findings if control in f.controls]


def never_locked(node: CameraNode) -> bool:
    return not any(node.camera.locked(name) for name in node.camera.users)
