"""Internet providers' surveys at the collector (Directive 23/CT-TTg), through one scope.

A provider is an organisation unit of the tree; its administrators declare the prefixes it holds
(``server.domain.survey_plan`` says which are acceptable; no address is declared twice across
all organisations, which is why that check reads every declaration, visible or not, and names
none of another tenant's) and a schedule. ``start`` cuts the prefixes into shards and queues one
signed survey command per shard for the provider's survey agents (agents enrolled on sites under
the provider), least-loaded first; the running collector signs and publishes them as every other
command (``server.storage.commands``). ``record`` merges what an agent reports for its shard:
progress, and each exposure attributed to the subscriber who held its address at the time
(``server.domain.subscriber_map``). ``reissue`` gives the open shards of agents gone silent (and
failed shards) to a live agent. When every shard is done, the survey is done: notices are opened
per subscriber and earlier notices re-checked (``server.domain.notices``).

Every change by a person goes to the audit log; ``record`` and ``reissue`` run as the collector.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
from sqlalchemy import Connection, delete, func, insert, select, update

from protocol import SurveyResult
from protocol.messages import SurveyHost
from protocol.survey import MAX_ADDRESSES, SURVEY, SurveyParams
from server.domain import survey_plan
from server.domain.notices import close_survey
from server.domain.scope import Area, Invalid, NotVisible
from server.domain.subscriber_map import Holding, holder
from server.domain.survey_plan import DEFAULT_SHARD_MAX, Network, PrefixRejected, Shard
from server.firmware.commands import new_command
from server.storage import read_then_write
from server.storage.commands import queue
from server.storage.firmware_models import CommandRecord
from server.storage.models import Agent
from server.storage.org_models import OrgUnit
from server.storage.survey_models import (
    LIST_KINDS,
    SubscriberHolding,
    Survey,
    SurveyExposure,
    SurveyListEntry,
    SurveyPrefix,
    SurveySchedule,
    SurveyShard,
)
from server.storage.survey_models import (
    SurveyHost as HostRecord,
)

COMMAND_TTL: Final = timedelta(hours=24)
SCHEDULE_DAYS: Final = (1, 365)
MAX_PREFIXES: Final = 256  # of one provider
# entries of one list of one provider: 512 prefixes of at most 43 characters and a comma stay
# within a command's ``MAX_LIST_TEXT`` even if one shard takes them all
MAX_LIST_ENTRIES: Final = 512
OPEN_SHARDS: Final = ("queued", "sent", "running")


class SurveyInvalid(Invalid):
    """Cannot be done, with the catalogue's ``survey.e.<code>`` and its values."""

    def __init__(self, code: str, **params: str | int) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def key(self) -> str:
        return f"survey.e.{self.code}"


# how grave each exposure of ``protocol.survey.EXPOSURES`` is (the report and the notices)
SEVERITY: Final = {
    "survey.kev_firmware": "critical",
    "survey.stream_no_auth": "critical",
    "survey.snapshot_no_auth": "high",
    "survey.onvif_no_auth": "high",
    "survey.telnet_open": "high",
    "survey.sdk_port_open": "medium",
    "survey.dvrip_port_open": "medium",
    "survey.upnp_exposed": "medium",
}
ENDED: Final = ("failed", "rejected", "expired")  # a command that will bring no more parts


# -- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrefixView:
    id: int
    org_unit_id: int
    prefix: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ListEntryView:
    id: int
    org_unit_id: int
    kind: str  # one of LIST_KINDS
    prefix: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ScheduleView:
    org_unit_id: int
    every_days: int
    agents: list[str]
    next_at: datetime


@dataclass(frozen=True, slots=True)
class AgentProgress:
    agent_id: str
    shards: int
    addresses: int
    done: int
    silent: bool


@dataclass(frozen=True, slots=True)
class SurveyView:
    id: int
    org_unit_id: int
    org_name: str
    state: str
    prefixes: list[str]
    addresses: int
    done: int
    started_at: datetime
    finished_at: datetime | None
    eta: timedelta | None
    agents: list[AgentProgress]
    exposures: int
    shards: int = 0  # shards of the survey (a re-issued shard counts once)
    shards_done: int = 0
    probed: int = 0  # addresses the finished shards' agents probed (their summaries)

    @property
    def percent(self) -> int:
        return 100 if not self.addresses else self.done * 100 // self.addresses


