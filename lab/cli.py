"""``camwarden-lab``: run a lab from a LAB.toml, stop it, or print its ground truth.

camwarden-lab up --config LAB.toml [--state PATH] [--request-log PATH]
camwarden-lab down [--state PATH]
camwarden-lab truth --config LAB.toml
camwarden-lab log [--camera ID] [--state PATH | --file PATH]

``up`` writes every camera's requests and lock events as JSON lines (``[lab] request_log``, or
``--request-log``, or ``camwarden-lab-requests.jsonl`` beside the state file); ``log`` prints
them, of one camera with ``--camera``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab import __version__
from lab.config import load_config
from lab.errors import LabError
from lab.fleet import Fleet
from lab.requestlog import read_log
from lab.truth import lab_truth
from protocol.cliparse import document

__all__ = ["entrypoint", "main"]

log = logging.getLogger(__name__)

STOP_WAIT_S = 10.0


def default_state() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / "camwarden-lab.json"


EXAMPLES = {
    "up": "camwarden-lab up --config configs/lab/demo.toml",
    "down": "camwarden-lab down",
    "truth": "camwarden-lab truth --config configs/lab/demo.toml",
    "log": "camwarden-lab log --camera cam-01",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camwarden-lab",
        description="camwarden lab: simulated IP cameras on loopback, to test the agent.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab and run until Ctrl-C / SIGTERM")
    up.add_argument("--config", required=True, type=Path)
    up.add_argument("--state", type=Path, default=None, help="state file (pid, addresses)")
    up.add_argument("--request-log", type=Path, default=None, help="JSON-lines request log")
    down = sub.add_parser("down", help="stop the lab started by `up`")
    down.add_argument("--state", type=Path, default=None)
    truth = sub.add_parser("truth", help="print the seeded weaknesses as JSON")
    truth.add_argument("--config", required=True, type=Path)
    show = sub.add_parser("log", help="print the request log (JSON lines) of a running lab")
    show.add_argument("--camera", default=None, help="only this camera's entries")
    show.add_argument("--state", type=Path, default=None)
    show.add_argument("--file", type=Path, default=None, help="the log file (default: the lab's)")
    return document(parser, EXAMPLES)


def _request_log_path(state: Path) -> Path:
    return state.with_name(state.stem + "-requests.jsonl")


async def _up(config_path: Path, state: Path, request_log: Path | None) -> int:
    config = load_config(config_path)
    log_path = request_log or config.lab.request_log or _request_log_path(state)
    config = dataclasses.replace(config, lab=dataclasses.replace(config.lab, request_log=log_path))
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
                "request_log": str(log_path),
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


def _running(state: Path) -> dict[str, Any] | None:
    """The state file of the running lab, or None (said on stderr)."""
    try:
        found: dict[str, Any] = json.loads(state.read_text())
    except FileNotFoundError:
        print(f"no lab running (no {state})", file=sys.stderr)
        return None
    return found


def _down(state: Path) -> int:
    running = _running(state)
    if running is None:
        return 1
    pid = int(running["pid"])
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


def _log(state: Path, file: Path | None, camera: str | None) -> int:
    if file is None:
        running = _running(state)
        if running is None:
            return 1
        file = Path(running["request_log"])
    try:
        for entry in read_log(file, camera):
            print(json.dumps(entry, sort_keys=True))
    except FileNotFoundError:
        print(f"no request log at {file}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state = getattr(args, "state", None) or default_state()
    try:
        if args.command == "up":
            return asyncio.run(_up(args.config, state, args.request_log))
        if args.command == "down":
            return _down(state)
        if args.command == "log":
            return _log(state, args.file, args.camera)
        print(json.dumps(lab_truth(load_config(args.config)), indent=2, sort_keys=True))
    except LabError as exc:
        print(f"camwarden-lab: {exc}", file=sys.stderr)
        return 2
    return 0


def entrypoint() -> None:
    sys.exit(main())
