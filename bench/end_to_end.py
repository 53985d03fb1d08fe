"""What the end-to-end benchmarks (``bench/rollout.py``, ``bench/remediate_rollout.py``) share:
their ``--timeout-s`` and ``--workdir`` options, the work directory (a temporary one unless
named), their agents' settings and the line that states the machine's load."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

Run = Callable[[argparse.Namespace, Path, ExitStack], int]
# an agent that audits once at start, then only heartbeats and reports
AGENT_SETTINGS = """[intervals]
heartbeat_s = 30
report_s = 60
[audit]
interval_s = 86400
guess_default_credentials = false
[network]
port_offset = {port_offset}
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(parser: argparse.ArgumentParser, run: Run, *, timeout_s: float, prefix: str) -> int:
    """``parser`` with ``--timeout-s`` (default ``timeout_s``) and ``--workdir`` added, parsed;
    ``run`` in the work directory (created; a temporary one named ``prefix...`` by default, gone
    afterwards) with the stack that stops what it starts."""
    parser.add_argument("--timeout-s", type=float, default=timeout_s)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with ExitStack() as stack:
        if args.workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        else:
            work = args.workdir
            work.mkdir(parents=True)
        return run(args, work, stack)