@dataclass(frozen=True, slots=True)
class ShardView:
    """One shard as it stands: ``parts`` the result parts held; ``probed`` from its summary,
    or while it runs what its agent said it probed so far (None before either);
    ``complete`` false: the agent stopped before the end (None until the summary is in)."""

    position: int
    blocks: list[str]
    addresses: int
    agent_id: str
    command_id: str
    state: str
    done: int
    parts: list[int]
    probed: int | None
    answered: int | None
    complete: bool | None
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SurveyDetail:
    """A survey with its shards and what it found: exposures by kind (code), hosts that
    answered by vendor ("" when the host did not say)."""

    survey: SurveyView
    shards: list[ShardView]
    kinds: dict[str, int]
    vendors: dict[str, int]


class Surveys(Area):
    __slots__ = ()

    # -- prefixes ----------------------------------------------------------------------------

    def prefixes(self, org_id: int | None = None) -> list[PrefixView]:
        q = (
            select(SurveyPrefix.__table__)
            .where(self.s.unit_visible(SurveyPrefix.org_unit_id))
            .order_by(SurveyPrefix.org_unit_id, SurveyPrefix.id)
        )
        if org_id is not None:
            q = q.where(SurveyPrefix.org_unit_id == org_id)
        with self.s.engine.connect() as conn:
            return [
                PrefixView(r.id, r.org_unit_id, r.prefix, r.created_at, r.created_by)
                for r in conn.execute(q)
            ]

    def declare_prefix(self, org_id: int, text: str) -> PrefixView:
        with self.s.action("survey.prefix.add", "org", org_id) as act:
            act.org_unit_id = org_id
            act.detail = {"prefix": text[: survey_plan.MAX_PREFIX_TEXT]}
            self.s.require("admin")
            try:
                net = survey_plan.check_prefix(text)
            except PrefixRejected as exc:
                raise SurveyInvalid(exc.code, **exc.params) from exc
            with read_then_write(self.s.engine) as conn:
                self.s.org_row(conn, org_id)
                # every declaration, of every tenant: the writers wait for this transaction
                declared = conn.execute(
                    select(SurveyPrefix.org_unit_id, SurveyPrefix.prefix).with_for_update()
                ).all()
                if sum(d.org_unit_id == org_id for d in declared) >= MAX_PREFIXES:
                    raise SurveyInvalid("too_many_prefixes", limit=MAX_PREFIXES)
                for d in declared:
                    if survey_plan.overlapping(net, [ipaddress.ip_network(d.prefix)]):
                        if d.org_unit_id == org_id:
                            raise SurveyInvalid("prefix_overlap_own", value=d.prefix)
                        raise SurveyInvalid("prefix_overlap_other", value=str(net))
                prefix_id = conn.execute(
                    insert(SurveyPrefix)
                    .values(
                        org_unit_id=org_id,
                        prefix=str(net),
                        created_at=self.s.now,
                        created_by=self.s.p.username,
                    )
                    .returning(SurveyPrefix.id)
                ).scalar_one()
            act.detail = {"prefix": str(net)}
        return PrefixView(prefix_id, org_id, str(net), self.s.now, self.s.p.username)

    def remove_prefix(self, prefix_id: int) -> None:
        with self.s.action("survey.prefix.remove", "prefix", prefix_id) as act:
            found = next((p for p in self.prefixes() if p.id == prefix_id), None)
            if found is None:
                raise NotVisible(f"prefix {prefix_id}")
            act.org_unit_id, act.detail = found.org_unit_id, {"prefix": found.prefix}
            self.s.require("admin")
            with read_then_write(self.s.engine) as conn:
                conn.execute(delete(SurveyPrefix).where(SurveyPrefix.id == prefix_id))

    # -- agents and schedule -----------------------------------------------------------------

    # -- exclusion and opt-out lists ---------------------------------------------------------

    def list_entries(self, org_id: int | None = None) -> list[ListEntryView]:
        q = (
            select(SurveyListEntry.__table__)
            .where(self.s.unit_visible(SurveyListEntry.org_unit_id))
            .order_by(SurveyListEntry.org_unit_id, SurveyListEntry.kind, SurveyListEntry.id)
        )
        if org_id is not None:
            q = q.where(SurveyListEntry.org_unit_id == org_id)
        with self.s.engine.connect() as conn:
            return [
                ListEntryView(r.id, r.org_unit_id, r.kind, r.prefix, r.created_at, r.created_by)
                for r in conn.execute(q)
            ]

    def add_to_list(self, org_id: int, kind: str, text: str) -> ListEntryView:
        """Leave ``text`` (an address or a CIDR inside the provider's prefixes) alone in every
        survey: ``exclude`` (the provider's own equipment) or ``opt_out`` (a subscriber's wish).
        """
        if kind not in LIST_KINDS:
            raise ValueError(f"unknown list {kind!r}")
        with self.s.action("survey.list.add", "org", org_id) as act:
            act.org_unit_id = org_id
            act.detail = {"list": kind, "prefix": text[: survey_plan.MAX_PREFIX_TEXT]}
            self.s.require("admin")
            try:
                net = ipaddress.ip_network(text.strip(), strict=True)
            except ValueError as exc:
                raise SurveyInvalid("prefix", value=text[: survey_plan.MAX_PREFIX_TEXT]) from exc
            with read_then_write(self.s.engine) as conn:
                self.s.org_row(conn, org_id)
                held = conn.scalars(
                    select(SurveyPrefix.prefix).where(SurveyPrefix.org_unit_id == org_id)
                ).all()
                if not any(_inside(net, ipaddress.ip_network(p)) for p in held):
                    raise SurveyInvalid("outside", value=str(net))
                listed = conn.scalars(
                    select(SurveyListEntry.prefix)
                    .where(SurveyListEntry.org_unit_id == org_id, SurveyListEntry.kind == kind)
                    .with_for_update()
                ).all()
                if str(net) in listed:
                    raise SurveyInvalid("listed_already", value=str(net))
                if len(listed) >= MAX_LIST_ENTRIES:
                    raise SurveyInvalid("list_full", limit=MAX_LIST_ENTRIES)
                entry_id = conn.execute(
                    insert(SurveyListEntry)
                    .values(
                        org_unit_id=org_id,
                        kind=kind,
                        prefix=str(net),
                        created_at=self.s.now,
                        created_by=self.s.p.username,
                    )
                    .returning(SurveyListEntry.id)
                ).scalar_one()
            act.detail = {"list": kind, "prefix": str(net)}
        return ListEntryView(entry_id, org_id, kind, str(net), self.s.now, self.s.p.username)

    def remove_from_list(self, entry_id: int) -> None:
        with self.s.action("survey.list.remove", "list_entry", entry_id) as act:
            found = next((e for e in self.list_entries() if e.id == entry_id), None)
            if found is None:
                raise NotVisible(f"list entry {entry_id}")
            act.org_unit_id = found.org_unit_id
            act.detail = {"list": found.kind, "prefix": found.prefix}
            self.s.require("admin")
            with read_then_write(self.s.engine) as conn:
                conn.execute(delete(SurveyListEntry).where(SurveyListEntry.id == entry_id))

    def survey_agents(self, org_id: int) -> list[str]:
        """Approved agents enrolled on sites under the provider, that the principal sees."""
        with self.s.engine.connect() as conn:
            org = self.s.org_row(conn, org_id)
            return list(
                conn.execute(
                    select(Agent.agent_id)
                    .where(
                        Agent.status == "approved",
                        Agent.site.in_(self.s.sites_under(org.path)),
                        self.s.agent_visible(),
                    )
                    .order_by(Agent.agent_id)
                ).scalars()
            )

    def _checked_agents(self, org_id: int, agents: Sequence[str] | None) -> list[str]:
        allowed = self.survey_agents(org_id)
        chosen = list(dict.fromkeys(agents)) if agents else allowed
        unknown = [a for a in chosen if a not in allowed]
        if unknown:
            raise SurveyInvalid("agent_not_surveying", agent=unknown[0][:64])
        if not chosen:
            raise SurveyInvalid("no_agents")
        return chosen

    def schedules(self) -> list[ScheduleView]:
        with self.s.engine.connect() as conn:
            return [
                ScheduleView(r.org_unit_id, r.every_days, r.agents, r.next_at)
                for r in conn.execute(
                    select(SurveySchedule.__table__)
                    .where(self.s.unit_visible(SurveySchedule.org_unit_id))
                    .order_by(SurveySchedule.org_unit_id)
                )
            ]

    def set_schedule(
        self, org_id: int, every_days: int, agents: Sequence[str] | None = None
    ) -> ScheduleView:
        with self.s.action("survey.schedule", "org", org_id) as act:
            act.org_unit_id = org_id
            act.detail = {"every_days": every_days}
            self.s.require("admin")
            low, high = SCHEDULE_DAYS
            if not low <= every_days <= high:
                raise SurveyInvalid("schedule_days", low=low, high=high)
            chosen = self._checked_agents(org_id, agents)
            act.detail["agents"] = chosen
            values = {
                "every_days": every_days,
                "agents": chosen,
                "next_at": self.s.now,
                "updated_at": self.s.now,
                "updated_by": self.s.p.username,
            }
            with read_then_write(self.s.engine) as conn:
                if not conn.execute(
                    update(SurveySchedule)
                    .where(SurveySchedule.org_unit_id == org_id)
                    .values(values)
                ).rowcount:
                    conn.execute(insert(SurveySchedule).values(org_unit_id=org_id, **values))
        return ScheduleView(org_id, every_days, chosen, self.s.now)

    def start_due(self) -> list[int]:
        """Start the survey of every provider whose schedule is due and that has none running
        (the collector's scheduler calls it); the ids of the surveys started."""
        with self.s.engine.connect() as conn:
            due = conn.execute(
                select(SurveySchedule.org_unit_id, SurveySchedule.agents, SurveySchedule.every_days)
                .where(SurveySchedule.next_at <= self.s.now)
                .where(self.s.unit_visible(SurveySchedule.org_unit_id))
                .where(
                    ~SurveySchedule.org_unit_id.in_(
                        select(Survey.org_unit_id).where(Survey.state == "running")
                    )
                )
            ).all()
        started = []
        for org_id, agents, every_days in due:
            with read_then_write(self.s.engine) as conn:
                conn.execute(
                    update(SurveySchedule)
                    .where(SurveySchedule.org_unit_id == org_id)
                    .values(next_at=self.s.now + timedelta(days=every_days))
                )
            started.append(self.start(org_id, agents))
        return started

    # -- a survey ----------------------------------------------------------------------------

    def start(
        self,
        org_id: int,
        agents: Sequence[str] | None = None,
        shard_max: int = DEFAULT_SHARD_MAX,
    ) -> int:
        """Cut the provider's prefixes into shards and queue a signed command for each."""
        with self.s.action("survey.start", "org", org_id) as act:
            act.org_unit_id = org_id
            self.s.require("operator")
            chosen = self._checked_agents(org_id, agents)
            declared = [ipaddress.ip_network(p.prefix) for p in self.prefixes(org_id)]
            if not declared:
                raise SurveyInvalid("no_prefixes")
            shards = survey_plan.split(declared, min(shard_max, MAX_ADDRESSES))
            owners = survey_plan.assign([s.addresses for s in shards], chosen, {})
            with read_then_write(self.s.engine) as conn:
                sites = dict(
                    conn.execute(
                        select(Agent.agent_id, Agent.site).where(Agent.agent_id.in_(chosen))
                    ).all()
                )
                survey_id = conn.execute(
                    insert(Survey)
                    .values(
                        org_unit_id=org_id,
                        state="running",
                        prefixes=[str(n) for n in declared],
                        addresses=sum(s.addresses for s in shards),
                        started_at=self.s.now,
                        started_by=self.s.p.username,
                        finished_at=None,
                    )
                    .returning(Survey.id)
                ).scalar_one()
                for shard in shards:
                    agent = owners[shard.position]
                    self._issue(conn, org_id, survey_id, shard, agent=agent, site=sites[agent])
            act.detail = {
                "survey": survey_id,
                "prefixes": len(declared),
                "shards": len(shards),
                "agents": chosen,
            }
        return survey_id

    def _issue(
        self,
        conn: Connection,
        org_id: int,
        survey_id: int,
        shard: Shard,
        *,
        agent: str,
        site: str,
    ) -> None:
        """Queue the shard's signed command, with the provider's exclusions and opt-outs (as
        they are now) that touch the shard."""
        lists: dict[str, list[Network]] = {kind: [] for kind in LIST_KINDS}
        for kind, text in conn.execute(
            select(SurveyListEntry.kind, SurveyListEntry.prefix)
            .where(SurveyListEntry.org_unit_id == org_id)
            .order_by(SurveyListEntry.id)
        ):
            net = ipaddress.ip_network(text)
            if survey_plan.overlapping(net, shard.blocks):
                lists[kind].append(net)
        params = SurveyParams(
            str(survey_id),
            shard.position,
            shard.blocks,
            exclude=tuple(lists["exclude"]),
            opt_out=tuple(lists["opt_out"]),
        )
        cmd = new_command(
            SURVEY,
            agent_id=agent,
            site=site,
            camera_id=None,
            params=params.to_params(),
            now=self.s.now,
            ttl=COMMAND_TTL,
        )
        queue(conn, cmd, issued_by=self.s.p.username, rollout_id=None, now=self.s.now)
        conn.execute(
            insert(SurveyShard).values(
                survey_id=survey_id,
                position=shard.position,
                blocks=[str(b) for b in shard.blocks],
                addresses=shard.addresses,
                agent_id=agent,
                command_id=cmd.command_id,
                state="queued",
                done=0,
                parts=[],
                summary=None,
                updated_at=self.s.now,
            )
        )

    def record(self, agent_id: str, result: SurveyResult) -> bool:
        """``record_part`` in a transaction of its own."""
        with read_then_write(self.s.engine) as conn:
            return record_part(conn, agent_id, result, self.s.now)

    def reissue(self, silent_after: timedelta) -> int:
        """Give the open shards of agents silent for ``silent_after``, and the failed shards
        (and those whose command failed, was rejected or expired), to the live agent with the
        least left to do; how many were given again."""
        with self.s.engine.connect() as conn:  # a plain read first: idle, no write lock is taken
            if conn.execute(select(Survey.id).where(Survey.state == "running")).first() is None:
                return 0
        with read_then_write(self.s.engine) as conn:
            rows = conn.execute(
                select(
                    SurveyShard.__table__,
                    Survey.org_unit_id,
                    CommandRecord.status.label("command_status"),
                )
                .join(Survey, Survey.id == SurveyShard.survey_id)
                .join(CommandRecord, CommandRecord.command_id == SurveyShard.command_id)
                .where(Survey.state == "running", self.s.unit_visible(Survey.org_unit_id))
                .where(SurveyShard.state.in_((*OPEN_SHARDS, "failed")))
                .order_by(SurveyShard.survey_id, SurveyShard.position)
            ).all()
            seen = {
                a.agent_id: (a.last_seen, a.site, a.status)
                for a in conn.execute(
                    select(Agent.agent_id, Agent.last_seen, Agent.site, Agent.status)
                )
            }

            def live(agent_id: str) -> bool:
                last, _, status = seen.get(agent_id, (None, "", "revoked"))
                return status == "approved" and not survey_plan.silent(
                    last, self.s.now, silent_after
                )

            load: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for r in rows:
                load[r.survey_id][r.agent_id] += r.addresses - r.done
            moved = 0
            for r in rows:
                ended = r.state == "failed" or r.command_status in ENDED
                if not ended and live(r.agent_id):
                    continue
                agents = [a for a in load[r.survey_id] if live(a) and a != r.agent_id]
                agents += [a for a in self._surveying(conn, r.org_unit_id) if live(a)]
                agents = [a for a in dict.fromkeys(agents) if a != r.agent_id] or (
                    [r.agent_id] if live(r.agent_id) else []
                )
                if not agents:
                    continue  # nobody to give it to: the next pass tries again
                target = survey_plan.assign([r.addresses], agents, load[r.survey_id])[0]
                conn.execute(
                    update(SurveyShard)
                    .where(SurveyShard.id == r.id)
                    .values(state="reissued", updated_at=self.s.now)
                )
                blocks = tuple(ipaddress.ip_network(b) for b in r.blocks)
                self._issue(
                    conn, r.org_unit_id, r.survey_id, Shard(r.position, blocks, r.addresses),
                    agent=target, site=seen[target][1],
                )  # fmt: skip
                load[r.survey_id][target] += r.addresses
                load[r.survey_id][r.agent_id] -= r.addresses - r.done
                moved += 1
        return moved

    def _surveying(self, conn: Connection, org_id: int) -> list[str]:
        path = conn.execute(select(OrgUnit.path).where(OrgUnit.id == org_id)).scalar_one()
        return list(
            conn.execute(
                select(Agent.agent_id)
                .where(Agent.status == "approved", Agent.site.in_(self.s.sites_under(path)))
                .order_by(Agent.agent_id)
            ).scalars()
        )

    # -- reading -----------------------------------------------------------------------------

    def surveys(
        self, org_id: int | None = None, silent_after: timedelta | None = None
    ) -> list[SurveyView]:
        q = (
            select(Survey.__table__, OrgUnit.name.label("org_name"))
            .join(OrgUnit, OrgUnit.id == Survey.org_unit_id)
            .where(self.s.unit_visible(Survey.org_unit_id))
            .order_by(Survey.id.desc())
            .limit(200)
        )
        if org_id is not None:
            q = q.where(Survey.org_unit_id == org_id)
        after = silent_after or self.s.silent_after
        with self.s.engine.connect() as conn:
            rows = conn.execute(q).all()
            ids = [r.id for r in rows]
            shards = conn.execute(
                select(SurveyShard.__table__)
                .where(SurveyShard.survey_id.in_(ids), SurveyShard.state != "reissued")
                .order_by(SurveyShard.position)
            ).all()
            last_seen = dict(conn.execute(select(Agent.agent_id, Agent.last_seen)).all())
            sweeping = _sweeping(conn, [sh.command_id for sh in shards if sh.state in OPEN_SHARDS])
            exposures = dict(
                conn.execute(
                    select(SurveyExposure.survey_id, func.count())
                    .where(SurveyExposure.survey_id.in_(ids))
                    .group_by(SurveyExposure.survey_id)
                ).all()
            )
        by_survey: dict[int, list[Any]] = defaultdict(list)
        for sh in shards:
            by_survey[sh.survey_id].append(sh)

        def done_of(sh: Any) -> int:
            return _done(sh, sweeping.get(sh.command_id))

        result = []
        for r in rows:
            per_agent: dict[str, list[Any]] = defaultdict(list)
            for sh in by_survey[r.id]:
                per_agent[sh.agent_id].append(sh)
            done = sum(done_of(sh) for sh in by_survey[r.id])
            finished = [sh for sh in by_survey[r.id] if sh.state == "done"]
            agents = [
                AgentProgress(
                    a,
                    len(mine),
                    sum(sh.addresses for sh in mine),
                    sum(done_of(sh) for sh in mine),
                    r.state == "running"
                    and any(sh.state in OPEN_SHARDS for sh in mine)
                    and survey_plan.silent(last_seen.get(a), self.s.now, after),
                )
                for a, mine in sorted(per_agent.items())
            ]
            result.append(
                SurveyView(
                    r.id,
                    r.org_unit_id,
                    r.org_name,
                    r.state,
                    r.prefixes,
                    r.addresses,
                    done,
                    r.started_at,
                    r.finished_at,
                    survey_plan.eta(done, r.addresses, r.started_at, self.s.now)
                    if r.state == "running"
                    else None,
                    agents,
                    exposures.get(r.id, 0),
                    len(by_survey[r.id]),
                    len(finished),
                    sum((sh.summary or {}).get("probed", 0) for sh in finished),
                )
            )
        return result

    def survey(self, survey_id: int) -> SurveyView:
        with self.s.engine.connect() as conn:
            org_id = conn.execute(
                select(Survey.org_unit_id).where(
                    Survey.id == survey_id, self.s.unit_visible(Survey.org_unit_id)
                )
            ).scalar()
        found = [] if org_id is None else [v for v in self.surveys(org_id) if v.id == survey_id]
        if not found:
            raise NotVisible(f"survey {survey_id}")
        return found[0]

    def detail(self, survey_id: int) -> SurveyDetail:
        """The survey (``NotVisible`` outside the scope), its shards in order (the re-issued
        commands left out: their shard is listed once, with its current agent), the exposures
        by kind and the answering hosts by vendor."""
        survey = self.survey(survey_id)
        with self.s.engine.connect() as conn:
            shards = conn.execute(
                select(SurveyShard.__table__)
                .where(SurveyShard.survey_id == survey_id, SurveyShard.state != "reissued")
                .order_by(SurveyShard.position)
            ).all()
            sweeping = _sweeping(conn, [sh.command_id for sh in shards if sh.state in OPEN_SHARDS])
            kinds = conn.execute(
                select(SurveyExposure.code, func.count())
                .where(SurveyExposure.survey_id == survey_id)
                .group_by(SurveyExposure.code)
                .order_by(SurveyExposure.code)
            ).all()
            vendors: Counter[str] = Counter()
            for vendor, n in conn.execute(
                select(HostRecord.vendor, func.count())
                .where(HostRecord.survey_id == survey_id)
                .group_by(HostRecord.vendor)
            ):
                vendors[vendor or ""] += n
        return SurveyDetail(
            survey,
            [_shard_view(sh, sweeping.get(sh.command_id)) for sh in shards],
            {str(code): int(n) for code, n in kinds},
            dict(sorted(vendors.items())),
        )


