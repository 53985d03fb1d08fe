"""The read side of the collector: what operators ask of the stored fleet state.

Pure SQLAlchemy Core selects over the tables the ingest projection maintains; nothing here
writes. The dashboard and API build on the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from server.storage.models import Agent, Camera, Finding

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True, slots=True)
class AgentLine:
    agent_id: str
    site: str
    status: str
    last_seen: datetime | None
    cameras: int
    reachable: int


@dataclass(frozen=True, slots=True)
class FleetSummary:
    agents: tuple[AgentLine, ...]
    failing_by_severity: dict[str, int]  # open (status fail) findings per severity
    cameras_failing: int  # cameras with at least one failed check
    # cameras whose audit did not complete (login failed, unreachable, ...): never clean
    cameras_not_audited: int

    def text(self, now: datetime) -> str:
        lines = [f"{'agent':<20} {'site':<14} {'status':<9} {'cameras':>8}  last seen"]
        for a in self.agents:
            seen = f"{(now - a.last_seen).total_seconds():.0f} s ago" if a.last_seen else "never"
            cams = f"{a.reachable}/{a.cameras}"
            lines.append(f"{a.agent_id:<20} {a.site:<14} {a.status:<9} {cams:>8}  {seen}")
        total = sum(a.cameras for a in self.agents)
        counts = ", ".join(f"{n} {sev}" for sev, n in self.failing_by_severity.items() if n)
        lines.append(
            f"{total} cameras, {self.cameras_failing} with failed checks"
            + (f" ({counts} findings)" if counts else "")
            + f", {self.cameras_not_audited} not fully audited"
        )
        return "\n".join(lines)


def fleet_summary(engine: Engine) -> FleetSummary:
    with engine.connect() as conn:
        per_agent = {
            row.agent_id: (row.cameras, row.reachable)
            for row in conn.execute(
                select(
                    Camera.agent_id,
                    func.count().label("cameras"),
                    # PostgreSQL cannot cast a boolean to bigint: count the true ones
                    func.sum(case((Camera.reachable, 1), else_=0)).label("reachable"),
                ).group_by(Camera.agent_id)
            )
        }
        agents = tuple(
            AgentLine(
                row.agent_id,
                row.site,
                row.status,
                row.last_seen,
                per_agent.get(row.agent_id, (0, 0))[0],
                int(per_agent.get(row.agent_id, (0, 0))[1] or 0),
            )
            for row in conn.execute(
                select(Agent.agent_id, Agent.site, Agent.status, Agent.last_seen).order_by(
                    Agent.site, Agent.agent_id
                )
            )
        )
        failing = Finding.status == "fail"
        by_severity = dict.fromkeys(SEVERITIES, 0)
        for severity, count in conn.execute(
            select(Finding.severity, func.count()).where(failing).group_by(Finding.severity)
        ):
            by_severity[severity] = count
        cameras_failing = conn.execute(
            select(func.count()).select_from(
                select(Finding.agent_id, Finding.camera_id).where(failing).distinct().subquery()
            )
        ).scalar_one()
        not_audited = conn.execute(
            select(func.count()).select_from(Camera).where(Camera.audit != "audited")
        ).scalar_one()
    return FleetSummary(agents, by_severity, cameras_failing, not_audited)
