"""Collector ingest throughput against its ceilings (prints figures; not a test).

The broker is preloaded with N signed reports in the collectors' persistent shared-subscription
sessions before any collector starts, so the load generator does not compete for CPU. Measured:
(a) mosquitto_sub delivery rate of the same messages (transport ceiling), (b) bare Ed25519
verification of the same reports in one Python thread (crypto ceiling), (c) one collector
process verifying and storing, (d) two collector processes sharing the subscription; (c) and
(d) into SQLite and, when a PostgreSQL URL is given, into PostgreSQL.

Every figure is the median of ``--repeat`` runs. The machine is shared, so next to each rate the
bench prints what it cost and what else ran: CPU microseconds per stored message of the
collector processes, of the broker and of the PostgreSQL server processes, and how busy the
whole machine was (from /proc/stat), with the part of it that was none of these: other jobs
(and this script's polling). The CPU figures are much steadier than the rates and give the
bound no scheduling can beat: cores / CPU per message.

    python bench/ingest.py [N] [--repeat R] [--pg URL | --no-pg]

The PostgreSQL URL defaults to $CAMWARDEN_BENCH_PG, then $CAMWARDEN_TEST_PG (as exported by
scripts/with-services.sh); each run gets a throwaway schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text

from protocol import collector_subscriptions
from server.storage import Repository
from server.storage.models import Message
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto, free_port

AGENTS = 8
RUN_TIMEOUT_S = 300.0
START_TIMEOUT_S = 60.0
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1

Messages = list[tuple[str, bytes]]


# -- CPU accounting ---------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def load1() -> float:
    return os.getloadavg()[0]


@dataclass(frozen=True, slots=True)
class Run:
    rate: float  # stored messages per second
    collector_us: float  # CPU microseconds per stored message, all collector processes
    broker_us: float
    postgres_us: float  # every postgres process on the machine, ours or not
    machine_busy: float  # busy cores of the whole machine during the run
    load: float  # 1-minute load average before the run


class CpuMeter:
    def __init__(self, pids: Callable[[], list[int]], broker: int, postgres: bool) -> None:
        self._pids = pids
        self._broker = broker
        self._postgres = postgres
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, tuple[int, int]]:
        pg = sum(process_cpu(p) for p in postgres_pids()) if self._postgres else 0.0
        collectors = sum(process_cpu(p) for p in self._pids())
        return collectors, process_cpu(self._broker), pg, machine_ticks()

    def stop(self, rate: float, stored: int, load: float) -> Run:
        end = self._sample()
        c, b, pg = (1e6 * (e - s) / stored for e, s in zip(end[:3], self._start[:3], strict=True))
        busy = (end[3][0] - self._start[3][0]) / max(1, end[3][1] - self._start[3][1]) * CORES
        return Run(rate, c, b, pg, busy, load)


# -- broker and load ----------------------------------------------------------------------


def client(port: int, client_id: str, persistent: bool) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(2000)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600 if persistent else 0
    c.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    return c


def create_sessions(port: int, client_ids: list[str]) -> None:
    for cid in client_ids:
        c = client(port, cid, persistent=True)
        c.loop_start()
        c.subscribe([(name, 1) for name in collector_subscriptions()])
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()


def publish(port: int, messages: Messages) -> None:
    c = client(port, f"bench-pub-{uuid.uuid4().hex[:6]}", persistent=False)
    c.loop_start()
    try:
        infos = [c.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(60)
            if not info.is_published():
                raise TimeoutError("the broker did not take the preload within 60 s")
    finally:
        c.disconnect()
        c.loop_stop()


@contextmanager
def broker(workdir: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(workdir)
    b.start()
    try:
        yield b
    finally:
        b.stop()


# -- databases ------------------------------------------------------------------------------


@contextmanager
def database(kind: str, work: Path, pg_url: str) -> Iterator[str]:
    """A fresh, empty database for one run: a SQLite file or a throwaway PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{work / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in pg_url else "?"
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def stored(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Message)).scalar_one())


# -- the measurements -------------------------------------------------------------------------


