"""A survey end to end on a real broker and database: the scheduler signs and publishes one
``survey.sweep`` command per shard, two simulated survey agents verify them and answer with
signed ``survey-result`` parts and the final result, the ingest stores them, the scheduler
merges them: the two agents swept the provider's prefixes with no gap and no overlap, and the
notices went to the subscribers who held the addresses."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

from protocol import Command, SurveyResult, encode, import_public_jwk, public_jwk, sign, topic
from protocol.messages import SurveySummary
from protocol.survey import SURVEY, SurveyParams
from server.domain.notices import Notices
from server.domain.scope import CLI
from server.domain.survey import Surveys
from server.firmware.scheduler import Scheduler
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from tests.firmware.fleet import SimFleet
from tests.server.conftest import Collector, Publisher, enroll, wait_until
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto
from tests.survey.conftest import host, scoped

# what answers on the provider's range (the lab's part, simulated here)
ANSWERS = {
    "198.51.100.7": host("198.51.100.7", ("survey.telnet_open", 23), vendor="Dahua"),
    "198.51.100.77": host("198.51.100.77", ("survey.stream_no_auth", 554), vendor="Hikvision"),
    "198.51.100.140": host("198.51.100.140", ("survey.upnp_exposed", 1900)),
}
MAP = (
    "prefix,subscriber_id,contact,province,district,valid_from\r\n"
    "198.51.100.0/25,SUB-1,one@example.vn,Bắc Ninh,Từ Sơn,2026-01-01\r\n"
    "198.51.100.128/25,SUB-2,two@example.vn,Bắc Ninh,Quế Võ,2026-01-01\r\n"
).encode()


class SurveyFleet(SimFleet):
    """Survey agents: sweep what the command names (here: look it up in ``ANSWERS``)."""

    swept: dict[str, list[int]]

    def _carry_out(self, agent: SimAgent, command: Command) -> None:
        assert command.action == SURVEY
        params = SurveyParams.parse(command.params)
        scope = params.scope()
        self._result(agent, command, "accepted")
        addresses = [int(a) for n in params.prefixes for a in n]
        self.swept.setdefault(agent.agent_id, []).extend(addresses)
        hosts = [h for a, h in ANSWERS.items() if scope.allows(ipaddress.ip_address(a))]
        now = datetime.now(UTC)
        summary = SurveySummary(
            addresses=len(addresses), excluded=0, opted_out=0, probed=len(addresses),
            answered=len(hosts), parts=1, started_at=now, finished_at=now, complete=True,
        )  # fmt: skip
        with self._locks[agent.agent_id]:
            agent.seq += 1
            message = SurveyResult(
                agent_id=agent.agent_id, site=agent.site, seq=agent.seq, issued_at=now,
                prev=agent.prev, prev_seq=agent.prev_seq, command_id=command.command_id,
                survey_id=params.survey_id, shard=params.shard, part=1, last=True, hosts=hosts,
                summary=summary,
            )  # fmt: skip
            token = sign(encode(message), agent.key).encode()
            self.publish(topic(agent.site, agent.agent_id, "cmd-result"), token)
        self._result(agent, command, "succeeded", details={"parts": 1})


def test_two_agents_split_a_range_through_the_broker(
    repo: Repository, collector: Collector, publisher: Publisher, mosquitto: Mosquitto,
    tmp_path: Path,
) -> None:  # fmt: skip
    from server.domain.orgs import Orgs  # noqa: PLC0415

    root = scoped(repo, CLI)
    province = Orgs(root).create_org(parent_id=None, kind="province", name="Tỉnh Bắc Ninh").id
    isp = Orgs(root).create_org(parent_id=province, kind="agency", name="ISP X").id
    system = Orgs(root).create_org(parent_id=isp, kind="system", name="Survey").id
    Orgs(root).map_site("isp-x", system)
    agents = [SimAgent("survey-1", "isp-x"), SimAgent("survey-2", "isp-x")]
    for a in agents:
        enroll(repo, a)
        publisher.publish(*a.report(cameras=1))
    Surveys(root).declare_prefix(isp, "198.51.100.0/24")
    Notices(root).apply_map(isp, MAP)
    survey_id = Surveys(root).start(isp, shard_max=64)  # four shards, two agents

    fleet = SurveyFleet(
        mosquitto.port, agents, import_public_jwk(public_jwk(collector.command_key))
    )
    fleet.swept = {}
    sched = Scheduler(
        repo, TufRepository.under(tmp_path), collector.command_key,
        collector.subscriber.publish, clock=lambda: datetime.now(UTC), interval_s=0.05,
    )  # fmt: skip
    sched.start()
    try:
        wait_until(lambda: Surveys(scoped(repo, CLI)).survey(survey_id).state == "done", 90)
    finally:
        sched.stop()
        fleet.close()
    assert fleet.rejected == 0
    one, two = (fleet.swept[a.agent_id] for a in agents)
    assert len(one) == len(set(one)) == 128
    assert len(two) == len(set(two)) == 128
    assert not set(one) & set(two)  # no overlap
    assert set(one) | set(two) == {int(a) for a in ipaddress.ip_network("198.51.100.0/24")}
    view = Surveys(scoped(repo, CLI)).survey(survey_id)
    assert (view.done, view.exposures) == (256, 3)
    assert {a.agent_id: a.done for a in view.agents} == {"survey-1": 128, "survey-2": 128}
    notices = {n.subscriber_id: n for n in Notices(scoped(repo, CLI)).notices(survey_id)}
    assert {k: [e.address for e in n.exposures] for k, n in notices.items()} == {
        "SUB-1": ["198.51.100.7", "198.51.100.77"], "SUB-2": ["198.51.100.140"],
    }  # fmt: skip
