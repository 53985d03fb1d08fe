"""Alert routes (where a subtree's alerts go) and the alert events in scope, with deliveries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from server.domain.scope import Area, Invalid, NotVisible
from server.domain.security import new_secret
from server.storage import read_then_write
from server.storage.org_models import (
    ALERT_KINDS,
    ROUTE_CHANNELS,
    AlertDelivery,
    AlertEvent,
    AlertRoute,
)


@dataclass(frozen=True, slots=True)
class RouteView:
    id: int
    org_unit_id: int | None
    name: str
    channel: str
    target: str
    kinds: list[str]
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeliveryView:
    route: str
    state: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    kind: str
    agent_id: str
    camera_id: str | None
    code: str | None
    site: str
    severity: str
    opened_at: datetime
    closed_at: datetime | None
    deliveries: list[DeliveryView]


class Alerts(Area):
    """Alert routes and events of a scope."""

    __slots__ = ()

    def alert_routes(self) -> list[RouteView]:
        self.s.require("operator")
        with self.s.engine.connect() as conn:
            return [
                RouteView(r.id, r.org_unit_id, r.name, r.channel, r.target, r.kinds, r.enabled)
                for r in conn.execute(
                    select(AlertRoute.__table__)
                    .where(self.s.unit_visible(AlertRoute.org_unit_id))
                    .order_by(AlertRoute.id)
                ).all()
            ]

    def create_alert_route(
        self, *, org_unit_id: int | None, name: str, channel: str, target: str, kinds: list[str]
    ) -> tuple[RouteView, str | None]:
        """A route for alerts of ``org_unit_id``'s subtree; a webhook's HMAC secret is returned
        once (it is stored to sign with, but never shown again)."""
        with self.s.action("alert_route.create", "alert_route", name) as act:
            self.s.require("admin")
            if channel not in ROUTE_CHANNELS or not kinds or set(kinds) - set(ALERT_KINDS):
                raise Invalid("channel is webhook or email; kinds are finding, silent, audit")
            with read_then_write(self.s.engine) as conn:
                if org_unit_id is None:
                    self.s.require_whole_fleet()
                else:
                    self.s.org_row(conn, org_unit_id)
                act.org_unit_id = org_unit_id
                secret = new_secret() if channel == "webhook" else None
                route_id = conn.execute(
                    insert(AlertRoute)
                    .values(
                        org_unit_id=org_unit_id,
                        name=name,
                        channel=channel,
                        target=target,
                        secret=secret,
                        kinds=sorted(set(kinds)),
                        enabled=True,
                        created_at=self.s.now,
                    )
                    .returning(AlertRoute.id)
                ).scalar_one()
            act.detail = {"id": route_id, "channel": channel, "target": target, "kinds": kinds}
        return next(r for r in self.alert_routes() if r.id == route_id), secret

    def delete_alert_route(self, route_id: int) -> None:
        with (
            self.s.action("alert_route.delete", "alert_route", route_id) as act,
            read_then_write(self.s.engine) as conn,
        ):
            route = conn.execute(
                select(AlertRoute.__table__).where(
                    AlertRoute.id == route_id, self.s.unit_visible(AlertRoute.org_unit_id)
                )
            ).one_or_none()
            if route is None:
                raise NotVisible(f"alert route {route_id}")
            act.org_unit_id = route.org_unit_id
            self.s.require("admin")
            if route.org_unit_id is None:
                self.s.require_whole_fleet()
            conn.execute(delete(AlertDelivery).where(AlertDelivery.route_id == route_id))
            conn.execute(delete(AlertRoute).where(AlertRoute.id == route_id))

    def alerts(self, limit: int = 200) -> list[AlertView]:
        """The newest alert events in scope with how their deliveries went."""
        with self.s.engine.connect() as conn:
            events = conn.execute(
                select(AlertEvent.__table__)
                .where(self.s.site_visible(AlertEvent.site))
                .order_by(AlertEvent.id.desc())
                .limit(limit)
            ).all()
            deliveries: dict[int, list[DeliveryView]] = defaultdict(list)
            for d in conn.execute(
                select(AlertDelivery.__table__, AlertRoute.name)
                .join(AlertRoute, AlertRoute.id == AlertDelivery.route_id)
                .where(AlertDelivery.event_id.in_([e.id for e in events]))
                .order_by(AlertDelivery.id)
            ):
                deliveries[d.event_id].append(
                    DeliveryView(d.name, d.state, d.attempts, d.last_error, d.sent_at)
                )
        return [
            AlertView(
                e.id,
                e.kind,
                e.agent_id,
                e.camera_id or None,
                e.code or None,
                e.site,
                e.severity,
                e.opened_at,
                e.closed_at,
                deliveries[e.id],
            )
            for e in events
        ]
