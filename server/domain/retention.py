"""How long raw reports are kept per security level (whole-fleet administrators change it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from server.domain.scope import Area, Invalid
from server.storage import read_then_write
from server.storage.org_models import LEVELS, RetentionPolicy


@dataclass(frozen=True, slots=True)
class Retention:
    level: int
    raw_reports_days: int
    updated_at: datetime
    updated_by: str | None


class RetentionPolicies(Area):
    """The retention policy per security level, through a scope."""

    __slots__ = ()

    def retention(self) -> list[Retention]:
        with self.s.engine.connect() as conn:
            return [
                Retention(r.level, r.raw_reports_days, r.updated_at, r.updated_by)
                for r in conn.execute(
                    select(RetentionPolicy.__table__).order_by(RetentionPolicy.level)
                ).all()
            ]

    def set_retention(self, level: int, days: int) -> Retention:
        with self.s.action("retention.set", "retention", level) as act:
            self.s.require("admin")
            self.s.require_whole_fleet()
            if level not in LEVELS or days < 1:
                raise Invalid("level is 1 to 5 and days at least 1")
            act.detail = {"raw_reports_days": days}
            with read_then_write(self.s.engine) as conn:
                conn.execute(
                    update(RetentionPolicy)
                    .where(RetentionPolicy.level == level)
                    .values(
                        raw_reports_days=days, updated_at=self.s.now, updated_by=self.s.p.username
                    )
                )
        return next(r for r in self.retention() if r.level == level)
