"""Survey figures (issue 24): hosts surveyed per second by one agent over the lab's /22 provider
range, at the default rate and at the highest rate the contract allows, side by side with
``nmap -sT -sV`` (and ``masscan`` when Debian ships it) over the same range and ports.

Netns mode only (the agent, nmap and masscan run in the lab's agent namespace; every packet they
send passes the range's nftables counter, which must stay at zero outside the prefix); without
namespaces here, a /24 on loopback stands in and masscan is skipped (it needs an interface).
nmap and masscan are installed from Debian when missing. Only the lab's addresses are scanned.

    python -m bench.survey [--skip-default] [--no-compare] [--nmap-host-timeout-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET  # our own nmap's output
from pathlib import Path
from typing import Literal

from lab import netns
from lab.survey import SEEDED, SurveyLab
from lab.testing import private_base
from protocol.survey import DEFAULT_PORTS

AGENT = Path(sys.executable).parent / "camwarden-agent"
NETWORK = "10.77.0.0/22"
SHIFT = 20000  # loopback mode only
HIGHEST = ("10000", "2000")  # rate_pps, rate_cps: the contract's highest connection rate


def ensure(program: str) -> bool:
    """``program`` on PATH, installed from Debian when missing (False if Debian has none)."""
    if shutil.which(program):
        return True
    if os.geteuid() != 0:
        return False
    policy = subprocess.run(  # fixed program
        ["apt-cache", "policy", program],
        capture_output=True,
        text=True,
        check=False,
    )
    if "Candidate: (none)" in policy.stdout or not policy.stdout.strip():
        return False
    subprocess.run(  # fixed program
        ["apt-get", "install", "-y", "--no-install-recommends", program],
        check=False,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which(program) is not None


async def run(lab: SurveyLab, argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    if lab.mode == "netns":
        done = await netns.arun_in(lab.agent_namespace, argv)
    else:
        done = await netns.arun(argv)
    return time.monotonic() - started, done


def seeded(lab: SurveyLab) -> int:
    return sum(len(SEEDED[h.kind]) for h in lab.hosts)


async def survey(lab: SurveyLab, out: Path, rates: tuple[str, str]) -> None:
    argv = [str(AGENT), "survey", "--prefix", str(lab.network), "--out", str(out),
            "--rate-pps", rates[0], "--rate-cps", rates[1]]  # fmt: skip
    if lab.mode == "loopback":
        argv += ["--port-offset", str(SHIFT)]
    wall, done = await run(lab, argv)
    if done.returncode not in (0, 1, 3):
        print(f"  survey failed ({done.returncode}): {done.stderr[-400:]}")
        return
    document = json.loads(await asyncio.to_thread(out.read_bytes))
    hosts = document["hosts"]
    exposures = sum(len(h["exposures"]) for h in hosts)
    identified = sum(1 for h in hosts if h["identity"].get("vendor"))
    with_firmware = sum(1 for h in hosts if h["identity"].get("firmware"))
    addresses = document["summary"]["addresses"]
    print(
        f"  rate_pps {rates[0]}, rate_cps {rates[1]}: {wall:7.1f} s, {addresses / wall:6.1f} "
        f"hosts/s; {len(hosts)} answered, {identified} with a vendor, {with_firmware} with a "
        f"firmware, {exposures} exposures (seeded {seeded(lab)}); complete "
        f"{document['summary']['complete']}"
    )


async def nmap(lab: SurveyLab, out: Path, host_timeout_s: int) -> None:
    ports = ",".join(str(p + (SHIFT if lab.mode == "loopback" else 0)) for p in DEFAULT_PORTS)
    argv = [shutil.which("nmap") or "nmap", "-sT", "-sV", "-n", "-Pn", "-p", ports,
            "--host-timeout", f"{host_timeout_s}s", "-oX", str(out), str(lab.network)]  # fmt: skip
    wall, done = await run(lab, argv)
    if done.returncode != 0:
        print(f"  nmap failed ({done.returncode}): {done.stderr[-400:]}")
        return
    root = ET.parse(out).getroot()  # noqa: S314  # nmap's own file
    answered = products = 0
    for host in root.iter("host"):
        services = [
            p.find("service")
            for p in host.iter("port")
            if (state := p.find("state")) is not None and state.get("state") == "open"
        ]
        answered += bool(services)
        products += any(s is not None and s.get("product") for s in services)
    print(
        f"  nmap -sT -sV: {wall:7.1f} s, {lab.network.num_addresses / wall:6.1f} hosts/s; "
        f"{answered} with an open port, {products} with a product named (no exposure judged)"
    )


async def masscan(lab: SurveyLab) -> None:
    ports = ",".join(map(str, DEFAULT_PORTS))
    argv = ["masscan", str(lab.network), "-p", ports, "--rate", "10000", "--wait", "3",
            "--adapter", "eth0", "-oL", "-"]  # fmt: skip
    wall, done = await run(lab, argv)
    if done.returncode != 0:
        print(f"  masscan failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return
    opened = {line.split()[3] for line in done.stdout.splitlines() if line.startswith("open")}
    print(
        f"  masscan --rate 10000: {wall:7.1f} s; {len(opened)} hosts with an open port "
        "(SYN scan only: no identity, no exposure)"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-default", action="store_true", help="not the default-rate run")
    parser.add_argument("--nmap-host-timeout-s", type=int, default=60)
    parser.add_argument("--no-compare", action="store_true", help="neither nmap nor masscan")
    args = parser.parse_args()
    mode: Literal["loopback", "netns"] = (
        "netns" if netns.available() and shutil.which("nft") else "loopback"
    )
    network = NETWORK if mode == "netns" else f"{private_base()}/24"
    have_nmap = not args.no_compare and ensure("nmap")
    have_masscan = not args.no_compare and mode == "netns" and ensure("masscan")
    load = os.getloadavg()
    print(f"mode {mode}, range {network}, ports {DEFAULT_PORTS}; load {load[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="camwarden-survey-bench-") as tmp:
        work = Path(tmp)
        lab = await SurveyLab.start(network, work / "lab.jsonl", mode=mode,
                                    shift=SHIFT if mode == "loopback" else 0)  # fmt: skip
        try:
            print(f"lab: {len(lab.hosts)} subscriber hosts in {ipaddress.ip_network(network)}")
            rates = [HIGHEST] if args.skip_default else [("200", "50"), HIGHEST]
            for number, rate in enumerate(rates):
                await survey(lab, work / f"survey{number}.json", rate)
            if have_nmap:
                await nmap(lab, work / "nmap.xml", args.nmap_host_timeout_s)
            elif not args.no_compare:
                print("  nmap: not installed and not installable here")
            if have_masscan:
                await masscan(lab)
            if mode == "netns":
                print(f"packets outside the prefix (nftables counter): {lab.outside_packets()}")
        finally:
            await lab.stop()
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
