"""Idle RSS and CPU of ``camwarden-agent run`` watching N cameras with a 5-minute audit interval.

The cameras are a generated lab: N loopback TCP listeners standing in for the cameras' HTTP
ports (what the agent's camera round checks today). A real Mosquitto takes the agent's messages.
The agent is sampled once a second for ``--minutes`` (the issue asks for 15): RSS (max,
median) and the average CPU in % of one core over the whole run, start-up excluded.

    python bench/agent_idle.py [--cameras 50] [--minutes 15] [--audit-s 300]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

from protocol.keys import generate_private_key, write_private_key

WARMUP_S = 10.0


def broker(stack: ExitStack, home: Path) -> int:
    """A throwaway Mosquitto on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    conf = home / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    stack.callback(proc.wait)
    stack.callback(proc.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return port
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def listeners(stack: ExitStack, n: int) -> list[int]:
    """N listening sockets on loopback; the kernel completes the agent's connects."""
    ports = []
    for _ in range(n):
        sock = stack.enter_context(socket.socket())
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        ports.append(sock.getsockname()[1])
    return ports


def config(home: Path, broker_port: int, ports: list[int], audit_s: float) -> Path:
    key = home / "agent.key"
    write_private_key(key, generate_private_key())
    cameras = "".join(
        f'[[cameras]]\nid = "cam-{i:03d}"\naddress = "127.0.0.1"\nhttp_port = {port}\n'
        for i, port in enumerate(ports)
    )
    path = home / "agent.toml"
    path.write_text(
        f'agent_id = "bench-idle"\nsite = "bench"\nkey_file = "{key}"\n'
        f'state_dir = "{home / "state"}"\n[mqtt]\nport = {broker_port}\n'
        f"[intervals]\nreport_s = {audit_s}\n{cameras}"
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--audit-s", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        home = Path(tmp)
        path = config(home, broker(stack, home), listeners(stack, args.cameras), args.audit_s)
        log = stack.enter_context((home / "agent.log").open("wb"))
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(path)], stderr=log
        )
        try:
            proc = psutil.Process(agent.pid)
            time.sleep(WARMUP_S)
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
            rss: list[float] = []
            end = t0 + args.minutes * 60
            while time.monotonic() < end:
                rss.append(proc.memory_info().rss / 2**20)
                time.sleep(1.0)
            cpu = (sum(proc.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0) * 100
        finally:
            agent.terminate()
            agent.wait(30)
    print(
        f"camwarden-agent run, {args.cameras} cameras, audit every {args.audit_s:.0f} s, "
        f"{args.minutes:g} min after {WARMUP_S:.0f} s warm-up:"
    )
    print(f"  RSS max {max(rss):.1f} MiB, median {statistics.median(rss):.1f} MiB")
    print(f"  CPU {cpu:.2f} % of one core (average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
