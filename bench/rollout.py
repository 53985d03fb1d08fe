"""A firmware rollout to 100 lab cameras across 5 sites, real end to end.

Everything is a real process on loopback: one camera lab (``camwarden-lab up``, loopback mode)
with 100 Hikvision, Dahua and Axis cameras, 20 per site; Mosquitto; the collector
(``camwarden-server run`` on SQLite) set up through its command line (organisation tree, TUF
repository with root and targets signed offline by ``firmware sign``, one image per vendor in
the catalogue); one ``camwarden-agent run`` per site, enrolled with an approved token, its 20
cameras' credentials in its vault. Each agent audits once at start (so the collector knows the
cameras' models), then only heartbeats and reports. One rollout per vendor (canary, batches, a
per-site parallel cap), promoted by the operator through ``camwarden-server rollout promote``
once its canary has succeeded. The agents carry out every signed ``firmware.apply`` for real:
TUF download from the collector, upload to the lab camera, reboot wait, post-verification.

Prints the wall time, each rollout's stages, per step (from the agents' signed results as the
collector stored them) count, median and p95 duration and first start / last end relative to
the first rollout's creation, each agent's peak RSS, and the machine's load.

    python bench/rollout.py [--image-mb 4] [--reboot-s 2] [--canary 2] [--batch-size 10]
                            [--max-parallel 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bench import end_to_end
from bench.end_to_end import load
from lab.broker import Mosquitto
from lab.config import load_config
from lab.firmware import make_image
from lab.testing import private_base
from protocol import CommandResult, decode_agent_message, import_private_pem, thumbprint, verify
from server.domain.rollouts import RolloutDetail, Rollouts
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.firmware_models import CommandRecord
from server.storage.models import Camera, Message
from tests.support.firmware import ADMIN, scope
from tests.support.stack import (
    AGENT,
    Collector,
    enroll_agent,
    start,
    start_lab,
    stop,
    write_agent_config,
)

SITES, PER_SITE = 5, 20


@dataclass(frozen=True)
class Vendor:
    persona: str
    model: str
    old: str
    new: str
    per_site: int


VENDORS = (
    Vendor("hikvision", "DS-2CD2143G2-I", "V5.5.0", "V5.7.3", 8),
    Vendor("dahua", "IPC-HFW2431S-S-S2", "2.800.0000000.25.R", "2.800.0000000.31.R", 7),
    Vendor("axis", "P3245-LVE", "10.12.182", "11.5.64", 5),
)
assert sum(v.per_site for v in VENDORS) == PER_SITE


def lab_toml(reboot_s: float) -> str:
    lines = ["[lab]", 'mode = "loopback"', f'loopback_base = "{private_base()}"']
    for s in range(1, SITES + 1):
        for v in VENDORS:
            lines += [
                "[[camera]]",
                f'id = "site{s}-{v.persona}"',
                f'persona = "{v.persona}"',
                f'model = "{v.model}"',
                f'firmware = "{v.old}"',
                f"count = {v.per_site}",
                f"firmware_upgrade = {{reboot_s = {reboot_s}}}",
            ]
    return "\n".join(lines) + "\n"


AGENT_SETTINGS = (
    end_to_end.AGENT_SETTINGS
    + """[firmware]