def _shard_view(sh: Any, so_far: int | None) -> ShardView:
    summary: dict[str, Any] = sh.summary or {}
    probed = summary.get("probed", so_far)
    done = _done(sh, so_far)
    return ShardView(
        sh.position, list(sh.blocks), sh.addresses, sh.agent_id, sh.command_id, sh.state,
        done, list(sh.parts), probed, summary.get("answered"),
        summary.get("complete"), summary.get("reason"), sh.updated_at,
    )  # fmt: skip


def _done(sh: Any, so_far: int | None) -> int:
    """A shard's addresses done: its summary's once finished; while it sweeps, what its agent
    said it probed so far (``_sweeping``)."""
    return max(int(sh.done), min(int(sh.addresses), so_far or 0))


def _sweeping(conn: Connection, command_ids: Sequence[str]) -> dict[str, int]:
    """Addresses probed so far by the shards whose command runs: the ``probed`` detail the agent
    sends with its ``sweeping`` step while the shard runs, and with ``reporting`` (a shard's
    parts come only after its sweep, and only the last part's summary counts what was probed;
    excluded and opted-out addresses count once the summary is in)."""
    if not command_ids:
        return {}
    found = {}
    for command_id, details in conn.execute(
        select(CommandRecord.command_id, CommandRecord.details).where(
            CommandRecord.command_id.in_(command_ids),
            CommandRecord.status == "in_progress",
            CommandRecord.step.in_(("sweeping", "reporting")),
        )
    ):
        probed = (details or {}).get("probed")
        if isinstance(probed, int) and not isinstance(probed, bool) and probed > 0:
            found[command_id] = probed
    return found


