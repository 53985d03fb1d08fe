"""Fleet simulator: thousands of simulated agents on real broker connections (prints figures).

Every simulated agent has its own Ed25519 key and its own MQTT connection (MQTT 3.1.1, clean
session, QoS 1), and sends real signed heartbeats and status reports of ``--cameras-per-report``
audited cameras, made with protocol's envelope and message types (``tests.support.agents``). The
agents are registered and approved in a fresh collector database by one bulk insert; the
collector is the real ``camwarden-server run`` process. The whole fleet sends ``--rate``
messages per second (round-robin over the agents) for ``--duration`` seconds, then waits for the
last acknowledgements.

Like a real agent, a simulated one keeps every message until the collector's ack names its seq,
and republishes what is still unacknowledged, in seq order, after a reconnection and when an ack
is ``--ack-timeout`` seconds late (the wait doubling per attempt). The ack's signature is not
checked (a real agent checks it), to leave the CPU to the parts measured. Measured:

- latency, issued (the message's ``issued_at``, just before signing) to acknowledged (the
  collector's ``Ack`` reached the agent). The collector acks after its commit, so this is
  issued-to-stored plus the ack's trip back: an upper bound of the time to the database;
- lost: messages issued and not in the database at the end (the database is counted, not the
  acks), and refused: messages the collector quarantined for any reason but being a duplicate
  (both must be 0; a message republished after its ack was lost is a duplicate, acknowledged
  and counted apart);
- CPU microseconds per stored message of the broker processes, the collectors, the PostgreSQL
  server processes serving the collectors' connections (found by their application_name; the
  server's background writers are not counted) and this simulator, read from /proc/<pid>/stat
  before, every second and after, with how busy the whole machine was and its load; the same
  groups' CPU over ``--idle`` seconds after the last ack, every agent connected and silent;
- the database's growth per stored message, and the broker's memory at the end.

``--broker cluster`` runs the 3-node NATS cluster of ``lab.cluster`` (docs/adr/0032; the
collectors take ``[broker] kind = "nats"``) first and then a single
Mosquitto with the same options, and prints both side by side; ``--kill-node-at S`` kills one
broker node ``S`` seconds into the run (with a single Mosquitto: SIGKILL and a restart on the
same port after ``--outage`` seconds, its persistence as last saved).

    python -m bench.fleet --agents 5000 --rate 200 --duration 120 [--pg URL | --sqlite]

The PostgreSQL URL defaults to $CAMWARDEN_BENCH_PG, then $CAMWARDEN_TEST_PG (as exported by
scripts/with-services.sh); each run gets a throwaway schema, dropped afterwards. Without one the
collector stores into SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiomqtt
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import (
    CORES,
    database,
    load1,
    machine_ticks,
    process_cpu,
    start_collector,
    stop_all,
)
from lab.broker import Mosquitto
from lab.cluster import NatsCluster
from protocol import Ack, DuplicateMessage, decode_collector_message, topic
from protocol.envelope import unverified_payload
from server.storage import Repository
from server.storage.models import Agent, Message, Quarantine
from tests.support.agents import SimAgent

SITES = 50  # agents are spread over this many sites, as a ministry's fleet would be
CONNECT_CONCURRENCY = 64  # connections opened at once (the broker's listen backlog is finite)
CONNECT_TIMEOUT_S = 60.0
COLLECTOR_START_S = 120.0
REGISTER_CHUNK = 1000
FD_MARGIN = 256  # descriptors besides one per agent: database, logs, the loop's own
KEEPALIVE_S = 60
CLUSTER_NODES = 3
# an agent with its default intervals (agent.config.Intervals) sends a heartbeat every 60 s and
# a report every 900 s: one report in 16 messages, 1/60 + 1/900 = 0.0178 messages/s per agent
REPORT_SHARE = 1 / 16
ACK_TIMEOUT_MAX_S = 900.0  # agent.config: ack_timeout_max_s


# -- the broker under test ------------------------------------------------------------------


class BrokerTarget(Protocol):
    name: str

    def endpoints(self) -> list[tuple[str, int]]:
        """Where agents and collectors connect, node by node."""
        ...

    def collector_broker(self, name: str, index: int) -> str:
        """The broker sections of collector ``index``'s config (TOML)."""
        ...

    def pids(self) -> list[int]: ...

    def kill_node(self, outage_s: float) -> str:
        """Kill one node (and bring it back if it is the only one); what was done."""
        ...

    def stop(self) -> None: ...


