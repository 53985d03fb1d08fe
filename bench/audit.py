"""Full audit of 100 lab cameras (configs/lab/mixed-100.toml) against ``nmap -sT`` of the same
TCP ports on the same addresses, and the auditing process's peak RSS.

Three processes: the lab (``camwarden-lab up``), the audit and nmap. The audit runs twice per
concurrency: ``camwarden-agent scan --once --json`` (what an operator runs, in-process) and the
audit worker of ``camwarden-agent run`` (``agent.audit.worker``, given the config on stdin as the
daemon gives it); peak RSS is read with ``wait4``, so only the auditing process counts.
Default-credential guessing is off: it is lockout-safe by spacing (with the default assumed policy,
one failed guess per camera every 32 s), so its wall time is set by the spacing, not by the agent;
every other check runs with the config defaults. Prints figures; exits 0 (the targets are reported,
not enforced).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from agent.audit.worker import WORKER, AuditRequest
from agent.checks.netprobe import STANDARD_PORTS
from agent.config import load_config
from agent.probes.ports import CAMERA_PORTS
from agent.trust.vault import Vault

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "configs" / "lab" / "mixed-100.toml"
BIN = Path(sys.executable).parent
PORT_SHIFT = 10000  # the lab's default
RSS_TARGET_MIB = 60
# the lab personas' factory accounts, which mixed-100's cameras keep (as bench/adapters_rss.py)
DEFAULTS = {
    "Hikvision": ("admin", "12345"),
    "Dahua": ("admin", "admin"),
    "Axis": ("root", "pass"),
    "Generic": ("admin", "123456"),
}


def start_lab(
    workdir: Path, lab: Path = LAB
) -> tuple[subprocess.Popen[bytes], dict[str, tuple[str, str]]]:
    """``camwarden-lab up`` of ``lab``; the cameras' (address, vendor) by camera id."""
    state = workdir / "lab.json"
    proc = subprocess.Popen(
        [BIN / "camwarden-lab", "up", "--config", lab, "--state", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    while not state.exists():
        if proc.poll() is not None or time.monotonic() - started > 120:
            raise RuntimeError("the lab did not start")
        time.sleep(0.05)
    cameras = json.loads(state.read_text())["cameras"]
    return proc, {cid: (cam["address"], cam["vendor"]) for cid, cam in cameras.items()}


def agent_config(
    workdir: Path,
    hosts: dict[str, tuple[str, str]],
    concurrency: int,
    *,
    top: Sequence[str] = (),
    audit: Sequence[str] = (),
) -> Path:
    """An agent config auditing ``hosts`` with their factory accounts in the vault. ``top``:
    lines before ``[audit]`` (top-level keys, then whole tables); ``audit``: more ``[audit]``
    keys."""
    workdir.mkdir()
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    first = next(iter(hosts.values()))[0]
    subnet = first.rsplit(".", 1)[0] + ".0/24"
    lines = [
        'agent_id = "bench"',
        'site = "bench"',
        f'state_dir = "{workdir / "state"}"',
        f'vault_key_file = "{key}"',
        *top,
        "[audit]",
        f"concurrency = {concurrency}",
        "guess_default_credentials = false",
        *audit,
        "[network]",
        f'camera_subnets = ["{subnet}"]',
        f"port_offset = {PORT_SHIFT}",
    ]
    vault = Vault(workdir / "state", key.read_bytes())
    for cid, (address, vendor) in hosts.items():
        vault.set(cid, *DEFAULTS[vendor])
        lines += ["[[cameras]]", f'id = "{cid}"', f'address = "{address}"']
        lines += [f'credentials_ref = "{cid}"']
    path = workdir / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measured(argv: list[str], request: bytes | None = None) -> tuple[float, float, bytes, float]:
    """(wall s, peak RSS MiB, stdout, CPU s: user + system) of one program in its own process
    (``wait4``); with
    ``request``, that is written to its stdin, which stays open until it exits."""
    started = time.monotonic()
    stdin = subprocess.PIPE if request is not None else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if proc.stdin is not None and request is not None:
        proc.stdin.write(request)
        proc.stdin.flush()
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if proc.stdin is not None:
        proc.stdin.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # scan: 1 for high or critical findings
        raise RuntimeError(f"{argv[-1]} exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, output, usage.ru_utime + usage.ru_stime


def scan(config: Path) -> tuple[float, float, list[dict[str, Any]]]:
    """``camwarden-agent scan --once --json``: what an operator runs, auditing in-process."""
    argv = [str(BIN / "camwarden-agent"), "--log-level", "ERROR", "scan", "--once", "--json"]
    wall, peak, output, _cpu = measured([*argv, "--config", str(config)])
    return wall, peak, json.loads(output)["cameras"]


def worker(config: Path) -> tuple[float, float, list[dict[str, Any]]]:
    """The audit worker of ``camwarden-agent run`` (agent.audit.worker), given the config as the
    daemon gives it."""
    request = AuditRequest(load_config(config), logging.ERROR)
    wall, peak, output, _cpu = measured(list(WORKER), msgspec.json.encode(request) + b"\n")
    return wall, peak, json.loads(output)["result"]["cameras"]


def counts(cameras: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "cameras": len(cameras),
        "identified": sum(1 for c in cameras if c["identity"]["vendor"]),
        "findings": sum(len(c["findings"]) for c in cameras),
        "failed": sum(1 for c in cameras for f in c["findings"] if f["status"] == "fail"),
        "inconclusive": sum(
            1 for c in cameras for f in c["findings"] if f["status"] == "inconclusive"
        ),
    }


def nmap(addresses: list[str], ports: list[int]) -> float:
    started = time.monotonic()
    subprocess.run(  # nmap with arguments built here
        [
            shutil.which("nmap") or "nmap",
            "-sT",
            "-n",
            "-Pn",
            "-p",
            ",".join(map(str, ports)),
            *addresses,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    tcp = sorted(
        {*CAMERA_PORTS, *(p for s, p in STANDARD_PORTS.items() if s not in ("snmp", "ssdp", "wsd"))}
    )
    ports = [p + PORT_SHIFT for p in tcp]
    print(f"lab: {LAB.name}; TCP ports per camera: {len(ports)} (standard + {PORT_SHIFT})")
    with tempfile.TemporaryDirectory(prefix="camwarden-audit-bench-") as tmp:
        workdir = Path(tmp)
        lab, hosts = start_lab(workdir)
        try:
            addresses = [address for address, _vendor in hosts.values()]
            for concurrency in args.concurrency:
                config = agent_config(workdir / f"c{concurrency}", hosts, concurrency)
                for name, run in (("scan --once", scan), ("audit worker", worker)):
                    wall, peak, cameras = run(config)
                    scan_s = nmap(addresses, ports)
                    print(
                        f"{name}, concurrency {concurrency}: {wall:6.1f} s, peak RSS"
                        f" {peak:5.1f} MiB (target <= {RSS_TARGET_MIB}); nmap -sT same ports:"
                        f" {scan_s:6.3f} s; audit/nmap {wall / scan_s:.0f}x"
                    )
                    print(f"  {counts(cameras)}")
            print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
