"""The long fuzz run: every target of tests/fuzz/harness.py for a time budget each.

Hostile inputs (the camera lab's answers and the golden envelopes, mutated; raw bytes) go to
envelope verification, message decoding, the vendor parsers and the agent's probes (the RTSP
probe against a loopback server). A finding is an exception outside the target's contract
(``ProtocolError`` on the wire; a typed camera error in the agent), counted once per exception
type and place, with the first input that raised it. Printed per target: executions, executions
per second, the slowest execution, findings; then the load average. Exit status 1 if anything
was found. Coverage-guided fuzzing (atheris, whose wheel installs here) was not used: the
parsing that matters happens in C (lxml, msgspec, expat, OpenSSL) that it does not instrument,
and the seeds already start deep inside each format.

    python bench/fuzz.py [--seconds 8] [--target NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz.harness import RtspPeer, Target, targets  # noqa: E402

ROUND = 200  # examples per hypothesis run; runs repeat until the target's time is up


@dataclass
class Tally:
    executions: int = 0
    slowest_s: float = 0.0
    findings: dict[str, bytes] = field(default_factory=dict)  # where -> first input


def _where(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}"


def fuzz(target: Target, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=ROUND,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: keep going, record the first input instead
        suppress_health_check=list(HealthCheck),
    )
    @given(target.inputs())
    def one(data: bytes) -> None:
        if time.monotonic() > deadline:
            return
        start = time.perf_counter()
        try:
            target.check(data)
        except Exception as exc:  # noqa: BLE001  # a finding: recorded, the run goes on
            tally.findings.setdefault(_where(exc), data)
        tally.executions += 1
        tally.slowest_s = max(tally.slowest_s, time.perf_counter() - start)

    while time.monotonic() < deadline:
        one()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per target")
    parser.add_argument("--target", action="append", help="only these (repeatable)")
    args = parser.parse_args()
    peer = RtspPeer()
    found = 0
    try:
        chosen = [t for t in targets(peer) if not args.target or t.name in args.target]
        print(f"{'target':34} {'execs':>7} {'execs/s':>8} {'slowest':>8}  findings")
        for target in chosen:
            tally = fuzz(target, args.seconds)
            rate = tally.executions / args.seconds
            print(
                f"{target.name:34} {tally.executions:7d} {rate:8.0f} "
                f"{tally.slowest_s * 1000:6.0f}ms  {len(tally.findings)}",
                flush=True,
            )
            for where, data in tally.findings.items():
                print(f"    {where}: {data[:160]!r}")
            found += len(tally.findings)
    finally:
        peer.close()
    total = sum(1 for _ in chosen)
    print(f"{total} targets, {found} findings; load average {' '.join(map(str, os.getloadavg()))}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