class SingleMosquitto:
    name = "mosquitto"

    def __init__(self, workdir: Path) -> None:
        # as packaging/mosquitto/camwarden.conf would be tuned for a fleet: no connection cap,
        # a listen backlog for reconnection storms, queued messages bounded by bytes only
        self._broker = Mosquitto(workdir, extra="max_connections -1")
        self._broker.start()

    def endpoints(self) -> list[tuple[str, int]]:
        return [(self._broker.host, self._broker.port)]

    def collector_broker(self, name: str, index: int) -> str:
        host, port = self._broker.host, self._broker.port
        return f'[mqtt]\nhost = "{host}"\nport = {port}\nclient_id = "{name}"\n'

    def pids(self) -> list[int]:
        return [self._broker.proc.pid] if self._broker.proc is not None else []

    def kill_node(self, outage_s: float) -> str:
        proc = self._broker.proc
        if proc is None:
            return "no broker to kill"
        proc.kill()
        proc.wait()
        self._broker.proc = None
        time.sleep(outage_s)
        self._broker.start()
        return f"mosquitto killed (SIGKILL) and restarted after {outage_s:.0f} s"

    def stop(self) -> None:
        self._broker.stop()


class Cluster:
    """A NATS cluster with JetStream (docs/adr/0032): agents spread over its nodes' MQTT
    listeners, collectors on its NATS ports; the node killed is one the collectors are not
    connected to first."""

    name = f"nats, {CLUSTER_NODES} nodes"

    def __init__(self, workdir: Path) -> None:
        self._cluster = NatsCluster(workdir, size=CLUSTER_NODES, max_file_store="8G")
        self._cluster.start()

    def endpoints(self) -> list[tuple[str, int]]:
        return [(node.host, node.mqtt_port) for node in self._cluster.nodes]

    def collector_broker(self, name: str, index: int) -> str:
        urls = self._cluster.urls
        ordered = urls[index % len(urls) :] + urls[: index % len(urls)]
        listed = ", ".join(f'"{u}"' for u in ordered)
        return f'[broker]\nkind = "nats"\nservers = [{listed}]\n[mqtt]\nclient_id = "{name}"\n'

    def pids(self) -> list[int]:
        return [n.proc.pid for n in self._cluster.nodes if n.proc is not None]

    def kill_node(self, outage_s: float) -> str:
        victim = len(self._cluster.nodes) - 1
        self._cluster.kill(victim)
        time.sleep(outage_s)
        started = time.monotonic()
        self._cluster.start_node(victim)
        return (
            f"node {victim} of {len(self._cluster.nodes)} killed (SIGKILL), started again after"
            f" {outage_s:.0f} s, healthy {time.monotonic() - started:.1f} s later"
        )

    def stop(self) -> None:
        self._cluster.stop()


def open_target(kind: str, workdir: Path) -> BrokerTarget:
    return SingleMosquitto(workdir) if kind == "mosquitto" else Cluster(workdir)


# -- the collector's database -----------------------------------------------------------------


def register(repo: Repository, agents: Sequence[SimAgent]) -> None:
    """Enroll and approve every agent in one transaction (the fleet's fast bulk step)."""
    now = datetime.now(UTC)
    rows = [
        {
            "agent_id": a.agent_id,
            "site": a.site,
            "kid": a.key.thumbprint(),
            "public_jwk": a.jwk,
            "hostname": a.agent_id,
            "status": "approved",
            "enrolled_at": now,
            "updated_at": now,
        }
        for a in agents
    ]
    with repo.engine.begin() as conn:
        for start in range(0, len(rows), REGISTER_CHUNK):
            conn.execute(insert(Agent), rows[start : start + REGISTER_CHUNK])


def stored_count(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Message)).scalar_one())


def quarantined(repo: Repository) -> dict[str, int]:
    """Quarantined messages by reason (a republished message already stored is a duplicate)."""
    with repo.engine.connect() as conn:
        rows = conn.execute(select(Quarantine.reason, func.count()).group_by(Quarantine.reason))
        return {str(reason): int(n) for reason, n in rows}


