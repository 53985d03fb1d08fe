"""The providers' surveys in the operator API (``/api/v1/surveys``, Directive 23/CT-TTg).

The same domain as the pages (``server.domain.survey``, ``server.domain.notices``): the
survey agents' progress with the time left, one survey with its shards and what it found,
starting a survey on the agents chosen (all of the provider's by default), the notices and
their moves, the prefixes and the schedules. Roles and tenancy are the domain's: everybody
reads their organisation's surveys; an operator starts a survey and moves a notice; an
administrator declares prefixes and sets the schedule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from server.domain.notices import Notices, NoticeView
from server.domain.orgs import Orgs
from server.domain.survey import (
    SCHEDULE_DAYS,
    AgentProgress,
    PrefixView,
    ScheduleView,
    ShardView,
    Surveys,
    SurveyView,
)
from server.web.deps import ApiScope as Scope
from server.web.deps import DbId

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
OrgId = Annotated[int, Field(ge=1, le=2**31 - 1)]
# an agent chosen for a survey; none given: every approved survey agent of the provider
Agents = Annotated[list[Annotated[str, Field(pattern=NAME)]], Field(max_length=256)]


class SurveyOut(BaseModel):
    """A survey and its progress: ``done`` addresses surveyed (probed, excluded or opted out)
    of ``addresses``, ``probed`` of them probed, ``shards_done`` of ``shards`` finished;
    ``eta_s`` the estimated seconds left while it runs (none until an address is done; the
    shards still sweeping count what their agents said they probed so far)."""

    id: int
    org_unit_id: int
    org_name: str
    state: str
    prefixes: list[str]
    addresses: int
    done: int
    probed: int
    percent: int
    shards: int
    shards_done: int
    started_at: datetime
    finished_at: datetime | None
    eta_s: int | None
    agents: list[AgentProgress]
    exposures: int

    @classmethod
    def of(cls, v: SurveyView) -> SurveyOut:
        return cls(
            id=v.id,
            org_unit_id=v.org_unit_id,
            org_name=v.org_name,
            state=v.state,
            prefixes=v.prefixes,
            addresses=v.addresses,
            done=v.done,
            probed=v.probed,
            percent=v.percent,
            shards=v.shards,
            shards_done=v.shards_done,
            started_at=v.started_at,
            finished_at=v.finished_at,
            eta_s=None if v.eta is None else int(v.eta.total_seconds()),
            agents=v.agents,
            exposures=v.exposures,
        )


class SurveyDetailOut(BaseModel):
    survey: SurveyOut
    shards: list[ShardView]
    kinds: dict[str, int]  # exposures by finding code (the catalogue's key)
    vendors: dict[str, int]  # hosts that answered, by vendor ("": not shown)


class SurveyStart(BaseModel):
    org_id: OrgId
    agents: Agents = []


class NoticeMove(BaseModel):
    state: Literal["sent", "acknowledged", "fixed"]


class PrefixIn(BaseModel):
    org_id: OrgId
    prefix: Annotated[str, Field(min_length=1, max_length=64)]


class ScheduleIn(BaseModel):
    every_days: Annotated[int, Field(ge=SCHEDULE_DAYS[0], le=SCHEDULE_DAYS[1])]
    agents: Agents = []


def router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])
    created = status.HTTP_201_CREATED

    # the fixed paths first: "/prefixes" is no survey id

    @api.get("/prefixes")
    def prefixes(s: Scope) -> list[PrefixView]:
        return Surveys(s).prefixes()

    @api.post("/prefixes", status_code=created)
    def declare_prefix(s: Scope, body: PrefixIn) -> PrefixView:
        """Declare a prefix the provider holds (administrators of the provider)."""
        return Surveys(s).declare_prefix(body.org_id, body.prefix)

    @api.delete("/prefixes/{prefix_id}", status_code=status.HTTP_204_NO_CONTENT)
    def remove_prefix(s: Scope, prefix_id: DbId) -> None:
        Surveys(s).remove_prefix(prefix_id)

    @api.get("/schedules")
    def schedules(s: Scope) -> list[ScheduleView]:
        return Surveys(s).schedules()

    @api.put("/schedules/{org_id}")
    def set_schedule(s: Scope, org_id: DbId, body: ScheduleIn) -> ScheduleView:
        """Survey the provider every ``every_days`` days on ``agents`` (none: all of its
        approved survey agents); the first survey is due at once (administrators)."""
        return Surveys(s).set_schedule(org_id, body.every_days, body.agents or None)

    @api.get("/agents")
    def survey_agents(s: Scope, org: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> list[str]:
        """The approved agents on the provider's sites: those a survey of it may run on."""
        return Surveys(s).survey_agents(org)

    @api.post("/notices/{notice_id}")
    def move_notice(s: Scope, notice_id: DbId, body: NoticeMove) -> NoticeView:
        """Mark a notice sent, acknowledged or fixed (operators; never backwards)."""
        return Notices(s).move_notice(notice_id, body.state)

    @api.get("/notices/{notice_id}")
    def notice(s: Scope, notice_id: DbId) -> NoticeView:
        return Notices(s).notice(notice_id)

    @api.get("")
    def surveys(
        s: Scope, org: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
    ) -> list[SurveyOut]:
        """The surveys in the caller's organisation (the newest 200), with their progress;
        ``org``: of that provider only (not found outside the caller's organisation)."""
        if org is not None:
            Orgs(s).org(org)
        return [SurveyOut.of(v) for v in Surveys(s).surveys(org)]

    @api.post("", status_code=created)
    def start(s: Scope, body: SurveyStart) -> SurveyDetailOut:
        """Start a survey of the provider's declared prefixes (operators), its shards given to
        ``agents`` (none: every approved survey agent of the provider)."""
        surveys = Surveys(s)
        return _detail(surveys, surveys.start(body.org_id, body.agents or None))

    @api.get("/{survey_id}")
    def survey(s: Scope, survey_id: DbId) -> SurveyDetailOut:
        return _detail(Surveys(s), survey_id)

    @api.get("/{survey_id}/notices")
    def notices(s: Scope, survey_id: DbId) -> list[NoticeView]:
        Surveys(s).survey(survey_id)  # not found outside the caller's organisation
        return Notices(s).notices(survey_id)

    return api


def _detail(surveys: Surveys, survey_id: int) -> SurveyDetailOut:
    found = surveys.detail(survey_id)
    return SurveyDetailOut(
        survey=SurveyOut.of(found.survey),
        shards=found.shards,
        kinds=found.kinds,
        vendors=found.vendors,
    )
