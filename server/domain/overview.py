"""The dashboard's front-page figures: the fleet at a glance and the open-findings trend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, select

from server.domain.cameras import AUDIT_STATES
from server.domain.orgs import audit_sums, failing_sums
from server.domain.scope import Area
from server.domain.summary import SEVERITIES
from server.storage.models import Agent, Camera
from server.storage.org_models import DailySnapshot, InformationSystem, OrgUnit


@dataclass(frozen=True, slots=True)
class Fleet:
    cameras: int
    reachable: int
    cameras_failing: int
    cameras_not_audited: int  # counted apart: never among the compliant ones
    cameras_compliant: int  # audited, and no check failed
    audit: dict[str, int]  # cameras per audit state (AUDIT_STATES)
    agents: dict[str, int]  # online, silent, pending, revoked
    failing: dict[str, int]
    overdue_systems: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    day: date
    open_findings: dict[str, int]


class Overview(Area):
    """The front-page figures of a scope."""

    __slots__ = ()

    def fleet(self) -> Fleet:
        visible = self.s.agent_visible()
        silent_before = self.s.now - self.s.silent_after
        with self.s.engine.connect() as conn:
            cams: Sequence[Any] = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((Camera.reachable, 1), else_=0)), 0),
                    *audit_sums(),
                    *failing_sums(),
                ).where(self.s.agent_visible(Camera.agent_id))
            ).one()
            audit = dict.fromkeys(AUDIT_STATES, 0)
            for state_, n in conn.execute(
                select(Camera.audit, func.count())
                .where(self.s.agent_visible(Camera.agent_id))
                .group_by(Camera.audit)
            ):
                audit[state_] = n
            states = dict.fromkeys(("online", "silent", "pending", "revoked"), 0)
            state = case(
                (Agent.status == "pending", "pending"),
                (Agent.status == "revoked", "revoked"),
                (Agent.last_seen >= silent_before, "online"),
                else_="silent",
            )
            for name, n in conn.execute(select(state, func.count()).where(visible).group_by(state)):
                states[name] = n
            cameras_failing = int(cams[4])
            failing = {sev: int(n) for sev, n in zip(SEVERITIES, cams[5:], strict=True)}
            overdue = conn.execute(
                select(func.count())
                .select_from(InformationSystem)
                .join(OrgUnit, OrgUnit.id == InformationSystem.org_unit_id)
                .where(self.s.org_visible(), InformationSystem.next_check_due < self.s.today)
            ).scalar_one()
        return Fleet(
            cams[0],
            int(cams[1]),
            cameras_failing,
            int(cams[2] or 0),
            int(cams[3] or 0),
            audit,
            states,
            failing,
            overdue,
        )

    def trend(self, days: int = 30) -> list[TrendPoint]:
        """Open findings per day and severity over the last ``days`` days (daily snapshots)."""
        first = self.s.today - timedelta(days=days - 1)
        per_day: dict[date, dict[str, int]] = {}
        with self.s.engine.connect() as conn:
            for day, sev, n in conn.execute(
                select(
                    DailySnapshot.day,
                    DailySnapshot.severity,
                    func.sum(DailySnapshot.open_findings),
                )
                .where(DailySnapshot.day >= first, self.s.site_visible(DailySnapshot.site))
                .group_by(DailySnapshot.day, DailySnapshot.severity)
            ):
                per_day.setdefault(day, dict.fromkeys(SEVERITIES, 0))[sev] = int(n)
        return [TrendPoint(day, counts) for day, counts in sorted(per_day.items())]