def database_bytes(repo: Repository) -> int:
    """The collector database's size on disk: tables, their indexes and TOAST."""
    with repo.engine.connect() as conn:
        if repo.engine.dialect.name == "sqlite":
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            return int(pages) * int(conn.execute(text("PRAGMA page_size")).scalar_one())
        return int(
            conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar_one()
        )


def wait_healthy(
    procs: Sequence[subprocess.Popen[bytes]], http_ports: Sequence[int], run_dir: Path
) -> None:
    """Until every collector's /healthz answers 200 (connected to the broker, subscribed)."""
    deadline = time.monotonic() + COLLECTOR_START_S
    pending = list(zip(procs, http_ports, strict=True))
    while pending:
        proc, port = pending[0]
        if proc.poll() is not None:
            logs = "".join(p.read_text()[-2000:] for p in sorted(run_dir.glob("*.log")))
            raise RuntimeError(f"a collector exited with {proc.returncode} while starting\n{logs}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                if r.status == 200:
                    pending.pop(0)
                    continue
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"a collector was not healthy within {COLLECTOR_START_S:.0f} s")
        time.sleep(0.2)


# -- the simulated agents ---------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    issued: int = 0
    acked: int = 0
    republished: int = 0
    reconnects: int = 0
    behind_s: float = 0.0  # how far the sender fell behind its schedule, at worst
    latencies: list[float] = field(default_factory=list)  # seconds, issued to acked
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # every issued one acked


@dataclass(slots=True)
class Entry:
    """A message not yet acknowledged, as an agent's outbox keeps it."""

    topic: str
    token: bytes
    issued: float  # wall-clock seconds (the signed issued_at)
    due: float  # monotonic: published again if no ack by then
    attempts: int = 1


class FleetAgent:
    """One simulated agent: its signer, its connection and the messages not yet acknowledged."""

    def __init__(self, sim: SimAgent, stats: Stats, ack_timeout_s: float) -> None:
        self.sim = sim
        self.stats = stats
        self.ack_timeout_s = ack_timeout_s
        self.pending: dict[int, Entry] = {}
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    async def run(
        self, endpoints: list[tuple[str, int]], gate: asyncio.Semaphore, index: int
    ) -> None:
        """Stay connected (to the next node when one fails) until cancelled."""
        attempt = index
        while True:
            host, port = endpoints[attempt % len(endpoints)]
            attempt += 1
            client = aiomqtt.Client(
                host,
                port,
                identifier=self.sim.agent_id,
                protocol=aiomqtt.ProtocolVersion.V311,
                clean_session=True,
                keepalive=KEEPALIVE_S,
                timeout=CONNECT_TIMEOUT_S,
                max_inflight_messages=100,
            )
            try:
                async with gate:
                    await client.__aenter__()
                try:
                    await client.subscribe(topic(self.sim.site, self.sim.agent_id, "cmd"), qos=1)
                    self.client = client
                    self.connected.set()
                    await self._republish()
                    async for message in client.messages:
                        self._acked(message.payload)
                finally:
                    self.connected.clear()
                    self.client = None
                    await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass
            self.stats.reconnects += 1
            await asyncio.sleep(1.0)

    def _acked(self, payload: object) -> None:
        if not isinstance(payload, bytes):
            return
        # a real agent verifies the ack's signature against the pinned collector key; the
        # simulator reads it unverified, to leave its CPU to the components measured
        ack = decode_collector_message(unverified_payload(payload))
        if not isinstance(ack, Ack):
            return
        now = time.time()
        for first, last in ack.ranges:
            for seq in range(first, last + 1):
                sent = self.pending.pop(seq, None)
                if sent is not None:
                    self.stats.acked += 1
                    self.stats.latencies.append(now - sent.issued)
        if self.stats.acked == self.stats.issued:
            self.stats.settled.set()

    async def _republish(self, only_due: bool = False) -> None:
        """Publish again, in seq order, everything unacknowledged (or only what is due): as the
        agent does after a reconnection and when an ack is late (doubling its wait each time,
        up to ACK_TIMEOUT_MAX_S, as ``agent.messaging.mqtt``)."""
        now = time.monotonic()
        for seq in sorted(self.pending):
            entry = self.pending.get(seq)
            if entry is None or (only_due and entry.due > now):
                continue
            self.stats.republished += 1
            entry.due = now + min(self.ack_timeout_s * 2**entry.attempts, ACK_TIMEOUT_MAX_S)
            entry.attempts += 1
            await self._publish(entry.topic, entry.token)

    async def retry_due(self) -> None:
        if self.client is not None and self.pending:
            await self._republish(only_due=True)

    async def _publish(self, name: str, token: bytes) -> None:
        client = self.client
        if client is None:
            return  # kept in pending: republished on reconnection
        # a dropped connection: the run loop reconnects and republishes
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(name, token, qos=1)

    async def send(self, report: bool, cameras: int) -> None:
        when = datetime.now(UTC)
        name, token = (
            self.sim.report(cameras, issued_at=when) if report else self.sim.heartbeat(when)
        )
        due = time.monotonic() + self.ack_timeout_s
        self.pending[self.sim.seq] = Entry(name, token, when.timestamp(), due)
        self.stats.issued += 1
        self.stats.settled.clear()
        await self._publish(name, token)


