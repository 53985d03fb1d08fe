"""The audit log of actions, as administrators read it (their own subtree's only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from server.domain.scope import Area
from server.storage.org_models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    username: str
    action: str
    target_type: str
    target_id: str
    outcome: str
    detail: dict[str, Any]


class AuditLog(Area):
    """The audit log, read through a scope."""

    __slots__ = ()

    def audit(self, limit: int = 200) -> list[AuditView]:
        self.s.require("admin")
        q = select(AuditEntry.__table__).order_by(AuditEntry.id.desc()).limit(limit)
        q = q.where(self.s.unit_visible(AuditEntry.org_unit_id))
        with self.s.engine.connect() as conn:
            return [
                AuditView(
                    r.id,
                    r.at,
                    r.username,
                    r.action,
                    r.target_type,
                    r.target_id,
                    r.outcome,
                    r.detail,
                )
                for r in conn.execute(q).all()
            ]
