"""From the current state to alert events and deliveries, and the daily trend snapshot.

An event is an episode: a critical finding failing on a camera (key: agent, camera, code), a
camera whose audit did not complete (key: agent, camera, audit state: a camera whose login
failed and then stopped answering ends one episode and starts another) or an approved agent
silent for longer than the threshold (key: agent). ``sync`` opens an event when
an episode starts and closes it when it ends; while it is open nothing new is created, which is
what deduplicates alerts. Each new event gets one pending delivery per enabled route whose org
node is the event's site or an ancestor of it (whole-fleet routes get every event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from server.storage.models import Agent, Camera, Finding
from server.storage.org_models import (
    AlertDelivery,
    AlertEvent,
    AlertRoute,
    DailySnapshot,
    OrgUnit,
    nearest_zone,
    unit_zones,
)
from server.storage.repository import read_then_write

ALERT_SEVERITY = "critical"
# a camera that could not be audited: its verdicts are unknown, so it is alerted like a high
# finding; "partial" still has verdicts for part of the checks
AUDIT_SEVERITY = {"partial": "medium"}


@dataclass(frozen=True, slots=True)
class SyncResult:
    opened: int
    closed: int
    deliveries: int


def sync(engine: Engine, now: datetime, silent_after: timedelta) -> SyncResult:
    with read_then_write(engine) as conn:
        new_ids, closed = _sync_findings(conn, now)
        audit_ids, audited = _sync_audit(conn, now)
        silent_ids, back = _sync_silent(conn, now, silent_after)
        deliveries = _route(conn, [*new_ids, *audit_ids, *silent_ids], now)
    opened = len(new_ids) + len(audit_ids) + len(silent_ids)
    return SyncResult(opened, closed + audited + back, deliveries)


def _open(conn: Connection, kind: str) -> dict[tuple[str, str, str], int]:
    return {
        (r.agent_id, r.camera_id, r.code): r.id
        for r in conn.execute(
            select(AlertEvent.id, AlertEvent.agent_id, AlertEvent.camera_id, AlertEvent.code).where(
                AlertEvent.kind == kind, AlertEvent.closed_at.is_(None)
            )
        )
    }


def _close(conn: Connection, ids: list[int], now: datetime) -> int:
    if ids:
        conn.execute(update(AlertEvent).where(AlertEvent.id.in_(ids)).values(closed_at=now))
    return len(ids)


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    return [
        conn.execute(insert(AlertEvent).values(r).returning(AlertEvent.id)).scalar_one()
        for r in rows
    ]


def _episodes(
    conn: Connection, kind: str, current: dict[tuple[str, str, str], dict[str, Any]], now: datetime
) -> tuple[list[int], int]:
    """Close the open events of ``kind`` whose (agent, camera, code) is no longer current, open
    one for each current key without an open event; ``current`` maps keys to site, severity
    and detail."""
    opened = _open(conn, kind)
    closed = _close(conn, [i for key, i in opened.items() if key not in current], now)
    rows = [
        {
            "kind": kind,
            "agent_id": agent_id,
            "camera_id": camera_id,
            "code": code,
            **fields,
            "opened_at": now,
            "closed_at": None,
        }
        for (agent_id, camera_id, code), fields in sorted(current.items())
        if (agent_id, camera_id, code) not in opened
    ]
    return _insert(conn, rows), closed


def _sync_findings(conn: Connection, now: datetime) -> tuple[list[int], int]:
    current = {
        (r.agent_id, r.camera_id, r.code): {
            "site": r.site,
            "severity": r.severity,
            "detail": {"evidence": r.evidence, "identity": r.identity},
        }
        for r in conn.execute(
            select(
                Finding.agent_id,
                Finding.camera_id,
                Finding.code,
                Finding.severity,
                Finding.evidence,
                Camera.site,
                Camera.identity,
            )
            .join(
                Camera,
                and_(Camera.agent_id == Finding.agent_id, Camera.camera_id == Finding.camera_id),
            )
            .where(Finding.status == "fail", Finding.severity == ALERT_SEVERITY)
        )
    }
    return _episodes(conn, "finding", current, now)


def _sync_audit(conn: Connection, now: datetime) -> tuple[list[int], int]:
    """A camera whose audit did not complete; its code is the audit state."""
    current = {
        (r.agent_id, r.camera_id, r.audit): {
            "site": r.site,
            "severity": AUDIT_SEVERITY.get(r.audit, "high"),
            "detail": {"reason": r.audit_reason, "identity": r.identity},
        }
        for r in conn.execute(
            select(
                Camera.agent_id,
                Camera.camera_id,
                Camera.audit,
                Camera.audit_reason,
                Camera.site,
                Camera.identity,
            ).where(Camera.audit != "audited")
        )
    }
    return _episodes(conn, "audit", current, now)


def _sync_silent(conn: Connection, now: datetime, silent_after: timedelta) -> tuple[list[int], int]:
    silent = {
        r.agent_id: r
        for r in conn.execute(
            select(Agent.agent_id, Agent.site, Agent.last_seen).where(
                Agent.status == "approved",
                Agent.last_seen.is_not(None),
                Agent.last_seen < now - silent_after,
            )
        )
    }
    opened = _open(conn, "silent")
    closed = _close(conn, [i for (a, _, _), i in opened.items() if a not in silent], now)
    known = {a for a, _, _ in opened}
    rows = [
        {
            "kind": "silent",
            "agent_id": r.agent_id,
            "camera_id": "",
            "code": "",
            "site": r.site,
            "severity": "high",
            "detail": {"last_seen": r.last_seen.isoformat()},
            "opened_at": now,
            "closed_at": None,
        }
        for agent_id, r in sorted(silent.items())
        if agent_id not in known
    ]
    return _insert(conn, rows), closed


def _route(conn: Connection, event_ids: list[int], now: datetime) -> int:
    """One pending delivery per (new event, matching route)."""
    if not event_ids:
        return 0
    routes = conn.execute(
        select(AlertRoute.id, AlertRoute.kinds, OrgUnit.path)
        .outerjoin(OrgUnit, OrgUnit.id == AlertRoute.org_unit_id)
        .where(AlertRoute.enabled.is_(True))
    ).all()
    if not routes:
        return 0
    site_paths = dict(
        conn.execute(select(OrgUnit.site, OrgUnit.path).where(OrgUnit.kind == "site")).all()
    )
    rows = []
    for event in conn.execute(
        select(AlertEvent.id, AlertEvent.kind, AlertEvent.site).where(AlertEvent.id.in_(event_ids))
    ):
        site_path = site_paths.get(event.site)
        for route_id, kinds, path in routes:
            inherited = path is None or (site_path is not None and site_path.startswith(path))
            if event.kind in kinds and inherited:
                rows.append(
                    {
                        "event_id": event.id,
                        "route_id": route_id,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
    if rows:
        conn.execute(insert(AlertDelivery), rows)
    return len(rows)


def snapshot(engine: Engine, day: date) -> int:
    """Replace ``day``'s trend rows with the current open findings per site and severity."""
    fails = (
        select(Camera.site, Finding.severity, Finding.agent_id, Finding.camera_id)
        .join(
            Camera,
            and_(Camera.agent_id == Finding.agent_id, Camera.camera_id == Finding.camera_id),
        )
        .where(Finding.status == "fail")
        .subquery()
    )
    cameras = func.count(func.distinct(fails.c.agent_id + "/" + fails.c.camera_id))
    with read_then_write(engine) as conn:
        rows = [
            {"day": day, "site": site, "severity": sev, "open_findings": n, "cameras": c}
            for site, sev, n, c in conn.execute(
                select(fails.c.site, fails.c.severity, func.count(), cameras).group_by(
                    fails.c.site, fails.c.severity
                )
            )
        ]
        conn.execute(delete(DailySnapshot).where(DailySnapshot.day == day))
        if rows:
            conn.execute(insert(DailySnapshot), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Due:
    """The deliveries due now, with what their payloads name: each site's org path and names,
    and the time zones units set (e-mails show times in the zone of the alert's site)."""

    deliveries: Sequence[Any]  # rows: delivery, route and event columns
    site_paths: dict[str, str]
    names: dict[int, str]
    zones: dict[int, str]

    def zone_name(self, site: str) -> str | None:
        """The zone of ``site``'s unit, own or inherited; None: the collector's."""
        path = self.site_paths.get(site)
        return None if path is None else nearest_zone(path, self.zones)

    def org_names(self, site: str) -> list[str]:
        """The names of the org units from the top down to ``site`` (none when unmapped)."""
        path = self.site_paths.get(site)
        if path is None:
            return []
        ids = [int(part) for part in path.strip("/").split("/")]
        return [self.names[i] for i in ids if i in self.names]


def due_deliveries(engine: Engine, now: datetime) -> Due:
    with engine.connect() as conn:
        due = conn.execute(
            select(
                AlertDelivery.id.label("delivery_id"),
                AlertDelivery.attempts,
                AlertRoute.channel,
                AlertRoute.target,
                AlertRoute.secret,
                AlertRoute.name,
                AlertEvent.id.label("event_id"),
                AlertEvent.kind,
                AlertEvent.agent_id,
                AlertEvent.camera_id,
                AlertEvent.code,
                AlertEvent.site,
                AlertEvent.severity,
                AlertEvent.detail,
                AlertEvent.opened_at,
            )
            .join(AlertRoute, AlertRoute.id == AlertDelivery.route_id)
            .join(AlertEvent, AlertEvent.id == AlertDelivery.event_id)
            .where(
                AlertDelivery.state == "pending",
                AlertDelivery.next_attempt_at <= now,
                # a silenced alert waits (server.domain.alert_workflow)
                or_(AlertEvent.silenced_until.is_(None), AlertEvent.silenced_until <= now),
            )
            .order_by(AlertDelivery.id)
        ).all()
        sites = conn.execute(select(OrgUnit.site, OrgUnit.path).where(OrgUnit.kind == "site"))
        site_paths = {site: path for site, path in sites if site is not None}
        names = dict(conn.execute(select(OrgUnit.id, OrgUnit.name)).all())
        zones = unit_zones(conn)
    return Due(due, site_paths, names, zones)


def delivery_sent(engine: Engine, delivery_id: int, attempts: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id)
            .values(state="sent", attempts=attempts, sent_at=now, last_error=None)
        )


def delivery_failed(
    engine: Engine, delivery_id: int, *, attempts: int, error: str, final: bool, retry_at: datetime
) -> None:
    """A failed attempt: ``failed`` for good when ``final``, else pending until ``retry_at``."""
    with engine.begin() as conn:
        conn.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id)
            .values(
                state="failed" if final else "pending",
                attempts=attempts,
                last_error=error,
                next_attempt_at=retry_at,
            )
        )