# -- one run against one broker ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    agents: int
    rate: float
    duration: float
    cameras: int
    report_share: float
    collectors: int
    kill_at: float | None
    outage: float
    drain: float
    idle: float
    ack_timeout: float
    pg_url: str


@dataclass(frozen=True, slots=True)
class Figures:
    broker: str
    connected: int
    connect_s: float
    issued: int
    stored: int
    quarantined: dict[str, int]
    acked: int
    republished: int
    reconnects: int
    achieved_rate: float
    behind_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    usage: Usage  # while sending and draining
    idle: Usage  # afterwards, every agent connected and silent
    db_bytes_per_msg: float
    broker_rss_mib: float  # at the end, all nodes
    load_start: float
    load_end: float
    event: str

    @property
    def lost(self) -> int:
        return self.issued - self.stored

    @property
    def duplicates(self) -> int:
        return self.quarantined.get(DuplicateMessage.reason, 0)

    @property
    def refused(self) -> int:
        """Quarantined for any reason but being a duplicate (must be 0)."""
        return sum(self.quarantined.values()) - self.duplicates


def raise_fd_limit(agents: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = agents + FD_MARGIN
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(
            f"{agents} agents need {need} file descriptors; the hard limit is {hard} "
            "(raise it: ulimit -Hn, or LimitNOFILE= for a service; docs/sizing.md)"
        )
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


Pids = Callable[[], list[int]]
GROUPS = ("broker", "collectors", "postgres", "simulator")


class Meter:
    """CPU seconds of groups of processes, and how busy the whole machine was, between the start
    and ``stop``. Processes come and go (a restarted broker node, a new database connection):
    ``poll`` every second keeps the last reading of every pid seen, and a pid first seen after
    the start counts from zero."""

    def __init__(self, groups: dict[str, Pids]) -> None:
        self._groups = groups
        self._first: dict[int, float] = {}
        self._last: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.poll()
        self._first = {pid: cpu for seen in self._last.values() for pid, cpu in seen.items()}
        self._ticks = machine_ticks()
        self._started = time.monotonic()

    def poll(self) -> None:
        for name, pids in self._groups.items():
            for pid in pids():
                cpu = process_cpu(pid)
                if cpu:
                    self._last[name][pid] = cpu

    def stop(self) -> Usage:
        self.poll()
        ticks = machine_ticks()
        busy = (ticks[0] - self._ticks[0]) / max(1, ticks[1] - self._ticks[1]) * CORES
        cpu = {
            name: sum(cpu - self._first.get(pid, 0.0) for pid, cpu in seen.items())
            for name, seen in self._last.items()
        }
        return Usage(cpu, time.monotonic() - self._started, busy)


@dataclass(frozen=True, slots=True)
class Usage:
    cpu: dict[str, float]  # CPU seconds per group of processes
    elapsed: float  # seconds
    busy: float  # busy cores of the whole machine

    def cores(self, group: str) -> float:
        return self.cpu.get(group, 0.0) / max(1e-9, self.elapsed)

    def per_message(self, group: str, stored: int, idle: Usage | None = None) -> float:
        """CPU microseconds per stored message; less what the group spends idle, if given."""
        spent = self.cpu.get(group, 0.0)
        if idle is not None:
            spent -= idle.cores(group) * self.elapsed
        return 1e6 * spent / max(1, stored)


async def keep_polling(meter: Meter) -> None:
    while True:
        await asyncio.sleep(1.0)
        meter.poll()


def rss_bytes(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * resource.getpagesize()


def backends(repo: Repository, application: str) -> Pids:
    """The PostgreSQL server processes serving the connections named ``application``."""

    def pids() -> list[int]:
        with repo.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
                {"app": application},
            )
            return [int(pid) for (pid,) in rows]

    return pids


async def connect_all(
    fleet: list[FleetAgent], endpoints: list[tuple[str, int]]
) -> tuple[list[asyncio.Task[None]], int, float]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    start = time.monotonic()
    tasks = [asyncio.create_task(a.run(endpoints, gate, i)) for i, a in enumerate(fleet)]
    deadline = start + CONNECT_TIMEOUT_S + len(fleet) / 50
    while time.monotonic() < deadline:
        up = sum(a.connected.is_set() for a in fleet)
        if up == len(fleet):
            break
        await asyncio.sleep(0.2)
    return tasks, sum(a.connected.is_set() for a in fleet), time.monotonic() - start


async def drive(
    fleet: list[FleetAgent], options: Options, target: BrokerTarget, stats: Stats
) -> tuple[float, str]:
    """Issue at the configured rate for the duration; (achieved rate, what the kill did)."""
    loop = asyncio.get_running_loop()
    sends: set[asyncio.Task[None]] = set()
    killer: asyncio.Future[str] | None = None
    start = time.monotonic()
    total = int(options.rate * options.duration)
    reports = 0.0
    for i in range(total):
        due = start + i / options.rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            stats.behind_s = max(stats.behind_s, -wait)
        if killer is None and options.kill_at is not None and due - start >= options.kill_at:
            killer = loop.run_in_executor(None, target.kill_node, options.outage)
        reports += options.report_share
        report = reports >= 1.0
        if report:
            reports -= 1.0
        task = asyncio.create_task(fleet[i % len(fleet)].send(report, options.cameras))
        sends.add(task)
        task.add_done_callback(sends.discard)
    elapsed = time.monotonic() - start
    if sends:
        await asyncio.wait(sends)
    event = await killer if killer is not None else ""
    return total / elapsed if elapsed > 0 else 0.0, event


async def wait_drained(stats: Stats, drain_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(drain_s):
            await stats.settled.wait()


async def retry_late(fleet: list[FleetAgent]) -> None:
    while True:
        await asyncio.sleep(1.0)
        for agent in fleet:
            if agent.pending:
                await agent.retry_due()


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _closed_socket_quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """While thousands of connections close at once, paho may ask the loop to watch a socket
    it has just closed (EBADF): nothing to report then; anything else still is."""
    error = context.get("exception")
    if not (isinstance(error, OSError) and error.errno == errno.EBADF):
        loop.default_exception_handler(context)


async def simulate(
    options: Options,
    sims: list[SimAgent],
    target: BrokerTarget,
    repo: Repository,
    groups: dict[str, Pids],
) -> Figures:
    stats = Stats()
    fleet = [FleetAgent(s, stats, options.ack_timeout) for s in sims]
    tasks, connected, connect_s = await connect_all(fleet, target.endpoints())
    tasks.append(asyncio.create_task(retry_late(fleet)))
    try:
        if connected < len(fleet):
            raise RuntimeError(f"only {connected} of {len(fleet)} agents connected")
        load_start = load1()
        meter = Meter(groups)
        size_before = database_bytes(repo)
        tasks.append(asyncio.create_task(keep_polling(meter)))
        rate, event = await drive(fleet, options, target, stats)
        await wait_drained(stats, options.drain)
        # acks can lag the commit: the database is the judge of what was stored
        stored = stored_count(repo)
        usage = meter.stop()
        # idle afterwards, in the steady state (a collector just started is still busy with
        # its first background jobs): every agent still connected, nothing sent
        idle_meter = Meter(groups)
        await asyncio.sleep(options.idle)
        idle = idle_meter.stop()
        grown = database_bytes(repo) - size_before
        rss = sum(rss_bytes(pid) for pid in target.pids()) / 2**20
    finally:
        asyncio.get_running_loop().set_exception_handler(_closed_socket_quiet)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lat = sorted(stats.latencies)
    return Figures(
        broker=target.name,
        connected=connected,
        connect_s=connect_s,
        issued=stats.issued,
        stored=stored,
        quarantined=quarantined(repo),
        acked=stats.acked,
        republished=stats.republished,
        reconnects=stats.reconnects,
        achieved_rate=rate,
        behind_s=stats.behind_s,
        p50_ms=1e3 * percentile(lat, 50),
        p99_ms=1e3 * percentile(lat, 99),
        max_ms=1e3 * (lat[-1] if lat else float("nan")),
        usage=usage,
        idle=idle,
        db_bytes_per_msg=grown / max(1, stored),
        broker_rss_mib=rss,
        load_start=load_start,
        load_end=load1(),
        event=event,
    )


@contextmanager
def collector_processes(
    run_dir: Path, db_url: str, target: BrokerTarget, n: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    ports = []
    try:
        for i in range(n):
            name = f"fleet-collector-{i}"
            proc, http = start_collector(run_dir, name, db_url, target.collector_broker(name, i))
            procs.append(proc)
            ports.append(http)
        wait_healthy(procs, ports, run_dir)
        yield procs
    finally:
        stop_all(procs)


def run_once(kind: str, options: Options, work: Path) -> Figures:
    run_dir = work / f"{kind}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True)
    backend = "postgresql" if options.pg_url else "sqlite"
    with database(backend, run_dir, options.pg_url) as url:
        repo = Repository.open(url)
        target = open_target(kind, run_dir / "broker")
        try:
            repo.migrate()
            sims = [
                SimAgent(f"sim-{i:05d}", site=f"site-{i % SITES:02d}")
                for i in range(options.agents)
            ]
            register(repo, sims)
            groups: dict[str, Pids] = {"broker": target.pids, "simulator": lambda: [os.getpid()]}
            collector_url = url
            if options.pg_url:
                # the collectors' connections by name: the server may serve others' work too
                application = f"camwarden-fleet-{uuid.uuid4().hex[:8]}"
                collector_url = f"{url}&application_name={application}"
                groups["postgres"] = backends(repo, application)
            with collector_processes(run_dir, collector_url, target, options.collectors) as procs:
                groups["collectors"] = lambda: [p.pid for p in procs]
                figures = asyncio.run(simulate(options, sims, target, repo, groups))
        finally:
            target.stop()
            repo.close()
    return figures


# -- report -----------------------------------------------------------------------------------

ROWS: list[tuple[str, str]] = [
    ("agents connected (time to connect)", "{connected} ({connect_s:.1f} s)"),
    ("issued, achieved rate", "{issued} ({achieved_rate:.1f} msg/s, behind {behind_s:.1f} s)"),
    ("stored / lost / refused / duplicates", "{stored} / {lost} / {refused} / {duplicates}"),
    ("acked, republished, reconnects", "{acked}, {republished}, {reconnects}"),
    ("latency issued->acked p50 / p99 / max", "{p50_ms:.0f} / {p99_ms:.0f} / {max_ms:.0f} ms"),
    *(
        (f"CPU us/msg {group} (above idle)", f"{{{group}_us:.0f}} ({{{group}_above:.0f}})")
        for group in GROUPS
    ),
    *((f"CPU idle, cores: {group}", f"{{{group}_idle:.3f}}") for group in GROUPS[:3]),
    ("database growth per message", "{db_bytes_per_msg:.0f} bytes"),
    ("broker memory (RSS, all nodes) at the end", "{broker_rss_mib:.0f} MiB"),
    ("machine busy (cores), load start->end",
     "{busy:.2f}/{cores}, {load_start:.1f}->{load_end:.1f}"),
]  # fmt: skip


def report(results: list[Figures]) -> None:
    width = max(len(label) for label, _ in ROWS) + 2
    print(f"{'':{width}s}" + "".join(f"{r.broker:>32s}" for r in results))
    for label, fmt in ROWS:
        cells = []
        for r in results:
            values = {f: getattr(r, f) for f in Figures.__dataclass_fields__}
            for g in GROUPS:
                values[f"{g}_us"] = r.usage.per_message(g, r.stored)
                values[f"{g}_above"] = r.usage.per_message(g, r.stored, r.idle)
                values[f"{g}_idle"] = r.idle.cores(g)
            values.update(lost=r.lost, refused=r.refused, duplicates=r.duplicates)
            cells.append(fmt.format(**values, cores=CORES, busy=r.usage.busy))
        print(f"{label:{width}s}" + "".join(f"{c:>32s}" for c in cells))
    for r in results:
        if r.event:
            print(f"{r.broker}: {r.event}")
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.quarantined.items())) or "none"
        print(f"{r.broker}: lost {r.lost}, refused {r.refused} (quarantined: {reasons})")


def _interrupted(signum: int, _frame: object) -> None:
    # unwind through the finally blocks: collectors and brokers stopped, schemas dropped
    raise SystemExit(f"interrupted by {signal.Signals(signum).name}")


def parse(argv: Sequence[str] | None = None) -> tuple[str, Options]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--agents", type=int, default=1000, help="simulated agents")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second, all")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--cameras-per-report", type=int, default=20, dest="cameras")
    parser.add_argument(
        "--report-share",
        type=float,
        default=REPORT_SHARE,
        help="share of reports, the rest heartbeats (default: the agent's intervals)",
    )
    parser.add_argument("--collectors", type=int, default=1, help="collector processes")
    parser.add_argument("--broker", choices=["mosquitto", "cluster"], default="mosquitto")
    parser.add_argument(
        "--kill-node-at", type=float, default=None, dest="kill_at", help="seconds into the run"
    )
    parser.add_argument(
        "--outage", type=float, default=5.0, help="seconds a killed single broker stays down"
    )
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds to wait for the last acks"
    )
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds measured with every agent silent"
    )
    parser.add_argument(
        "--ack-timeout", type=float, default=60.0, help="seconds before an agent republishes"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("CAMWARDEN_BENCH_PG") or os.environ.get("CAMWARDEN_TEST_PG", ""),
        help="PostgreSQL SQLAlchemy URL (a database the bench may create schemas in)",
    )
    parser.add_argument("--sqlite", action="store_true", help="store into SQLite")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.rate <= 0 or args.duration <= 0 or args.cameras < 0:
        parser.error("--agents, --rate and --duration must be positive")
    if args.idle < 1:
        parser.error("--idle is at least 1 second")
    if not 0.0 <= args.report_share <= 1.0:
        parser.error("--report-share is between 0 and 1")
    return args.broker, Options(
        agents=args.agents,
        rate=args.rate,
        duration=args.duration,
        cameras=args.cameras,
        report_share=args.report_share,
        collectors=args.collectors,
        kill_at=args.kill_at,
        outage=args.outage,
        drain=args.drain,
        idle=args.idle,
        ack_timeout=args.ack_timeout,
        pg_url="" if args.sqlite else args.pg,
    )


def main(argv: Sequence[str] | None = None) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)  # SIGINT too: a background job starts with it ignored
    kind, options = parse(argv)
    limit = raise_fd_limit(options.agents)
    probe = SimAgent("size-probe")
    report_size = len(probe.report(options.cameras)[1])
    beat_size = len(probe.heartbeat()[1])
    print(
        f"fleet: {options.agents} agents, {options.rate:g} msg/s for {options.duration:g} s "
        f"({options.report_share:.1%} reports of {options.cameras} cameras, {report_size} bytes;"
        f" heartbeats {beat_size} bytes); {options.collectors} collector(s) on "
        f"{'PostgreSQL' if options.pg_url else 'SQLite'}; {CORES} cores; open files {limit};"
        f" load {load1():.1f} at start"
    )
    kinds = [kind] if kind == "mosquitto" else [kind, "mosquitto"]
    with tempfile.TemporaryDirectory(prefix="camwarden-fleet-") as tmp:
        results = [run_once(k, options, Path(tmp)) for k in kinds]
    report(results)


if __name__ == "__main__":
    main()
