"""The agents in scope with their enrollment state; approving and revoking them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Select, func, select

from server.domain.scope import Area, Invalid, NotVisible, Paged
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


@dataclass(frozen=True, slots=True)
class AgentPage(Paged):
    items: list[AgentView]
    total: int
    page: int
    per_page: int


class Agents(Area):
    """The agents of a scope."""

    __slots__ = ()

    def _agent_state(self, status: str, last_seen: datetime | None) -> AgentState:
        if status in ("pending", "revoked"):
            return status  # type: ignore[return-value]
        if last_seen is not None and last_seen >= self.s.now - self.s.silent_after:
            return "online"
        return "silent"

    def _query(self) -> Select[Any]:
        system = OrgUnit.__table__.alias("system")
        site = OrgUnit.__table__.alias("site_node")
        return (
            select(Agent.__table__, system.c.name.label("system_name"))
            .outerjoin(site, site.c.site == Agent.site)
            .outerjoin(system, system.c.id == site.c.parent_id)
            .where(self.s.agent_visible())
        )

    def _views(self, conn: Connection, q: Select[Any]) -> list[AgentView]:
        """The agents of ``q``, with their cameras counted for them alone."""
        rows = conn.execute(q).all()
        counted = (
            select(Camera.agent_id, func.count())
            .where(Camera.agent_id.in_([a.agent_id for a in rows]))
            .group_by(Camera.agent_id)
        )
        cameras = {str(agent): int(n) for agent, n in conn.execute(counted)}
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
                cameras.get(a.agent_id, 0),
            )
            for a in rows
        ]

    def agents(self, agent_id: str | None = None) -> list[AgentView]:
        q = self._query().order_by(Agent.site, Agent.agent_id)
        if agent_id is not None:
            q = q.where(Agent.agent_id == agent_id)
        with self.s.engine.connect() as conn:
            return self._views(conn, q)

    def agent_page(self, page: int, per_page: int) -> AgentPage:
        """One page of the agents, in site order (the dashboard's list)."""
        with self.s.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(Agent).where(self.s.agent_visible())
            ).scalar_one()
            q = self._query().order_by(Agent.site, Agent.agent_id)
            items = self._views(conn, q.limit(per_page).offset((page - 1) * per_page))
        return AgentPage(items, total, page, per_page)

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
