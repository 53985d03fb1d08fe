"""Audit of one 16-channel NVR and its cameras: wall time and requests per camera.

Three ways a site can audit the same lab (a Hikvision DS-7616NI-K2 with 16 Hikvision-family
cameras on its channels, loopback, no RTSP):

* through the recorder: only the NVR is configured (with its vault credential); the audit lists
  its channels and audits each channel camera it reaches directly inside the camera subnets,
  without a credential of its own (the site gave none);
* through its virtual host: the same, but the camera subnets hold the NVR alone (the cameras
  sit on its PoE network): each channel camera is audited through the NVR's port for it
  (``virtual_host_port``), its own ports not probed;
* directly: the NVR and the 16 cameras are configured, each with its vault credential.

Requests are counted from the lab's request log (every HTTP request, ONVIF operation and RTSP
request a camera received). Default-credential guessing is off in both (its wall time is set by
its lockout-safe spacing, not by the agent). Prints figures; exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``lab`` the package, not bench/lab

from agent.audit.auditor import Auditor, vault_secrets
from agent.config import load_config
from agent.trust.vault import Vault, load_vault_key
from lab.config import parse_config
from lab.fleet import Fleet
from lab.requestlog import read_log

CHANNELS = 16
PORT_SHIFT = 10000
PERSONAS = ("hikvision", "hilook", "ezviz")


def lab_text(log: Path) -> str:
    lines = [
        f'[lab]\nloopback_base = "127.79.21.0"\nrtsp = false\nrequest_log = "{log}"\n',
        '[[camera]]\nid = "nvr"\npersona = "hikvision-nvr"\n'
        'users = [{ name = "admin", password = "Nvr-Bench-2026!" }]\n',
    ]
    lines += [
        f'[[camera]]\nid = "cam{n:02d}"\npersona = "{PERSONAS[n % 3]}"\nrecorder = "nvr"\n'
        f'users = [{{ name = "admin", password = "Cam{n:02d}-Bench-2026!" }}]\n'
        for n in range(1, CHANNELS + 1)
    ]
    return "\n".join(lines)


def agent_text(workdir: Path, fleet: Fleet, *, direct: bool, relayed: bool) -> str:
    nvr = fleet["nvr"]
    subnet = f"{nvr.host}/32" if relayed else f"{nvr.host.rsplit('.', 1)[0]}.0/24"
    lines = [
        'agent_id = "bench"',
        'site = "bench"',
        f'state_dir = "{workdir / "state"}"',
        f'key_file = "{workdir / "agent.key"}"',
        f'vault_key_file = "{workdir / "vault.key"}"',
        "[audit]",
        "concurrency = 8",
        "guess_default_credentials = false",
        "[network]",
        f'camera_subnets = ["{subnet}"]',
        f"port_offset = {PORT_SHIFT}",
        "udp_window_s = 0.3",
    ]
    for node in fleet.cameras.values():
        if node.id == "nvr" or direct:
            lines += ["[[cameras]]", f'id = "{node.id}"', f'address = "{node.host}"']
            lines.append(f'credentials_ref = "{node.id}"')
            if node.id == "nvr" and relayed:
                lines.append(f"virtual_host_port = {nvr.virtual_host_port(1)}")
    return "\n".join(lines) + "\n"


async def one_way(
    fleet: Fleet, log: Path, *, direct: bool = False, relayed: bool = False
) -> tuple[float, Counter[str], int]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        key = workdir / "vault.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        (workdir / "agent.toml").write_text(
            agent_text(workdir, fleet, direct=direct, relayed=relayed)
        )
        config = load_config(workdir / "agent.toml")
        vault = Vault(config.state_path, load_vault_key(config.vault_key_path))
        for node in fleet.cameras.values():
            user = node.spec.users[0]
            vault.set(node.id, user.name, user.password)
        credentials, site_key = vault_secrets(config)
        before = Counter(str(e.get("camera")) for e in read_log(log) if "camera" in e)
        started = time.monotonic()
        result = await Auditor(config, credentials=credentials, site_key=site_key).run()
        wall = time.monotonic() - started
    after = Counter(str(e.get("camera")) for e in read_log(log) if "camera" in e)
    return wall, after - before, len(result.cameras)


async def main() -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.jsonl"
        fleet = await Fleet.start(parse_config(lab_text(log)))
        try:
            figures = {
                "through the recorder": await one_way(fleet, log),
                "through its virtual host": await one_way(fleet, log, relayed=True),
                "directly": await one_way(fleet, log, direct=True),
            }
        finally:
            await fleet.stop()
    load = os.getloadavg()[0]
    print(f"one {CHANNELS}-channel NVR and its cameras (loopback lab; load1 {load:.2f})")
    for name, (wall, requests, audited) in figures.items():
        cams = [requests[f"cam{n:02d}"] for n in range(1, CHANNELS + 1)]
        print(
            f"  {name:24} {wall:6.1f} s wall, {audited} devices reported; requests per camera: "
            f"median {statistics.median(cams):.0f} (min {min(cams)}, max {max(cams)}); "
            f"NVR {requests['nvr']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
