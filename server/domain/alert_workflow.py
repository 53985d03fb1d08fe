"""What people do with an alert: acknowledge it, silence it for a period, assign it to a user.

Operators and administrators may act on the alerts of the sites they see; viewers read. Every
change is kept twice: as an ``AlertAction`` row (the alert's own history, shown beside it) and
as an audit-log entry (``alert.<action>``). A silenced alert sends no delivery until its silence
ends (``server.alerts.worker``); acknowledging does not close it: an episode closes when the
camera or agent is fine again.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Connection, insert, select, update

from server.domain.scope import Area, Invalid, NotVisible
from server.storage.org_models import AlertAction, AlertEvent, User

SILENCE_HOURS: Final = (1, 4, 24, 72, 168)  # the periods offered, up to a week
Action = Literal["ack", "silence", "unsilence", "assign"]


@dataclass(frozen=True, slots=True)
class ActionView:
    at: datetime
    username: str
    action: str  # ack | silence | unsilence | assign
    until: datetime | None
    assignee: str | None


@dataclass(frozen=True, slots=True)
class AlertState:
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    silenced_until: datetime | None  # None, or a time still ahead
    assignee: str | None
    history: list[ActionView]
    evidence: dict[str, Any]  # of the finding that opened it, to name it in full
    vendor: str | None


def _detail(detail: object) -> tuple[dict[str, Any], str | None]:
    """The evidence and the camera's vendor an alert was opened with (``server.alerts``)."""
    if not isinstance(detail, dict):
        return {}, None
    evidence, identity = detail.get("evidence"), detail.get("identity")
    vendor = identity.get("vendor") if isinstance(identity, dict) else None
    return (evidence if isinstance(evidence, dict) else {}), (
        vendor if isinstance(vendor, str) else None
    )


@dataclass(frozen=True, slots=True)
class Assignable:
    id: int
    username: str


class AlertWorkflow(Area):
    """The handling of the alerts of a scope."""

    __slots__ = ()

    def states(self, event_ids: list[int]) -> dict[int, AlertState]:
        """The people's side of the visible events among ``event_ids``."""
        with self.s.engine.connect() as conn:
            rows = conn.execute(
                select(
                    AlertEvent.id,
                    AlertEvent.acknowledged_at,
                    AlertEvent.acknowledged_by,
                    AlertEvent.silenced_until,
                    AlertEvent.detail,
                    User.username,
                )
                .outerjoin(User, User.id == AlertEvent.assignee_id)
                .where(AlertEvent.id.in_(event_ids), self.s.site_visible(AlertEvent.site))
            ).all()
            history: dict[int, list[ActionView]] = defaultdict(list)
            for a in conn.execute(
                select(AlertAction.__table__)
                .where(AlertAction.event_id.in_([r.id for r in rows]))
                .order_by(AlertAction.id)
            ):
                history[a.event_id].append(
                    ActionView(a.at, a.username, a.action, a.until, a.assignee)
                )
        return {
            r.id: AlertState(
                r.acknowledged_at,
                r.acknowledged_by,
                r.silenced_until if r.silenced_until and r.silenced_until > self.s.now else None,
                r.username,
                history[r.id],
                *_detail(r.detail),
            )
            for r in rows
        }

    def assignable(self) -> list[Assignable]:
        """Users who may be given an alert: enabled operators and administrators the caller
        sees (a viewer cannot act on it)."""
        with self.s.engine.connect() as conn:
            return [
                Assignable(u.id, u.username)
                for u in conn.execute(
                    select(User.id, User.username)
                    .where(
                        self.s.unit_visible(User.org_unit_id),
                        User.disabled.is_(False),
                        User.role.in_(("operator", "admin")),
                    )
                    .order_by(User.username)
                )
            ]

    def act(
        self, event_id: int, action: str, *, hours: int | None = None, assignee: int | None = None
    ) -> AlertState:
        """One of the actions by name (a page's or the API's), then the alert's state."""
        if action == "ack":
            self.acknowledge(event_id)
        elif action == "silence":
            self.silence(event_id, hours or SILENCE_HOURS[0])
        elif action == "unsilence":
            self.unsilence(event_id)
        elif action == "assign":
            self.assign(event_id, assignee)
        else:
            raise Invalid(f"unknown action {action}")
        return self.states([event_id])[event_id]

    def acknowledge(self, event_id: int) -> None:
        with self._change(event_id, "ack") as conn:
            conn.execute(
                update(AlertEvent)
                .where(AlertEvent.id == event_id)
                .values(acknowledged_at=self.s.now, acknowledged_by=self.s.p.username)
            )

    def silence(self, event_id: int, hours: int) -> None:
        if hours not in SILENCE_HOURS:
            raise Invalid(f"a silence lasts one of {SILENCE_HOURS} hours")
        until = self.s.now + timedelta(hours=hours)
        with self._change(event_id, "silence", until=until, detail={"hours": hours}) as conn:
            conn.execute(
                update(AlertEvent).where(AlertEvent.id == event_id).values(silenced_until=until)
            )

    def unsilence(self, event_id: int) -> None:
        with self._change(event_id, "unsilence") as conn:
            conn.execute(
                update(AlertEvent).where(AlertEvent.id == event_id).values(silenced_until=None)
            )

    def assign(self, event_id: int, user_id: int | None) -> None:
        """Give the alert to ``user_id`` (one of ``assignable``), or to nobody (None)."""
        people = {a.id: a.username for a in self.assignable()}
        if user_id is not None and user_id not in people:
            raise Invalid(f"user {user_id} cannot be given this alert")
        name = people[user_id] if user_id is not None else None
        with self._change(event_id, "assign", assignee=name, detail={"assignee": name}) as conn:
            conn.execute(
                update(AlertEvent).where(AlertEvent.id == event_id).values(assignee_id=user_id)
            )

    @contextlib.contextmanager
    def _change(
        self,
        event_id: int,
        action: str,
        *,
        until: datetime | None = None,
        assignee: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> Iterator[Connection]:
        """One audited change of one visible alert, its history row in the same transaction."""
        with self.s.action(f"alert.{action}", "alert", event_id) as act:
            self.s.require("operator")
            with self.s.engine.begin() as conn:
                site = conn.execute(
                    select(AlertEvent.site).where(
                        AlertEvent.id == event_id, self.s.site_visible(AlertEvent.site)
                    )
                ).scalar_one_or_none()
                if site is None:
                    raise NotVisible(f"alert {event_id}")
                act.org_unit_id = self.s.site_unit(conn, site)
                act.detail = detail or {}
                yield conn
                conn.execute(
                    insert(AlertAction).values(
                        event_id=event_id,
                        at=self.s.now,
                        username=self.s.p.username,
                        action=action,
                        until=until,
                        assignee=assignee,
                    )
                )
