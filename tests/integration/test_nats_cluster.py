"""A fleet on a 3-node NATS cluster (docs/adr/0032), everything real: the nodes with mutual TLS
(lab/cluster.py), three agents (issuer, outbox, the MQTT 3.1.1 publisher) each on its own node,
two collector processes (``camwarden-server run`` with ``[broker] kind = "nats"``) sharing one
PostgreSQL. Mid-stream one node is killed with SIGKILL, then one collector, and both are started
again: every message issued is stored exactly once, every command is published once and reaches
its agent (also one queued while its node was down), and each agent's chain verifies."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import select

from agent.config import MqttConfig, TlsFiles
from agent.messaging.issuer import Issuer
from agent.messaging.mqtt import Publisher
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from lab.cluster import NatsCluster
from protocol import Command, CommandResult, decode_collector_message
from protocol.envelope import unverified_payload
from protocol.keys import generate_private_key, import_public_jwk, public_jwk
from server import broker_roles
from server.config import load_config
from server.firmware.commands import new_command
from server.keys import command_key_path, load_or_create
from server.storage import Repository
from server.storage import commands as command_sql
from server.storage.firmware_models import CommandRecord
from server.storage.models import Message
from server.verify import verify_file
from tests.agent.messaging.test_outbox import heartbeat, hello, report
from tests.server.conftest import PG_URL, pg_schema
from tests.support.mosquitto import free_port
from tests.support.nats import pki_of, reload_commands, tls_cluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("nats-server") is None, reason="nats-server not installed"),
    pytest.mark.skipif(not PG_URL, reason="CAMWARDEN_TEST_PG is not set (make test exports it)"),
]

SITE = "s1"
AGENTS = ("agent-1", "agent-2", "agent-3")
PER_AGENT = 120  # messages each agent issues: a hello, then heartbeats and every 5th a report
INTERVAL_S = 0.08
DEADLINE_S = 60.0  # for any one phase; the whole test takes ~35 s on a loaded 2-core machine


@dataclass
class Agent:
    """A real agent's issuer and publisher; commands are answered as the executor answers
    them: ``accepted`` once, a command seen before refused without an answer."""

    agent_id: str
    key: OKPKey
    issuer: Issuer
    publisher: Publisher = field(init=False)
    commands: list[str] = field(default_factory=list)  # command ids, first arrival order
    repeated: int = 0  # commands received again (the scheduler resends unanswered ones)

    def on_command(self, jws: bytes) -> None:
        command = decode_collector_message(unverified_payload(jws))
        assert isinstance(command, Command)  # acks never reach on_command
        if command.command_id in self.commands:
            self.repeated += 1
            return
        self.commands.append(command.command_id)
        self.issuer.issue(
            lambda h: CommandResult(**h.fields(), command_id=command.command_id, status="accepted")
        )
        self.publisher.wake()


def _agent(cluster: NatsCluster, tmp: Path, agent_id: str, node: int, collector: OKPKey) -> Agent:
    key = generate_private_key()
    outbox = Outbox(tmp / agent_id / "outbox", 1 << 26, 10_000)
    issuer = Issuer(agent_id, SITE, key, StateStore(tmp / agent_id), outbox)
    pki = pki_of(cluster)
    agent = Agent(agent_id, key, issuer)
    config = MqttConfig(
        port=cluster.nodes[node].mqtt_port,
        protocol="3.1.1",
        keepalive_s=5,
        reconnect_min_s=1,
        reconnect_max_s=2,
        ack_timeout_s=3.0,
        ack_timeout_max_s=6.0,
        tls=True,
    )
    agent.publisher = Publisher(
        outbox,
        agent_id=agent_id,
        site=SITE,
        config=config,
        collector_key=import_public_jwk(public_jwk(collector)),
        on_command=agent.on_command,
        tls=TlsFiles(ca=pki / "ca.crt", cert=pki / f"{agent_id}.crt", key=pki / f"{agent_id}.key"),
    )
    return agent


class Collectors:
    """``camwarden-server run`` processes on the cluster; ``kill`` is SIGKILL."""

    def __init__(self, tmp: Path, cluster: NatsCluster, db_url: str, count: int) -> None:
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.ports = [0] * count
        self.configs: list[Path] = []
        pki = pki_of(cluster)
        servers = json.dumps([u.replace("nats://", "tls://") for u in cluster.urls])
        reload = json.dumps(reload_commands(cluster))
        for i in range(count):
            state = tmp / f"collector-{i + 1}"
            state.mkdir()
            path = state / "server.toml"
            path.write_text(
                f'state_dir = "{state}"\n'
                f"[database]\nurl = {json.dumps(db_url)}\n"
                f'[mqtt]\nclient_id = "collector-{i + 1}"\ntls = true\n'
                f'ca_file = "{pki}/ca.crt"\ncert_file = "{pki}/collector.crt"\n'
                f'key_file = "{pki}/collector.key"\n'
                f'[broker]\nkind = "nats"\nservers = {servers}\nack_wait_s = 3\n'
                "max_bytes = 67108864\n"
                f'auth_file = "{cluster.auth_file}"\nreload_commands = {reload}\n'
                "[ingest]\nbatch_latency_s = 0.05\n"
                "[firmware]\nscheduler_interval_s = 0.3\nresend_after_s = 2.0\n"
                "[alerts]\nenabled = false\n[retention]\nenabled = false\n"
            )
            self.configs.append(path)
        key = load_or_create(tmp / "collector-1")  # one command key, as a fleet's collectors share
        for i in range(1, count):
            shutil.copy(
                command_key_path(tmp / "collector-1"), command_key_path(tmp / f"collector-{i + 1}")
            )
        self.key = key

    def start(self, i: int) -> None:
        """Start collector ``i`` and wait until it is healthy; its HTTP port is picked now,
        and again if another process took it meanwhile (the ephemeral ports are busy here)."""
        for _ in range(5):
            self.ports[i] = free_port()
            log = (self.configs[i].parent / "collector.log").open("ab")
            proc = subprocess.Popen(  # our own CLI
                [
                    *(sys.executable, "-m", "server", "--config", str(self.configs[i])),
                    *("--set", f"http.port={self.ports[i]}", "run"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.procs[i] = proc
            deadline = time.monotonic() + DEADLINE_S
            while proc.poll() is None and time.monotonic() < deadline:
                if self.healthy(i):
                    return
                time.sleep(0.2)
            self.kill(i)
        raise AssertionError(f"collector {i + 1} did not start ({self.configs[i].parent})")

    def healthy(self, i: int) -> bool:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.ports[i]}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            proc.kill()
            proc.wait()
            self.procs[i] = None

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(i)
                self.procs[i] = None


async def until(
    condition: Callable[[], bool], what: str, state: Callable[[], object] = lambda: ""
) -> None:
    """Poll ``condition``; on a timeout the message names ``what`` and shows ``state()``."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_S:g} s: {what} {state()}")
        await asyncio.sleep(0.1)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema() as url:
        yield url


