"""The agents in scope with their enrollment state; approving and revoking them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select

from server.domain.scope import Area, Invalid, NotVisible
from server.storage.models import Agent, Camera
from server.storage.org_models import OrgUnit

AgentState = Literal["online", "silent", "pending", "revoked"]


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    site: str
    system: str | None
    hostname: str | None
    status: str  # key status: pending | approved | revoked
    state: AgentState
    kid: str
    enrolled_at: datetime
    last_seen: datetime | None
    cameras: int


class Agents(Area):
    """The agents of a scope."""

    __slots__ = ()

    def _agent_state(self, status: str, last_seen: datetime | None) -> AgentState:
        if status in ("pending", "revoked"):
            return status  # type: ignore[return-value]
        if last_seen is not None and last_seen >= self.s.now - self.s.silent_after:
            return "online"
        return "silent"

    def agents(self, agent_id: str | None = None) -> list[AgentView]:
        cameras = (
            select(Camera.agent_id, func.count().label("n")).group_by(Camera.agent_id).subquery()
        )
        system = OrgUnit.__table__.alias("system")
        site = OrgUnit.__table__.alias("site_node")
        q = (
            select(
                Agent.__table__,
                func.coalesce(cameras.c.n, 0).label("n"),
                system.c.name.label("system_name"),
            )
            .outerjoin(cameras, cameras.c.agent_id == Agent.agent_id)
            .outerjoin(site, site.c.site == Agent.site)
            .outerjoin(system, system.c.id == site.c.parent_id)
            .where(self.s.agent_visible())
            .order_by(Agent.site, Agent.agent_id)
        )
        if agent_id is not None:
            q = q.where(Agent.agent_id == agent_id)
        with self.s.engine.connect() as conn:
            return [
                AgentView(
                    a.agent_id,
                    a.site,
                    a.system_name,
                    a.hostname,
                    a.status,
                    self._agent_state(a.status, a.last_seen),
                    a.kid,
                    a.enrolled_at,
                    a.last_seen,
                    a.n,
                )
                for a in conn.execute(q)
            ]

    def agent(self, agent_id: str) -> AgentView:
        found = self.agents(agent_id)
        if not found:
            raise NotVisible(f"agent {agent_id}")
        return found[0]

    def set_agent_status(self, agent_id: str, action: Literal["approve", "revoke"]) -> AgentView:
        with self.s.action(f"agent.{action}", "agent", agent_id) as act:
            current = self.agent(agent_id)
            with self.s.engine.connect() as conn:
                act.org_unit_id = self.s.site_unit(conn, current.site)
            self.s.require("operator")
            target = {"approve": "approved", "revoke": "revoked"}[action]
            act.detail = {"from": current.status}
            if not self.s.repo.set_status(agent_id, target, self.s.now):
                raise Invalid(f"agent {agent_id} is {current.status}; cannot {action}")
        return self.agent(agent_id)