def _inside(net: Network, held: Network) -> bool:
    return net.version == held.version and net.subnet_of(held)  # type: ignore[arg-type]


def holdings(conn: Connection, org_id: int) -> list[tuple[int, Holding]]:
    """The provider's subscriber map: (row id, line) of every line."""
    return [
        (
            r.id,
            Holding(
                ipaddress.ip_network(r.prefix),
                r.subscriber_id,
                r.name,
                r.contact,
                r.province,
                r.district,
                r.valid_from,
                r.valid_to,
            ),
        )
        for r in conn.execute(
            select(SubscriberHolding.__table__).where(SubscriberHolding.org_unit_id == org_id)
        )
    ]


def record_part(conn: Connection, agent_id: str, result: SurveyResult, now: datetime) -> bool:
    """Merge one part of an agent's results on its shard (the scheduler calls it for every
    stored ``survey-result`` message; reading one again changes nothing). False when it is not
    for an open shard of that agent (unknown, someone else's, re-issued, or finished).

    Hosts outside the shard's blocks, or excluded or opted out in its command, are dropped
    (never reported even if an agent sent them); each host and exposure is attributed to the
    line of the subscriber map that held its address at the time. The shard is done when its
    last part and every part before it are in: ``done`` is then what the summary says was
    probed, and a summary that is not complete makes the shard ``failed`` (given again)."""
    shard = conn.execute(
        select(SurveyShard.__table__).where(
            SurveyShard.command_id == result.command_id,
            SurveyShard.agent_id == agent_id,
            SurveyShard.state.in_(OPEN_SHARDS),
        )
    ).one_or_none()
    if shard is None or result.part in shard.parts:
        return False
    org_id = conn.execute(
        select(Survey.org_unit_id).where(Survey.id == shard.survey_id)
    ).scalar_one()
    mapped = holdings(conn, org_id)
    sent = conn.execute(
        select(CommandRecord.params).where(CommandRecord.command_id == result.command_id)
    ).scalar_one()
    scope = SurveyParams.parse(sent).scope()  # the collector's own params: they parse
    for host in result.hosts:
        if scope.allows(host.address):
            _host(conn, shard, host, holdings=mapped, at=result.issued_at)
    parts = sorted({*shard.parts, result.part})
    summary = shard.summary
    if result.summary is not None:
        summary = msgspec.to_builtins(result.summary)
    values: dict[str, Any] = {"parts": parts, "summary": summary, "state": "running"}
    if summary is not None and parts == list(range(1, summary["parts"] + 1)):
        touched = summary["probed"] + summary["excluded"] + summary["opted_out"]
        values["done"] = min(shard.addresses, touched)
        values["state"] = "done" if summary["complete"] else "failed"
    conn.execute(
        update(SurveyShard).where(SurveyShard.id == shard.id).values(updated_at=now, **values)
    )
    if values["state"] == "done":
        _finish_if_complete(conn, shard.survey_id, org_id, now)
    return True


