"""A survey end to end with the real agent's command path: the collector (real database, real
Mosquitto) declares a provider's /24, keeps an opt-out and an exclusion, and queues one signed
``survey.sweep`` per shard; two agents' real executors (signature, ``[survey]
allowed_prefixes``, scope, the sweep, numbered parts, the signed chain) carry them out from the
lab's *agent* namespace against the survey lab's range behind a veth pair; their signed messages
go back through the broker and the collector merges them. Every seeded exposure is stored, the
shards have no gap and no overlap, the notices go to the subscribers who hold the addresses, the
opted-out and excluded hosts were never probed (the lab's log) nor reported, and no credential
reached any device.

The agents' MQTT transport is this test's client (in the root namespace, beside the broker);
everything else the agent does is its own code."""

from __future__ import annotations

import asyncio
import ipaddress
import queue
import shutil
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import update

from agent.commands.executor import Executor
from agent.config import AgentConfig, SurveyConfig
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from lab import netns
from lab.survey import SEEDED, SurveyLab, read_events
from protocol import import_public_jwk, public_jwk, read_header, topic
from protocol.commands import CMD_TYP
from server.domain.notices import Notices
from server.domain.scope import CLI
from server.domain.survey import Surveys
from server.firmware.scheduler import Scheduler
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository, read_then_write
from server.storage.models import Agent
from tests.server.conftest import Collector, enroll, wait_until
from tests.support.agents import SimAgent
from tests.support.credentials import FileCredentials
from tests.support.mosquitto import Mosquitto
from tests.survey.conftest import scoped
from tests.survey.test_survey_flow import addresses, commands_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not netns.available() or shutil.which("nft") is None,
        reason="ip netns and nft are needed (root; scripts/install-system-deps.sh test)",
    ),
]
RANGE = "10.77.6.0/24"
SITE = "isp-x"
MAP = (
    "prefix,subscriber_id,contact,province,district,valid_from\r\n"
    "10.77.6.0/25,SUB-1,one@example.vn,Bắc Ninh,Từ Sơn,2026-01-01\r\n"
    "10.77.6.128/25,SUB-2,two@example.vn,Bắc Ninh,Quế Võ,2026-01-01\r\n"
).encode()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SurveyLab]:
    started = await SurveyLab.start(RANGE, tmp_path / "lab.jsonl", mode="netns")
    try:
        yield started
    finally:
        await started.stop()


class Agents:
    """Two survey agents' executors, run one command at a time on an event loop whose thread is
    inside the lab's agent namespace; what they issue is published to the broker."""

    def __init__(self, tmp: Path, port: int, sims: list[SimAgent], collector_key: OKPKey) -> None:
        self.outboxes: dict[str, Outbox] = {}
        self.executors: dict[str, Executor] = {}
        self.sent: dict[str, int] = {}
        self.outcomes: list[str] = []
        for sim in sims:
            state = tmp / sim.agent_id
            state.mkdir(mode=0o700)
            config = AgentConfig(
                agent_id=sim.agent_id, site=sim.site, state_dir=str(state),
                survey=SurveyConfig(allowed_prefixes=(RANGE,), max_rate_cps=2000,
                                    udp_window_s=0.5),
            )  # fmt: skip
            outbox = Outbox(state / "outbox", 64 * 1024 * 1024, 20_000)
            issuer = Issuer(sim.agent_id, sim.site, sim.key, StateStore(state), outbox)
            self.outboxes[sim.agent_id] = outbox
            self.sent[sim.agent_id] = 0
            self.executors[sim.agent_id] = Executor(
                config,
                issuer,
                collector_key,
                FileCredentials(tmp / "vault.json"),
            )
        self.todo: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"agents-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("camwarden/v1/+/+/cmd", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        agent_id = msg.topic.split("/")[3]
        token = bytes(msg.payload)
        if agent_id in self.executors and read_header(token).get("typ") == CMD_TYP:
            self.todo.put((agent_id, token))  # not the collector's end-to-end acks

    def _flush(self, agent_id: str) -> None:
        outbox = self.outboxes[agent_id]
        entries = outbox.entries()
        for entry in entries[self.sent[agent_id] :]:
            token = outbox.read(entry)
            if token is not None:
                self.client.publish(topic(SITE, agent_id, "cmd-result"), token, qos=1)
        self.sent[agent_id] = len(entries)

    async def _carry_out(self, agent_id: str, token: bytes) -> None:
        self.outcomes.append(await self.executors[agent_id].submit(token))
        self._flush(agent_id)

    async def _work(self) -> None:
        """Each command as it comes: the two agents sweep their shards side by side."""
        running: set[asyncio.Task[None]] = set()
        while (item := await asyncio.to_thread(self.todo.get)) is not None:
            running.add(asyncio.create_task(self._carry_out(*item)))
        await asyncio.gather(*running)

    def run_in(self, namespace: str) -> threading.Thread:
        def body() -> None:
            with netns.entered(namespace):
                asyncio.run(self._work())

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def close(self, thread: threading.Thread) -> None:
        self.todo.put(None)
        thread.join(60)
        self.client.disconnect()
        self.client.loop_stop()


