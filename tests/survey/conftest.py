"""Two providers of one province, each with its survey agents, on a real database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.orgs import Orgs
from server.domain.scope import CLI, Principal, Scope
from server.domain.users import Users
from server.storage import Repository
from tests.server.conftest import db_url, enroll, repo
from tests.support.agents import SimAgent
from tests.web.conftest import PASSWORD, ingest, principal_of

__all__ = ["db_url", "repo"]  # fixtures re-exported for the tests in this directory


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