poll_interval_s = 0.5
reboot_timeout_s = 120
camera_timeout_s = 10
"""
)


def publish_firmware(collector: Collector, offline: Path, image_bytes: int) -> dict[str, int]:
    """TUF set up with offline root and targets keys, one image per vendor uploaded, signed
    offline and published; the image id per persona."""
    offline.mkdir()
    keys = {name: offline / f"{name}.key" for name in ("root", "targets")}
    for key in keys.values():
        collector.cli("firmware", "keygen", str(key))
    collector.cli(
        "firmware", "init", "--root-key", f"{keys['root']}.pub", "--root-threshold", "1",
        "--targets-key", f"{keys['targets']}.pub",
    )  # fmt: skip
    ids = {}
    for v in VENDORS:
        image = offline / f"{v.persona}-{v.new}.bin"
        image.write_bytes(
            make_image(v.persona, v.new, dt.date(2024, 5, 1), image_bytes, model=v.model)
        )
        out = collector.cli(
            "firmware", "upload", str(image), "--vendor", v.persona, "--model", v.model,
            "--version", v.new, "--build-date", "2024-05-01",
        )  # fmt: skip
        ids[v.persona] = int(out.split()[1].rstrip(":"))
    bundle = offline / "next.bundle"
    collector.cli("firmware", "export-bundle", str(bundle))
    for key in keys.values():
        collector.cli("firmware", "sign", "--key", str(key), str(bundle))
    collector.cli("firmware", "import-signed", str(bundle))
    return ids


def known_models(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return sum(1 for i in conn.scalars(select(Camera.identity)) if i.get("model"))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-mb", type=float, default=4.0, help="size of each image")
    parser.add_argument("--reboot-s", type=float, default=2.0, help="lab cameras' reboot time")
    parser.add_argument("--canary", type=int, default=2, help="canary cameras per rollout")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-parallel", type=int, default=2, help="per site and rollout")
    return end_to_end.main(parser, run, timeout_s=600.0, prefix="rollout-")


def run(args: argparse.Namespace, work: Path, stack: ExitStack) -> int:  # noqa: PLR0915
    started = time.monotonic()
    broker = Mosquitto(work / "broker")
    broker.start()
    stack.callback(broker.stop)
    collector = Collector(
        work / "collector", broker.port, settings="[firmware]\nscheduler_interval_s = 0.5"
    )
    collector.cli("migrate")
    sites = [f"site-{s}" for s in range(1, SITES + 1)]
    system = collector.organisation(sites)[-1]
    images = publish_firmware(collector, work / "offline", int(args.image_mb * 2**20))
    collector.start()
    stack.callback(collector.stop)

    lab_file = work / "lab.toml"
    lab_file.write_text(lab_toml(args.reboot_s))
    lab_proc, cameras = start_lab(lab_file, work)
    stack.callback(stop, lab_proc)
    lab = load_config(lab_file)
    agents: dict[str, subprocess.Popen[bytes]] = {}
    for s, site in enumerate(sites, 1):
        home = work / f"agent-{s}"
        config = write_agent_config(
            home,
            agent_id=f"agent-{s}",
            site=site,
            broker=(broker.host, broker.port),
            collector_url=collector.url,
            cameras={k: c for k, c in cameras.items() if k.startswith(f"site{s}-")},
            lab=lab,
            settings=AGENT_SETTINGS.format(port_offset=lab.lab.port_shift),
        )
        enroll_agent(config, collector, site)
        agents[f"agent-{s}"] = proc = start([*AGENT, "run", "--config", str(config)], home / "log")
        stack.callback(stop, proc)
    repo = Repository.open(f"sqlite:///{collector.home / 'collector.db'}")
    stack.callback(repo.close)
    deadline = time.monotonic() + args.timeout_s
    while known_models(repo) < SITES * PER_SITE:
        if time.monotonic() > deadline:
            print(f"only {known_models(repo)} cameras identified in time", file=sys.stderr)
            return 1
        time.sleep(1)
    ready = time.monotonic() - started
    print(
        f"set-up: {len(cameras)} lab cameras, {SITES} agents enrolled and audited in {ready:.1f} s"
    )

    t0 = time.monotonic()
    rollouts: dict[int, str] = {}
    for v in VENDORS:
        out = collector.cli(
            "rollout", "create", "--name", f"{v.persona} {v.new}", "--image",
            str(images[v.persona]), "--org", str(system), "--model", v.model,
            "--canary", str(args.canary), "--batch-size", str(args.batch_size),
            "--max-parallel", str(args.max_parallel), "--failure-threshold", "3",
        )  # fmt: skip
        rollouts[int(out.split()[1])] = v.persona
    fw = Rollouts(scope(repo, ADMIN), TufRepository.under(collector.home))
    promoted: set[int] = set()
    while True:
        phases = {rid: fw.rollout(rid).rollout.phase for rid in rollouts}
        for rid, phase in phases.items():
            if phase == "awaiting_promotion" and rid not in promoted:
                collector.cli("rollout", "--by", "operator", "promote", str(rid))
                promoted.add(rid)
        if all(p == "completed" for p in phases.values()):
            break
        if any(p in ("paused", "halted") for p in phases.values()) or time.monotonic() > deadline:
            print(f"rollouts stopped: {phases}", file=sys.stderr)
            break
        time.sleep(0.25)
    wall = time.monotonic() - t0
    rss = {name: peak_rss_mib(proc.pid) for name, proc in agents.items()}
    details = {rid: fw.rollout(rid) for rid in rollouts}
    origin = min(d.events[0].at for d in details.values())
    steps = timeline(repo, work, set(agents), origin)
    report(args, wall=wall, details=details, names=rollouts, steps=steps, rss=rss)
    ok = all(d.rollout.succeeded == d.rollout.total for d in details.values())
    return 0 if ok else 1


Step = tuple[str, float, float]  # name, start, end (seconds after the first creation)


def timeline(repo: Repository, work: Path, agents: set[str], origin: datetime) -> list[Step]:
    """Every step of every firmware.apply, from the signed results the collector stored
    (verified with each agent's key), plus ``delivery``: signed by the collector -> accepted."""
    keys = {
        thumbprint(k): k
        for k in (import_private_pem((work / a / "agent.key").read_bytes()) for a in agents)
    }
    with repo.engine.connect() as conn:
        issued = {
            r.command_id: r.issued_at
            for r in conn.execute(select(CommandRecord.command_id, CommandRecord.issued_at))
        }
        tokens = list(conn.scalars(select(Message.jws)))
    results: dict[str, list[CommandResult]] = defaultdict(list)
    for jws in tokens:
        message = decode_agent_message(verify(jws.encode(), keys.__getitem__).payload)
        if isinstance(message, CommandResult) and message.command_id in issued:
            results[message.command_id].append(message)
    steps: list[Step] = []

    def rel(at: datetime) -> float:
        return (at - origin).total_seconds()

    for command_id, trail in results.items():
        trail.sort(key=lambda m: m.seq)
        steps.append(("delivery", rel(issued[command_id]), rel(trail[0].issued_at)))
        for a, b in itertools.pairwise(trail):
            name = a.step if a.status == "in_progress" and a.step else a.status
            steps.append((name, rel(a.issued_at), rel(b.issued_at)))
    return steps


def p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    )