def crypto_ceiling(messages: Messages, keys: dict[str, Ed25519PublicKey]) -> float:
    items = []
    for t, token in messages:
        signing_input, _, sig = token.rpartition(b".")
        items.append((keys[t.split("/")[3]], base64.urlsafe_b64decode(sig + b"=="), signing_input))
    start = time.perf_counter()
    for key, sig, data in items:
        key.verify(sig, data)
    return len(items) / (time.perf_counter() - start)


def transport_ceiling(work: Path, messages: Messages) -> float:
    with broker(work / f"raw-{uuid.uuid4().hex[:6]}") as b:
        sub = [
            "mosquitto_sub", "-V", "5", "-p", str(b.port), "-i", "bench-raw", "-c",
            "-x", "3600", "-q", "1", "-t", "camwarden/v1/+/+/report",
        ]  # fmt: skip
        subprocess.run([*sub, "-W", "1"], capture_output=True, check=False, timeout=30)
        publish(b.port, messages)
        start = time.perf_counter()
        subprocess.run(
            [*sub, "-C", str(len(messages))],
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=RUN_TIMEOUT_S,
        )
        return len(messages) / (time.perf_counter() - start)


def start_collector(
    run_dir: Path, name: str, db_url: str, broker: str
) -> tuple[subprocess.Popen[bytes], int]:
    """``camwarden-server run`` on ``db_url``; ``broker``: the TOML of its broker sections.
    (process, its HTTP port); its log is ``<name>.log`` in ``run_dir``."""
    http_port = free_port()
    config = run_dir / f"{name}.toml"
    config.write_text(
        f'state_dir = "{run_dir}"\n[database]\nurl = "{db_url}"\n{broker}'
        f"[http]\nport = {http_port}\n[ingest]\nbatch_size = 500\n",
        encoding="utf-8",
    )
    with (run_dir / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return proc, http_port


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def collectors(
    work: Path,
    messages: Messages,
    agents: list[SimAgent],
    *,
    n: int,
    db_url: str,
    postgres: bool,
) -> Run:
    run_dir = work / f"run-{uuid.uuid4().hex[:8]}"
    with broker(run_dir / "broker") as b:
        repo = Repository.open(db_url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            repo.migrate()
            now = datetime.now(UTC)
            for a in agents:
                token = repo.create_token(
                    a.site, approved=True, ttl=timedelta(hours=1), uses=1, now=now
                )
                repo.enroll(
                    token, agent_id=a.agent_id, site=a.site, jwk=a.jwk,
                    kid=a.key.thumbprint(), hostname=None, now=now,
                )  # fmt: skip
            ids = [f"bench-collector-{i}" for i in range(n)]
            create_sessions(b.port, ids)
            publish(b.port, messages)
            load = load1()
            for cid in ids:
                broker_toml = f'[mqtt]\nport = {b.port}\nclient_id = "{cid}"\n'
                procs.append(start_collector(run_dir, cid, db_url, broker_toml)[0])
            assert b.proc is not None
            deadline = time.monotonic() + START_TIMEOUT_S
            while (first := stored(repo)) == 0:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the collectors stored nothing (did they start?)")
                time.sleep(0.01)
            meter = CpuMeter(lambda: [p.pid for p in procs], b.proc.pid, postgres)
            start = time.perf_counter()
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while (count := stored(repo)) < len(messages) and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            if count < len(messages):
                raise RuntimeError(f"only {count} of {len(messages)} stored")
            if count > len(messages):
                raise RuntimeError(f"{count} stored for {len(messages)} sent")
            return meter.stop((count - first) / elapsed, count - first, load)
        finally:
            stop_all(procs)
            repo.close()


# -- report -----------------------------------------------------------------------------------


def median(runs: list[Run]) -> Run:
    def med(attr: str) -> float:
        return statistics.median(float(getattr(r, attr)) for r in runs)

    return Run(*(med(f) for f in Run.__dataclass_fields__))


def describe(label: str, runs: list[Run]) -> Run:
    m = median(runs)
    spread = f"{min(r.rate for r in runs):.0f}-{max(r.rate for r in runs):.0f}"
    pg = f", postgres {m.postgres_us:4.0f}" if m.postgres_us else ""
    others = max(
        0.0, m.machine_busy - m.rate * (m.collector_us + m.broker_us + m.postgres_us) / 1e6
    )
    print(
        f"{label:38s} {m.rate:8.0f} msg/s  [{spread}]  CPU us/msg: collectors "
        f"{m.collector_us:4.0f}, broker {m.broker_us:3.0f}{pg}; machine busy "
        f"{m.machine_busy:.2f}/{CORES} cores, other jobs ~{others:.2f}"
        f"; load {m.load:.1f}"
    )
    return m


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _interrupted(signum: int, _frame: object) -> None:
    # unwind through the finally blocks: collectors and brokers stopped, schemas dropped
    raise SystemExit(f"interrupted by {signal.Signals(signum).name}")


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)  # SIGINT too: a background job starts with it ignored
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="reports per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("CAMWARDEN_BENCH_PG") or os.environ.get("CAMWARDEN_TEST_PG", ""),
        help="PostgreSQL SQLAlchemy URL (a database the bench may create schemas in)",
    )
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    pg_url = "" if args.no_pg else args.pg
    agents = [SimAgent(f"bench-{i:02d}") for i in range(AGENTS)]
    messages = [agents[i % AGENTS].report(cameras=2) for i in range(args.n)]
    size = sum(len(p) for _, p in messages) / args.n
    keys = {a.agent_id: a.key.public_key for a in agents}
    print(
        f"{args.n} reports from {AGENTS} agents, {size:.0f} bytes each; {CORES} cores; "
        f"median of {args.repeat} runs [min-max]; load {load1():.1f} at start"
    )
    backends = ["sqlite"] + (["postgresql"] if pg_url else [])
    with tempfile.TemporaryDirectory(prefix="camwarden-bench-") as tmp:
        work = Path(tmp)
        transport = statistics.median(transport_ceiling(work, messages) for _ in range(args.repeat))
        print(f"(a) transport ceiling, mosquitto_sub:    {transport:8.0f} msg/s")
        crypto = statistics.median(
            crypto_ceiling(messages, keys)  # type: ignore[arg-type]
            for _ in range(args.repeat)
        )
        print(f"(b) crypto ceiling, bare Ed25519 verify: {crypto:8.0f} msg/s (one thread)")
        results: dict[str, tuple[Run, Run]] = {}
        for kind in backends:
            measured = []
            for n, tag in ((1, "c"), (2, "d")):
                runs = []
                for _ in range(args.repeat):
                    with database(kind, work, pg_url) as url:
                        runs.append(
                            collectors(
                                work,
                                messages,
                                agents,
                                n=n,
                                db_url=url,
                                postgres=kind == "postgresql",
                            )
                        )
                label = f"({tag}) {'one collector' if n == 1 else 'two collectors'}, {kind}:"
                measured.append(describe(label, runs))
            results[kind] = (measured[0], measured[1])
        if not pg_url:
            print("(PostgreSQL skipped: no --pg URL, CAMWARDEN_BENCH_PG or CAMWARDEN_TEST_PG)")
    print()
    for kind, (one, two) in results.items():
        c_b, d_c = one.rate / crypto, two.rate / one.rate
        # no scheduling beats cores / CPU per message (collector + broker [+ database server]);
        # at (d)'s cost, which is lower than (c)'s: each process contends less for its GIL
        bound = CORES * 1e6 / (two.collector_us + two.broker_us + two.postgres_us)
        print(
            f"{kind:10s} (c)/(b) = {c_b:.3f} (target 0.7: {verdict(c_b >= 0.7)})   "
            f"(d)/(c) = {d_c:.3f} (target 1.5: {verdict(d_c >= 1.5)})   "
            f"(c)/(a) = {one.rate / transport:.3f}"
        )
        print(
            f"{'':10s} CPU bound for two collectors at (d)'s cost per message: {bound:.0f} msg/s"
            f" = {bound / one.rate:.2f} x (c) = {bound / crypto:.2f} x (b); both targets need"
            f" (d) >= 1.05 x (b): {'possible' if bound >= 1.05 * crypto else 'impossible'} on"
            " this machine at this cost (docs/adr/0008-ingest-throughput.md)"
        )


if __name__ == "__main__":
    main()
