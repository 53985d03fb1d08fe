"""Two providers of one province, each with its survey agents, on a real database."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from protocol import Identity, SurveyResult
from protocol.messages import SurveyExposure, SurveyHost, SurveySummary
from server.domain.orgs import Orgs
from server.domain.scope import CLI, Principal, Scope
from server.domain.users import Users
from server.storage import Repository
from tests.server.conftest import collector, db_url, enroll, publisher, repo
from tests.support.agents import SimAgent
from tests.web.conftest import PASSWORD, ingest, principal_of

__all__ = ["collector", "db_url", "publisher", "repo"]  # fixtures for the tests here


@dataclass(frozen=True, slots=True)
class Providers:
    province: int
    isp_x: int
    isp_y: int
    agents: dict[str, SimAgent]


def scoped(repo: Repository, principal: Principal, now: datetime | None = None) -> Scope:
    return Scope(repo, principal, silent_after=timedelta(minutes=15), now=now or datetime.now(UTC))


def as_user(repo: Repository, username: str, now: datetime | None = None) -> Scope:
    return scoped(repo, principal_of(repo, username), now)


@pytest.fixture
def providers(repo: Repository, db_url: str) -> Providers:
    root = scoped(repo, CLI)
    orgs = Orgs(root)
    province = orgs.create_org(parent_id=None, kind="province", name="Tỉnh Bắc Ninh").id
    isp_x = orgs.create_org(parent_id=province, kind="agency", name="ISP X").id
    isp_y = orgs.create_org(parent_id=province, kind="agency", name="ISP Y").id
    for org, site in ((isp_x, "isp-x"), (isp_y, "isp-y")):
        system = orgs.create_org(parent_id=org, kind="system", name=f"Survey {site}").id
        orgs.map_site(site, system)
    agents = {
        "survey-x1": SimAgent("survey-x1", "isp-x"),
        "survey-x2": SimAgent("survey-x2", "isp-x"),
        "survey-y1": SimAgent("survey-y1", "isp-y"),
    }
    for sim in agents.values():
        enroll(repo, sim)
    ingest(repo, db_url, list(agents.values()), cameras=1)  # all of them heard from, now
    for username, role, org in (
        ("admin-x", "admin", isp_x),
        ("operator-x", "operator", isp_x),
        ("viewer-x", "viewer", isp_x),
        ("admin-y", "admin", isp_y),
    ):
        Users(root).create_user(username, PASSWORD, role, org)
    return Providers(province, isp_x, isp_y, agents)


def host(
    address: str, *exposures: tuple[str, int], vendor: str | None = None, model: str | None = None
) -> SurveyHost:
    """A host that answered, with its exposures as (code, port)."""
    return SurveyHost(
        address=address,
        ports=sorted({port for _, port in exposures}),
        identity=Identity(vendor=vendor, model=model),
        exposures=[SurveyExposure(code=code, port=port) for code, port in exposures],
    )


def part(
    agent_id: str,
    command: Any,
    hosts: list[SurveyHost],
    *,
    at: datetime,
    number: int = 1,
    of: int | None = 1,
    complete: bool = True,
) -> SurveyResult:
    """Part ``number`` of the results of ``command`` (a row of the commands table); ``of``:
    the number of parts when this one is the last, None when it is not."""
    params = command.params
    addresses = sum(ipaddress.ip_network(p).num_addresses for p in params["prefixes"].split(","))
    summary = (
        None
        if of is None
        else SurveySummary(
            addresses=addresses, excluded=0, opted_out=0,
            probed=addresses if complete else addresses // 2, answered=len(hosts), parts=of,
            started_at=at, finished_at=at, complete=complete,
            reason=None if complete else "deadline",
        )
    )  # fmt: skip
    return SurveyResult(
        agent_id=agent_id, site="isp-x", seq=1, issued_at=at, prev="0" * 64, prev_seq=0,
        command_id=command.command_id, survey_id=params["survey_id"], shard=params["shard"],
        part=number, last=of is not None, hosts=hosts, summary=summary,
    )  # fmt: skip
