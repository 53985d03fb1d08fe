"""The raw facts of a compliance report for one organisation subtree and period."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from server.domain.model_register import ModelRegister
from server.domain.orgs import SecurityRecord, security_record
from server.domain.register import Inv02, ModelMatcher, inv02_status
from server.domain.scope import Area, Invalid
from server.storage.models import Agent, Camera, Finding, Message, kev_failing
from server.storage.org_models import (
    AlertEvent,
    InformationSystem,
    OrgUnit,
    PrunedMessage,
    nearest_zone,
    unit_zones,
)


@dataclass(frozen=True, slots=True)
class ReportNode:
    id: int
    parent_id: int | None
    kind: str
    name: str
    path: str
    site: str | None


@dataclass(frozen=True, slots=True)
class ReportDevice:
    site: str
    checked: bool  # fully audited now, and audited or reported by its agent within the period
    kev: bool  # a failing known-exploited finding now
    inv02: Inv02
    audit: str  # AuditState now
    password_reused: bool  # its password is used on another camera of the report's subtree


@dataclass(frozen=True, slots=True)
class ReportEpisode:
    site: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """The raw facts of a compliance report for one org subtree and period (UTC days)."""

    org: ReportNode
    start: date
    end: date  # inclusive
    generated_at: datetime
    generated_by: str
    nodes: list[ReportNode]
    records: dict[int, SecurityRecord]  # by system org unit id
    devices: list[ReportDevice]
    critical: list[ReportEpisode]  # critical-finding episodes touching the period
    zone: str | None  # the org's time zone, own or inherited (None: the collector's)


class Reports(Area):
    """Compliance report facts of a scope."""

    __slots__ = ()

    def report_data(self, org_id: int, start: date, end: date) -> ReportData:
        if end < start:
            raise Invalid("the period ends before it starts")
        begin = datetime.combine(start, datetime.min.time(), UTC)
        stop = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
        with self.s.engine.connect() as conn:
            root = self.s.org_row(conn, org_id)
            zone = nearest_zone(root.path, unit_zones(conn))
            nodes = [
                ReportNode(o.id, o.parent_id, o.kind, o.name, o.path, o.site)
                for o in conn.execute(
                    select(OrgUnit.__table__)
                    .where(OrgUnit.path.startswith(root.path))
                    .order_by(OrgUnit.path)
                )
            ]
            records = {
                r.org_unit_id: security_record(r)
                for r in conn.execute(
                    select(InformationSystem.__table__).where(
                        InformationSystem.org_unit_id.in_([n.id for n in nodes])
                    )
                )
            }
            sites = select(OrgUnit.site).where(
                OrgUnit.kind == "site", OrgUnit.path.startswith(root.path)
            )
            in_org = Agent.agent_id.in_(select(Agent.agent_id).where(Agent.site.in_(sites)))
            reporting = set(
                conn.execute(
                    select(Message.agent_id)
                    .where(
                        Message.type == "report",
                        Message.received_at >= begin,
                        Message.received_at < stop,
                        Message.agent_id.in_(select(Agent.agent_id).where(in_org)),
                    )
                    .union(
                        select(PrunedMessage.agent_id).where(
                            PrunedMessage.type == "report",
                            PrunedMessage.received_at >= begin,
                            PrunedMessage.received_at < stop,
                        )
                    )
                ).scalars()
            )
            kev = set(
                conn.execute(
                    select(Finding.agent_id, Finding.camera_id).where(
                        kev_failing(),
                        Finding.agent_id.in_(select(Agent.agent_id).where(in_org)),
                    )
                ).all()
            )
            cameras = conn.execute(
                select(
                    Camera.agent_id, Camera.camera_id, Camera.site, Camera.identity,
                    Camera.audited_at, Camera.audit, Camera.password_key_id,
                    Camera.password_fingerprint,
                ).where(Camera.agent_id.in_(select(Agent.agent_id).where(in_org)))
            ).all()  # fmt: skip
            episodes = [
                ReportEpisode(e.site, e.opened_at, e.closed_at)
                for e in conn.execute(
                    select(AlertEvent.site, AlertEvent.opened_at, AlertEvent.closed_at).where(
                        AlertEvent.kind == "finding",
                        AlertEvent.severity == "critical",
                        AlertEvent.site.in_(sites),
                        AlertEvent.opened_at < stop,
                        (AlertEvent.closed_at.is_(None)) | (AlertEvent.closed_at >= begin),
                    )
                )
            ]
        matcher = ModelMatcher(ModelRegister(self.s).model_register())
        # AUTH-03 within the report's subtree: one password (fingerprint under one key) on
        # more than one of its cameras
        passwords = Counter(
            (c.password_key_id, c.password_fingerprint)
            for c in cameras
            if c.password_fingerprint is not None
        )
        devices = [
            ReportDevice(
                c.site,
                c.audit == "audited"
                and (
                    c.agent_id in reporting
                    or (c.audited_at is not None and begin <= c.audited_at < stop)
                ),
                (c.agent_id, c.camera_id) in kev,
                inv02_status(
                    matcher.match(
                        c.identity.get("vendor"),
                        c.identity.get("model"),
                        c.identity.get("hardware_id"),
                        c.identity.get("firmware"),
                    )
                ),
                c.audit,
                passwords[(c.password_key_id, c.password_fingerprint)] > 1,
            )
            for c in cameras
        ]
        org = next(n for n in nodes if n.id == root.id)
        return ReportData(
            org, start, end, self.s.now, self.s.p.username, nodes, records, devices, episodes, zone
        )