async def test_real_agents_survey_a_range_through_the_broker(
    repo: Repository, collector: Collector, mosquitto: Mosquitto, lab: SurveyLab, tmp_path: Path
) -> None:
    from server.domain.orgs import Orgs  # noqa: PLC0415

    root = scoped(repo, CLI)
    province = Orgs(root).create_org(parent_id=None, kind="province", name="Tỉnh Bắc Ninh").id
    isp = Orgs(root).create_org(parent_id=province, kind="agency", name="ISP X").id
    system = Orgs(root).create_org(parent_id=isp, kind="system", name="Survey").id
    Orgs(root).map_site(SITE, system)
    sims = [SimAgent("survey-1", SITE), SimAgent("survey-2", SITE)]
    for sim in sims:
        enroll(repo, sim)
    with read_then_write(repo.engine) as conn:  # heard from: the survey agents are live
        conn.execute(update(Agent).values(last_seen=datetime.now(UTC)))
    cameras = [h for h in lab.hosts if SEEDED[h.kind]]
    opted_out, excluded = cameras[0].address, cameras[1].address
    Surveys(root).declare_prefix(isp, RANGE)
    Surveys(root).add_to_list(isp, "opt_out", opted_out)
    Surveys(root).add_to_list(isp, "exclude", excluded)
    Notices(root).apply_map(isp, MAP)
    survey_id = Surveys(root).start(isp, shard_max=128)  # two shards, one per agent

    agents = Agents(
        tmp_path, mosquitto.port, sims, import_public_jwk(public_jwk(collector.command_key))
    )
    worker = agents.run_in(lab.agent_namespace)
    sched = Scheduler(
        repo, TufRepository.under(tmp_path / "tuf"), collector.command_key,
        collector.subscriber.publish, clock=lambda: datetime.now(UTC), interval_s=0.05,
    )  # fmt: skip
    sched.start()
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: Surveys(scoped(repo, CLI)).survey(survey_id).state == "done",
            120,
        )
    finally:
        sched.stop()
        agents.close(worker)
    assert agents.outcomes == ["succeeded", "succeeded"]
    view = Surveys(scoped(repo, CLI)).survey(survey_id)
    assert (view.addresses, sorted(a.agent_id for a in view.agents)) == (
        256,
        ["survey-1", "survey-2"],
    )
    shards = [addresses(c.params["prefixes"]) for c in commands_of(repo)]
    assert len(shards) == 2
    assert not shards[0] & shards[1]  # no overlap
    assert shards[0] | shards[1] == addresses(RANGE)  # no gap
    assert lab.outside_packets() == 0
    events = list(read_events(lab.log_path))
    assert not any(e.get("credential") for e in events)
    touched = {e["address"] for e in events}
    assert opted_out not in touched
    assert excluded not in touched
    notices = Notices(scoped(repo, CLI)).notices(survey_id)
    stored = {(e.address, e.code) for n in notices for e in n.exposures}
    expected = {
        (h.address, code)
        for h in cameras if h.address not in (opted_out, excluded)
        for code, _port in SEEDED[h.kind]
    }  # fmt: skip
    assert expected <= stored
    assert not {a for a, _ in stored} & {opted_out, excluded}
    for n in notices:
        half = ipaddress.ip_network("10.77.6.0/25")
        inside = {ipaddress.ip_address(e.address) in half for e in n.exposures}
        assert inside == {n.subscriber_id == "SUB-1"}
