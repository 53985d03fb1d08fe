"""``make demo``: a whole camwarden fleet on this machine, on loopback only.

Starts, in order: a Mosquitto broker on a free loopback port (generated config), the collector on
SQLite, the demo camera lab (``configs/lab/demo.toml``) and one agent enrolled with a pre-approved
token. It prints where to look and a fleet summary now and then; Ctrl-C stops everything it
started, in reverse order. Everything it writes stays in one work directory it names.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from types import FrameType

from agent.vault import Vault, load_vault_key
from lab.broker import Mosquitto, free_port, wait_port
from lab.config import LabConfig
from lab.config import load_config as load_lab

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli(name: str) -> str:
    return str(BIN / name)


class Stop(Exception):
    """Ctrl-C or SIGTERM: unwind and stop what was started."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"start-up failed; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def write_server_config(work: Path, broker: Mosquitto, http_port: int) -> Path:
    path = work / "server.toml"
    path.write_text(
        f'state_dir = "{work / "collector"}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[http]\nbind = "127.0.0.1"\nport = {http_port}\n'
    )
    return path


def write_agent_config(
    work: Path, broker: Mosquitto, http_port: int, lab_state: Path, lab: LabConfig
) -> Path:
    """The agent as a site would configure it: the camera subnet, each camera's configured
    credential in the encrypted vault (AES-GCM, owner-only key file), an audit every 5 minutes.
    Default-credential guessing stays off here: its spaced attempts take minutes per camera."""
    cameras = json.loads(lab_state.read_text())["cameras"]
    home = work / "agent"
    key = home / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    first = next(iter(cameras.values()))["address"]
    lines = [
        'agent_id = "demo-agent-1"',
        'site = "demo-site"',
        f'key_file = "{home / "agent.key"}"',
        f'state_dir = "{home}"',
        f'vault_key_file = "{key}"',
        f'collector_url = "http://127.0.0.1:{http_port}"',
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}',
        "[intervals]\nheartbeat_s = 10\nreport_s = 30",
        "[audit]\ninterval_s = 300",
        f'[network]\ncamera_subnets = ["{ipaddress.ip_network(f"{first}/24", strict=False)}"]',
        f"port_offset = {lab.lab.port_shift}",
    ]
    users = {spec.id: spec.users[0] for spec in lab.cameras}
    for camera_id, cam in cameras.items():
        lines.append(
            f'[[cameras]]\nid = "{camera_id}"\naddress = "{cam["address"]}"\n'
            f'vendor = "{cam["vendor"].lower()}"\ncredentials_ref = "{camera_id}"'
        )
    vault = Vault(home, load_vault_key(key))
    for camera_id in cameras:
        vault.set(camera_id, users[camera_id].name, users[camera_id].password)
    path = work / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def setup_organisation(server: list[str]) -> str:
    """A province, an agency and one information system at security level 2 holding the demo
    site, and a whole-fleet admin; returns the admin's generated password."""
    ids: list[str] = []
    for kind, name in (
        ("province", "Tỉnh Demo"),
        ("agency", "Sở Thông tin và Truyền thông"),
        ("system", "Hệ thống camera giám sát đô thị"),
    ):
        parent = ["--parent", ids[-1]] if ids else []
        ids.append(
            run([*server, "orgs", "add", "--kind", kind, "--name", name, *parent]).split()[-1]
        )
    run(
        [
            *server,
            "systems",
            "set",
            ids[-1],
            "--framework",
            "ND85_TT12_TCVN11930",
            "--level",
            "2",
            "--plan",
            "partial",
            "--decision",
            "123/QĐ-UBND",
            "--decision-date",
            "2025-03-01",
            "--next-check",
            (date.today() + timedelta(days=90)).isoformat(),
        ]
    )
    run([*server, "orgs", "map-site", "demo-site", "--system", ids[-1]])
    password = secrets.token_urlsafe(12)
    run([*server, "users", "create", "admin", "--role", "admin"], stdin=password + "\n")
    return password


def run(argv: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


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
        try:
            return _run(args, work, stack)
        except Stop as why:
            print(f"\n{why}: stopping everything the demo started ...", flush=True)
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish


def _run(args: argparse.Namespace, work: Path, stack: ExitStack) -> int:
    print(f"camwarden demo, work directory {work}", flush=True)
    broker = Mosquitto(work / "broker")
    broker.start()
    stack.callback(broker.stop)
    print(f"  broker     {broker.url}", flush=True)

    http_port = free_port()
    server_cfg = write_server_config(work, broker, http_port)
    server = [cli("camwarden-server"), "--config", str(server_cfg)]
    run([*server, "migrate"])
    password = setup_organisation(server)
    token = run([*server, "tokens", "create", "--site", "demo-site", "--approved"]).split()[-1]
    log = work / "collector.log"
    collector = start([*server, "run"], log)
    stack.callback(stop, collector)
    wait_port("127.0.0.1", http_port, timeout=30)
    print(f"  collector  http://127.0.0.1:{http_port}/  (log {log})", flush=True)

    lab_state = work / "lab.json"
    log = work / "lab.log"
    lab = start(
        [cli("camwarden-lab"), "up", "--config", str(args.lab), "--state", str(lab_state)], log
    )
    stack.callback(stop, lab)
    wait_file(lab_state, lab, log)
    count = len(json.loads(lab_state.read_text())["cameras"])
    print(f"  camera lab {count} cameras from {args.lab.name}  (list: {log})", flush=True)

    (work / "agent").mkdir(exist_ok=True)
    agent_cfg = write_agent_config(work, broker, http_port, lab_state, load_lab(args.lab))
    agent = [cli("camwarden-agent"), "--config", str(agent_cfg)]
    run([cli("camwarden-agent"), "keygen", "--key", str(work / "agent" / "agent.key")])
    run([cli("camwarden-agent"), "enroll", "--token", token, "--config", str(agent_cfg)])
    log = work / "agent.log"
    agent_proc = start([cli("camwarden-agent"), "run", "--config", str(agent_cfg)], log)
    stack.callback(stop, agent_proc)
    print(f"  agent      demo-agent-1 at site demo-site  (log {log})", flush=True)
    print(
        "\nWhere to look:\n"
        f"  http://127.0.0.1:{http_port}/  dashboard, user admin, password {password}\n"
        f"  http://127.0.0.1:{http_port}/api/docs  the API\n"
        f"  {' '.join(server)} fleet        the fleet as the collector sees it\n"
        f"  {' '.join(server)} agents list  enrolled agents and their keys\n"
        f"  http://127.0.0.1:{http_port}/metrics       ingest counters, rejections by reason\n"
        f"  {' '.join(agent[:1])} report --once --out FILE --config {agent_cfg}\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    while True:
        time.sleep(args.summary_every)
        for proc, name in ((collector, "collector"), (lab, "lab"), (agent_proc, "agent")):
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see the logs in {work}", flush=True)
                return 1
        print(run([*server, "fleet"]), flush=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
