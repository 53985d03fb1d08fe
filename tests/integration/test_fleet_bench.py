"""The fleet simulator at small size: a real Mosquitto and collector, 20 agents, nothing lost.

``bench/fleet.py`` prints figures and never gates CI; this keeps it runnable. It runs as a
process, as an operator runs it (its own file-descriptor limit, signal handlers and event loop).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_twenty_agents_lose_nothing_and_the_figures_print() -> None:
    command = [sys.executable, "-m", "bench.fleet", "--agents", "20", "--rate", "30"]
    command += ["--duration", "3", "--cameras-per-report", "20", "--report-share", "0.5"]
    command += ["--sqlite", "--drain", "90", "--idle", "1"]
    run = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "agents connected (time to connect)" in out
    assert re.search(r"^agents connected .* 20 \(", out, re.M), out
    assert re.search(r"^stored / lost / refused / duplicates\s+90 / 0 / 0 / 0$", out, re.M), out
    assert "mosquitto: lost 0, refused 0 (quarantined: none)" in out
    latency = re.search(
        r"^latency issued->acked p50 / p99 / max\s+(\d+) / (\d+) / (\d+) ms$", out, re.M
    )
    assert latency is not None, out
    p50, p99, worst = (int(v) for v in latency.groups())
    assert 0 <= p50 <= p99 <= worst
    for row in ("broker", "collectors", "simulator"):
        assert re.search(rf"^CPU us/msg {row} \(above idle\)\s+\d+ \(-?\d+\)$", out, re.M), out
    for row in ("broker", "collectors"):
        assert re.search(rf"^CPU idle, cores: {row}\s+\d+\.\d+$", out, re.M), out
