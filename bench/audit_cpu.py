"""CPU of one scheduled audit of 50 lab cameras, and the requests each camera received.

The lab (configs/lab/mixed-50.toml) runs in this process, in a thread of its own, so that its
request log can be read; the audit runs as the daemon of ``camwarden-agent run`` runs it: the
audit worker (``agent.audit.worker``) given the config on stdin, with the config of
bench/agent_idle.py (concurrency 8, 5-minute interval, guessing off). Per run it prints the
worker's CPU seconds (``wait4``: user + system), wall time and a digest of its findings
(camera, check, code, status: equal digests, same findings) and, when a run's findings differ
from the run before, those that differ; then, for the last run, the HTTP
requests per camera by interface and kind (vendor API paths, ONVIF operations) and the HTTP
connections (TCP, or TLS handshakes on HTTPS) the cameras accepted.

    python bench/audit_cpu.py [--runs 3] [--top 25] [--prefix "py-spy record -o x.raw --"]

``--prefix`` runs each measured worker under another program (a profiler: its CPU is counted).
``--tree`` runs the worker from another source tree holding ``agent`` and ``protocol`` (e.g.
``git archive`` of an older commit), first on its ``sys.path``: before/after on the same lab.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
from aiohttp import web_protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.audit.worker import WORKER, AuditRequest
from agent.config import load_config
from bench.agent_idle import LAB
from bench.audit import agent_config, measured
from lab.config import load_config as load_lab
from lab.fleet import Fleet

AUDIT_S = 300  # bench/agent_idle.py's default interval


@contextmanager
def running_lab() -> Iterator[Fleet]:
    """The mixed-50 fleet served by an event loop in a thread until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="lab", daemon=True)
    thread.start()
    fleet = asyncio.run_coroutine_threadsafe(Fleet.start(load_lab(LAB)), loop).result(120)
    try:
        yield fleet
    finally:
        asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


CONNECTIONS: Counter[str] = Counter()  # accepted HTTP(S) connections by camera address


def count_connections() -> None:
    """Count every connection the lab's HTTP servers accept, by camera address."""
    made = web_protocol.RequestHandler.connection_made

    def counted(self: web_protocol.RequestHandler, transport: asyncio.BaseTransport) -> None:
        CONNECTIONS[transport.get_extra_info("sockname")[0]] += 1
        made(self, transport)

    web_protocol.RequestHandler.connection_made = counted  # type: ignore[method-assign]


def kind(target: str) -> str:
    """A request's kind: the ONVIF operation, or the path without its query."""
    return target.split("?", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=25, help="request kinds listed")
    parser.add_argument("--prefix", default="", help="command line the workers run under")
    parser.add_argument("--tree", type=Path, help="source tree the worker imports agent from")
    args = parser.parse_args()
    count_connections()
    cpus: list[float] = []
    before: set[tuple[str, str, str, str]] | None = None
    with tempfile.TemporaryDirectory(prefix="camwarden-cpu-bench-") as tmp, running_lab() as fleet:
        hosts = {cid: (node.host, node.vendor) for cid, node in fleet.cameras.items()}
        path = agent_config(
            Path(tmp) / "agent", hosts, concurrency=8, audit=[f"interval_s = {AUDIT_S}"]
        )
        request = msgspec.json.encode(AuditRequest(load_config(path), logging.ERROR)) + b"\n"
        worker = [*shlex.split(args.prefix), *WORKER]
        if args.tree is not None:
            worker[-1] = str(args.tree.resolve())  # WORKER ends with the directory to import
        # one run first: the venv's bytecode and the page cache, as a running daemon has them
        measured(worker, request)
        for run in range(args.runs):
            for node in fleet.cameras.values():
                node.camera.log.clear()
            CONNECTIONS.clear()
            load = os.getloadavg()[0]
            wall, _peak, output, cpu = measured(worker, request)
            cpus.append(cpu)
            answer = next(line for line in output.splitlines() if line.startswith(b"{"))
            cameras = msgspec.json.decode(answer)["result"]["cameras"]
            reasons = {
                (c["camera_id"], f["check"], f["code"], f["status"]): f.get("reason") or ""
                for c in cameras
                for f in c["findings"]
            }
            findings = sorted(
                (c["camera_id"], f["check"], f["code"], f["status"])
                for c in cameras
                for f in c["findings"]
            )
            digest = hashlib.sha256(json.dumps(findings).encode()).hexdigest()[:12]
            print(
                f"run {run + 1}: CPU {cpu:.2f} s, wall {wall:.1f} s, {len(findings)} findings"
                f" (digest {digest}),"
                f" load (1 min) {load:.2f}"
            )
            if before is not None:
                for sign, changed in (("-", before - set(findings)), ("+", set(findings) - before)):
                    for finding in sorted(changed):
                        print(f"  {sign} {' '.join(finding)} {reasons.get(finding, '')}")
            before = set(findings)
        records = [r for node in fleet.cameras.values() for r in node.camera.log]
    n = len(hosts)
    print(
        f"CPU per audit: mean {statistics.fmean(cpus):.2f} s, min {min(cpus):.2f}, max"
        f" {max(cpus):.2f} ({n} cameras)"
    )
    by_interface = Counter(r.interface for r in records)
    print(
        "HTTP requests per camera: "
        + ", ".join(f"{i} {c / n:.1f}" for i, c in sorted(by_interface.items()))
        + f"; connections accepted per camera {sum(CONNECTIONS.values()) / n:.1f}"
    )
    kinds = Counter((r.interface, r.method, kind(r.target), r.status) for r in records)
    for (interface, method, what, status), count in kinds.most_common(args.top):
        print(f"  {count / n:5.2f}  {interface:5} {status} {method:4} {what}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