def _finish_if_complete(conn: Connection, survey_id: int, org_id: int, now: datetime) -> None:
    left = conn.execute(
        select(SurveyShard.id).where(
            SurveyShard.survey_id == survey_id,
            SurveyShard.state.in_((*OPEN_SHARDS, "failed")),
        )
    ).first()
    if left is None:
        conn.execute(
            update(Survey).where(Survey.id == survey_id).values(state="done", finished_at=now)
        )
        close_survey(conn, survey_id, org_id, now)


def _host(
    conn: Connection,
    shard: Any,
    host: SurveyHost,
    *,
    holdings: list[tuple[int, Holding]],
    at: datetime,
) -> None:
    """Store a host the shard's scope allows (a valid address inside the shard's blocks)."""
    address = ipaddress.ip_address(host.address)
    found = holder(address, at, [h for _, h in holdings])
    holding_id = next((i for i, h in holdings if h is found), None)
    key = {"survey_id": shard.survey_id, "address": str(address)}
    if conn.execute(select(HostRecord.id).filter_by(**key)).first() is not None:
        return  # a re-issued shard's second answer: the first one stands
    ident = host.identity
    conn.execute(
        insert(HostRecord).values(
            shard_id=shard.id,
            ports=list(host.ports),
            vendor=ident.vendor,
            model=ident.model,
            firmware=ident.firmware,
            complete=host.complete,
            observed_at=at,
            holding_id=holding_id,
            **key,
        )
    )
    for e in host.exposures:
        conn.execute(
            insert(SurveyExposure).values(
                shard_id=shard.id,
                port=e.port or 0,
                vendor=ident.vendor,
                model=ident.model,
                code=e.code,
                severity=SEVERITY.get(e.code, "medium"),
                evidence=dict(e.evidence),
                observed_at=at,
                holding_id=holding_id,
                **key,
            )
        )