def _queue_commands(repo: Repository) -> list[str]:
    now = datetime.now(UTC)
    ids = []
    with repo.engine.begin() as conn:
        for agent_id in AGENTS:
            cmd = new_command(
                "firmware.apply",
                agent_id=agent_id,
                site=SITE,
                camera_id="cam-1",
                params={},
                now=now,
                ttl=timedelta(hours=1),
            )
            command_sql.queue(conn, cmd, issued_by="test", rollout_id=None, now=now)
            ids.append(cmd.command_id)
    return ids


async def test_a_fleet_survives_a_node_and_a_collector_killed_mid_stream(
    tmp_path: Path, pg_url: str
) -> None:
    started = time.monotonic()
    cluster = tls_cluster(tmp_path, AGENTS, approved=[])
    with ExitStack() as stack:
        cluster.start()
        stack.callback(cluster.stop)
        repo = Repository.open(pg_url)
        stack.callback(repo.close)
        repo.migrate()
        collectors = Collectors(tmp_path, cluster, pg_url, 2)
        stack.callback(collectors.stop)
        # approving an agent gives it its user on every node, as the CLI and the API do
        repo.status_listeners += broker_roles.listeners(
            load_config(collectors.configs[0]), broker_roles.approved_agents(repo)
        )
        agents = [
            _agent(cluster, tmp_path, agent_id, node, collectors.key)
            for node, agent_id in enumerate(AGENTS)
        ]
        for agent in agents:  # approved by its token: the listener gives it its user
            token = repo.create_token(
                SITE, approved=True, ttl=timedelta(hours=1), uses=1, now=datetime.now(UTC)
            )
            key = agent.key
            repo.enroll(
                token,
                agent_id=agent.agent_id,
                site=SITE,
                jwk=public_jwk(key),
                kid=key.thumbprint(),
                hostname=None,
                now=datetime.now(UTC),
            )
        for i in range(2):
            collectors.start(i)

        tasks = [asyncio.create_task(a.publisher.run()) for a in agents]

        async def issue(agent: Agent) -> None:
            agent.issuer.issue(hello)
            for i in range(1, PER_AGENT):
                agent.issuer.issue(report if i % 5 == 0 else heartbeat)
                agent.publisher.wake()
                await asyncio.sleep(INTERVAL_S)

        issuing = [asyncio.create_task(issue(a)) for a in agents]

        def stored() -> int:
            return repo.count(Message)

        await until(lambda: stored() >= 40, "the first messages stored")
        cluster.kill(1)  # agent-2's node
        mark = stored()
        await until(lambda: stored() >= mark + 20, "storing on two nodes")
        collectors.kill(0)
        first = _queue_commands(repo)  # agent-2's node is down: sent again until it answers
        mark = stored()
        await until(lambda: stored() >= mark + 20, "storing with one collector")
        cluster.start_node(1)
        collectors.start(0)
        await asyncio.gather(*issuing)
        await until(
            lambda: all(a.publisher.drained for a in agents),
            "every outbox drained",
            lambda: [(a.agent_id, a.publisher.acked, a.publisher.republished) for a in agents],
        )
        assert all(collectors.healthy(i) for i in range(2))
        second = _queue_commands(repo)
        await until(lambda: all(len(a.commands) >= 2 for a in agents), "the commands delivered")
        await until(lambda: all(a.publisher.drained for a in agents), "the answers stored")
        await until(lambda: command_sql.pending_work(repo.engine)[0] == {"accepted"}, "applied")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        for agent, one, two in zip(agents, first, second, strict=True):
            assert agent.commands == [one, two], agent.agent_id
        issued = PER_AGENT + 2  # and the two answers
        with repo.engine.connect() as conn:
            statuses = conn.execute(select(CommandRecord.status)).scalars().all()
            assert sorted(statuses) == ["accepted"] * 6
            for agent in agents:
                rows = conn.execute(
                    select(Message.seq, Message.jws)
                    .where(Message.agent_id == agent.agent_id)
                    .order_by(Message.seq)
                ).all()
                assert [r.seq for r in rows] == list(range(1, issued + 1)), agent.agent_id
                lines = "\n".join(r.jws for r in rows).encode()
                summary = verify_file(lines, agent.issuer._key)
                assert summary.messages == issued
                assert summary.reports == (PER_AGENT - 1) // 5
    print(f"\nfleet on a 3-node NATS cluster: {time.monotonic() - started:.1f} s")
