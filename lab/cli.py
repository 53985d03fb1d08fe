"""``camwarden-lab``: run a lab from a LAB.toml, stop it, or print its ground truth.

camwarden-lab up --config LAB.toml [--state PATH]
camwarden-lab down [--state PATH]
camwarden-lab truth --config LAB.toml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lab import __version__
from lab.config import load_config
from lab.errors import LabError
from lab.fleet import Fleet
from lab.truth import lab_truth

__all__ = ["entrypoint", "main"]

log = logging.getLogger(__name__)

STOP_WAIT_S = 10.0


def default_state() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / "camwarden-lab.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camwarden-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab and run until Ctrl-C / SIGTERM")
    up.add_argument("--config", required=True, type=Path)
    up.add_argument("--state", type=Path, default=None, help="state file (pid, addresses)")
    down = sub.add_parser("down", help="stop the lab started by `up`")
    down.add_argument("--state", type=Path, default=None)
    truth = sub.add_parser("truth", help="print the seeded weaknesses as JSON")
    truth.add_argument("--config", required=True, type=Path)
    return parser


async def _up(config_path: Path, state: Path) -> int:
    config = load_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    fleet = await Fleet.start(config)
    try:
        for node in fleet.cameras.values():
            weak = ",".join(sorted(node.weaknesses)) or "-"
            print(f"{node.id:<20} {node.url():<28} {node.vendor:<10} {node.spec.model:<20} {weak}")
        for router in fleet.routers.values():
            print(f"{router.spec.id:<20} {router.host:<28} router")
        if fleet.agent_namespace is not None:
            print(
                f"agent namespace {fleet.agent_namespace} ({fleet.agent_address}): "
                f"ip netns exec {fleet.agent_namespace} COMMAND"
            )
        cameras = {
            cam_id: {"address": node.host, "ports": node.ports, "vendor": node.vendor}
            for cam_id, node in fleet.cameras.items()
        }
        _write_state(
            state,
            {
                "pid": os.getpid(),
                "config": str(config_path),
                "cameras": cameras,
                "agent_namespace": fleet.agent_namespace,
                "namespaces": fleet.netlab.namespaces if fleet.netlab is not None else [],
            },
        )
        print(
            f"lab up: {len(fleet.cameras)} cameras in {time.monotonic() - started:.2f} s "
            f"(pid {os.getpid()}, state {state})",
            flush=True,
        )
        await stop.wait()
    finally:
        await fleet.stop()
        _remove_state(state)
    return 0


def _write_state(state: Path, data: dict[str, object]) -> None:
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(state)


def _remove_state(state: Path) -> None:
    state.unlink(missing_ok=True)


def _down(state: Path) -> int:
    try:
        pid = int(json.loads(state.read_text())["pid"])
    except FileNotFoundError:
        print(f"no lab running (no {state})", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        state.unlink(missing_ok=True)
        print(f"lab pid {pid} was not running", file=sys.stderr)
        return 1
    deadline = time.monotonic() + STOP_WAIT_S
    while state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"lab pid {pid} stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state = getattr(args, "state", None) or default_state()
    try:
        if args.command == "up":
            return asyncio.run(_up(args.config, state))
        if args.command == "down":
            return _down(state)
        print(json.dumps(lab_truth(load_config(args.config)), indent=2, sort_keys=True))
    except LabError as exc:
        print(f"camwarden-lab: {exc}", file=sys.stderr)
        return 2
    return 0


def entrypoint() -> None:
    sys.exit(main())
