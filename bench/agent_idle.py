"""RSS and CPU of ``camwarden-agent run`` watching lab cameras with a 5-minute audit interval.

Three processes: the camera lab (``camwarden-lab up``, configs/lab/mixed-50.toml: 50 cameras
of the lab personas, each with its factory account in the agent's vault), a real Mosquitto,
and the agent. The agent audits at start and every ``--audit-s`` seconds, each audit in a
worker process (docs/adr/0013-audit-worker.md). Sampled once a second from its start for
``--minutes`` (the issue asks for 15):

* the daemon's RSS (mean, max): its own process only;
* each audit worker's peak RSS, as the worker reports it (``ru_maxrss``, in the agent's log);
* the average CPU in % of one core over the whole run, start-up included: the daemon, its
  finished workers (the children's times the daemon collected) and a worker still running.

    python bench/agent_idle.py [--minutes 15] [--audit-s 300]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.trust.identity import keygen
from bench.audit import ROOT, agent_config, start_lab
from lab.broker import Mosquitto

LAB = ROOT / "configs" / "lab" / "mixed-50.toml"
WORKER_PEAK = re.compile(rb"audit worker: peak RSS ([0-9.]+) MiB")


def cpu_s(proc: psutil.Process) -> float:
    """CPU seconds of ``proc``, of its children it waited for and of those still running."""
    times = proc.cpu_times()
    live = 0.0
    for child in proc.children(recursive=True):
        try:
            live += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue  # ended between the listing and the read: counted once the daemon reaps it
    return times.user + times.system + times.children_user + times.children_system + live


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--audit-s", type=float, default=300.0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="camwarden-idle-bench-") as tmp, ExitStack() as stack:
        home = Path(tmp)
        broker = Mosquitto(home / "broker")
        broker.start()
        stack.callback(broker.stop)
        lab, hosts = start_lab(home, LAB)
        stack.callback(lab.wait, 30)
        stack.callback(lab.terminate)
        key = home / "agent.key"
        keygen(key)
        path = agent_config(
            home / "agent",
            hosts,
            concurrency=8,
            top=[
                f'key_file = "{key}"',
                "[mqtt]",
                f"port = {broker.port}",
                "[intervals]",
                f"report_s = {args.audit_s}",
            ],
            audit=[f"interval_s = {args.audit_s}"],
        )
        log_path = home / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--config", str(path)], stderr=log
            )
        try:
            proc = psutil.Process(agent.pid)
            t0 = time.monotonic()
            rss: list[float] = []
            end = t0 + args.minutes * 60
            while time.monotonic() < end:
                rss.append(proc.memory_info().rss / 2**20)
                time.sleep(1.0)
            cpu = cpu_s(proc) / (time.monotonic() - t0) * 100
        finally:
            agent.terminate()
            agent.wait(30)
        peaks = [float(m) for m in WORKER_PEAK.findall(log_path.read_bytes())]
    load_after = os.getloadavg()
    print(
        f"camwarden-agent run, {len(hosts)} lab cameras, audit every {args.audit_s:.0f} s, "
        f"{args.minutes:g} min from start:"
    )
    print(f"  daemon RSS mean {statistics.fmean(rss):.1f} MiB, max {max(rss):.1f} MiB")
    workers = ", ".join(f"{p:.1f}" for p in peaks) or "none finished"
    print(f"  audit workers ({len(peaks)} finished): peak RSS {workers} MiB")
    print(f"  CPU {cpu:.2f} % of one core (average, daemon and workers)")
    print(
        "  load average (1, 5, 15 min) before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
