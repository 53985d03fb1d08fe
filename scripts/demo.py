"""``make demo``: a whole camwarden fleet on this machine, on loopback only.

Starts, in order: a Mosquitto broker on a free loopback port (generated config), the collector on
SQLite, the demo camera lab (``configs/lab/demo.toml``) and one agent enrolled with a pre-approved
token. It prints where to look and a fleet summary now and then; Ctrl-C stops everything it
started, in reverse order. Everything it writes stays in one work directory it names; a
temporary one (no ``--workdir``) is removed on exit. The commands it prints are the ones a user
types (``camwarden-server ...``, from the project's virtual environment).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.broker import Mosquitto  # noqa: E402
from lab.config import load_config as load_lab  # noqa: E402
from tests.support.stack import (  # noqa: E402
    AGENT,
    Collector,
    enroll_agent,
    start,
    start_lab,
    stop,
    write_agent_config,
)


class Stop(Exception):
    """Ctrl-C or SIGTERM: unwind and stop what was started."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def setup_organisation(collector: Collector) -> str:
    """A province, an agency and one information system at security level 2 holding the demo
    site, and a whole-fleet admin; returns the admin's generated password."""
    system = collector.organisation(["demo-site"])[-1]
    collector.cli(
        "systems", "set", str(system),
        "--framework", "ND85_TT12_TCVN11930",
        "--level", "2",
        "--plan", "partial",
        "--decision", "123/QĐ-UBND",
        "--decision-date", "2025-03-01",
        "--next-check", (date.today() + timedelta(days=90)).isoformat(),
    )  # fmt: skip
    password = secrets.token_urlsafe(12)
    collector.cli("users", "create", "admin", "--role", "admin", stdin=password + "\n")
    return password


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab", type=Path, default=ROOT / "configs" / "lab" / "demo.toml")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temp dir")
    parser.add_argument("--summary-every", type=float, default=30.0)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="camwarden-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with ExitStack() as stack:
        if args.workdir is None:  # registered first: removed after everything has stopped
            stack.callback(_remove, work)
        try:
            return _run(args, work, stack)
        except Stop as why:
            print(f"\n{why}: stopping everything the demo started ...", flush=True)
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish


def _remove(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    print(f"removed {work}", flush=True)


def typed(program: str, *args: str | Path) -> str:
    """The command line a user types: the installed command, not the interpreter running it."""
    return shlex.join([program, *(str(arg) for arg in args)])


def _run(args: argparse.Namespace, work: Path, stack: ExitStack) -> int:
    print(f"camwarden demo, work directory {work}", flush=True)
    broker = Mosquitto(work / "broker")
    broker.start()
    stack.callback(broker.stop)
    print(f"  broker     {broker.url}", flush=True)

    collector = Collector(work / "collector", broker.port)
    collector.cli("migrate")
    password = setup_organisation(collector)
    collector.start()
    stack.callback(collector.stop)
    print(f"  collector  {collector.url}/  (log {collector.log})", flush=True)

    lab, cameras = start_lab(args.lab, work)
    stack.callback(stop, lab)
    print(f"  camera lab {len(cameras)} cameras from {args.lab.name}  (list: {work / 'lab.log'})")

    first = next(iter(cameras.values()))["address"]
    subnet = ipaddress.ip_network(f"{first}/24", strict=False)
    # an audit every 5 minutes; default-credential guessing stays off here: its spaced
    # attempts take minutes per camera
    agent_cfg = write_agent_config(
        work / "agent",
        agent_id="demo-agent-1",
        site="demo-site",
        broker=(broker.host, broker.port),
        collector_url=collector.url,
        cameras=cameras,
        lab=load_lab(args.lab),
        settings=(
            "[intervals]\nheartbeat_s = 10\nreport_s = 30\n[audit]\ninterval_s = 300\n"
            "guess_default_credentials = false\n"
            f'[network]\ncamera_subnets = ["{subnet}"]\n'
            f"port_offset = {load_lab(args.lab).lab.port_shift}"
        ),
    )
    enroll_agent(agent_cfg, collector, "demo-site")
    log = work / "agent.log"
    agent_proc = start([*AGENT, "run", "--config", str(agent_cfg)], log)
    stack.callback(stop, agent_proc)
    print(f"  agent      demo-agent-1 at site demo-site  (log {log})", flush=True)
    server = ("camwarden-server", "--config", collector.config)
    report = typed("camwarden-agent", "report", "--once", "--out", "FILE", "--config", agent_cfg)
    print(
        "\nWhere to look:\n"
        f"  {collector.url}/  dashboard, user admin, password {password}\n"
        f"  {collector.url}/api/docs  the API\n"
        f"  {collector.url}/metrics  ingest counters, rejections by reason\n"
        "Commands (after `. .venv/bin/activate` in the project directory):\n"
        f"  {typed(*server, 'fleet')}\n"
        f"  {typed(*server, 'agents', 'list')}\n"
        f"  {report}\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    if collector.proc is None:
        raise RuntimeError("the collector did not start")
    while True:
        time.sleep(args.summary_every)
        for proc, name in ((collector.proc, "collector"), (lab, "lab"), (agent_proc, "agent")):
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see the logs in {work}", flush=True)
                return 1
        print(collector.cli("fleet"), flush=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