def report(
    args: argparse.Namespace,
    *,
    wall: float,
    details: dict[int, RolloutDetail],
    names: dict[int, str],
    steps: list[Step],
    rss: dict[str, float],
) -> None:
    total = sum(d.rollout.total for d in details.values())
    done = sum(d.rollout.succeeded for d in details.values())
    print(
        f"{total} cameras, {SITES} sites, {len(details)} rollouts (one per vendor); image "
        f"{args.image_mb:g} MiB, camera reboot {args.reboot_s:g} s; policy: canary "
        f"{args.canary}, batches of {args.batch_size}, at most {args.max_parallel} in "
        "parallel per site and rollout; scheduler tick 0.5 s"
    )
    print(f"wall time: {wall:.1f} s from the first `rollout create` to the last completion")
    print(f"succeeded {done}/{total}; {load()}")
    origin = min(d.events[0].at for d in details.values())
    print("stages (seconds after the first creation):")
    for rid, d in details.items():
        r = d.rollout
        print(
            f"  rollout {rid} {names[rid]}: {r.phase}, {r.succeeded}/{r.total}, {r.stages} stages"
        )
        for e in d.events:
            stage = f" stage {e.detail['stage']}" if "stage" in e.detail else ""
            print(f"    {(e.at - origin).total_seconds():7.1f}  {e.action}{stage} ({e.actor})")
    print("steps: count, median and p95 duration (s), first start and last end (s):")
    by_name: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        by_name[step[0]].append(step)
    for name, group in sorted(by_name.items(), key=lambda kv: min(s[1] for s in kv[1])):
        durations = [end - begin for _, begin, end in group]
        print(
            f"  {name:12s} {len(group):4d} {statistics.median(durations):7.2f} "
            f"{p95(durations):7.2f} {min(s[1] for s in group):7.1f} {max(s[2] for s in group):7.1f}"
        )
    print("agents' peak RSS (VmHWM): " + ", ".join(f"{a} {m:.0f} MiB" for a, m in rss.items()))
    print(f"measured at {datetime.now(UTC).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    sys.exit(main())
