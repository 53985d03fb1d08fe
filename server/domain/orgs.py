"""The organisation tree, information systems and their security records, and the compliance
counts of each part of the tree."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    case,
    func,
    insert,
    select,
    update,
)

from server.domain.scope import Area, Invalid, NotVisible
from server.domain.summary import SEVERITIES
from server.storage import read_then_write
from server.storage.models import FAIL_COLUMNS, Agent, Camera, fail_total
from server.storage.org_models import (
    PARENT_KINDS,
    InformationSystem,
    OrgUnit,
    nearest_zone,
    unit_zones,
)
from server.times import checked_zone


@dataclass(frozen=True, slots=True)
class OrgNode:
    id: int
    parent_id: int | None
    kind: str
    name: str
    site: str | None
    depth: int
    timezone: str | None = None  # set on this unit (None: inherited)
    zone: str | None = None  # what its times are shown in (None: the collector's zone)


@dataclass(frozen=True, slots=True)
class SecurityRecord:
    framework: str
    level: int
    decision_number: str | None
    decision_date: date | None
    plan_status: str
    next_check_due: date | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Cameras of a part of the tree. A camera is compliant only when its audit completed and no
    check failed; one whose audit did not complete is counted as not audited, never as compliant,
    and the part is compliant only when every camera of it is."""

    cameras: int = 0
    cameras_failing: int = 0
    failing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    cameras_not_audited: int = 0
    cameras_compliant: int = 0
    compliant: bool = False  # every camera audited with no failed check (and at least one)


def _counts(
    cameras: int, failing_cams: int, failing: dict[str, int], not_audited: int, clean: int
) -> Counts:
    return Counts(
        cameras, failing_cams, failing, not_audited, clean, cameras > 0 and clean == cameras
    )


@dataclass(frozen=True, slots=True)
class SystemView:
    id: int
    name: str
    agency: str
    record: SecurityRecord | None
    overdue: bool
    counts: Counts


@dataclass(frozen=True, slots=True)
class OrgCompliance:
    node: OrgNode
    counts: Counts


@dataclass(frozen=True, slots=True)
class Compliance:
    orgs: list[OrgCompliance]
    systems: list[SystemView]
    unassigned: Counts | None  # cameras of sites not in the tree (whole-fleet users only)


def audit_sums() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Per group of cameras: how many were not fully audited, and how many are compliant
    (audited, and no check failed). Sums over the ``cameras`` table in the query's FROM."""
    audited = Camera.audit == "audited"
    return (
        func.coalesce(func.sum(case((audited, 0), else_=1)), 0),
        func.coalesce(func.sum(case((and_(audited, fail_total() == 0), 1), else_=0)), 0),
    )


def failing_sums() -> tuple[ColumnElement[Any], ...]:
    """Per group of cameras: how many have a failed check, then their failed findings of each
    severity (``SEVERITIES`` order). Sums of the summary columns ingest keeps on ``cameras``."""
    return (
        func.coalesce(func.sum(case((fail_total() > 0, 1), else_=0)), 0),
        *(func.coalesce(func.sum(FAIL_COLUMNS[sev]), 0) for sev in SEVERITIES),
    )


def zone_name(engine: Engine, path: str | None) -> str | None:
    """The zone times of the unit at ``path`` are shown in (its own or inherited); None: the
    collector's (also for whole-fleet users, ``path`` None)."""
    if path is None:
        return None
    with engine.connect() as conn:
        return nearest_zone(path, unit_zones(conn))


def _sum(parts: list[Counts]) -> Counts:
    failing = dict.fromkeys(SEVERITIES, 0)
    for c in parts:
        for sev, n in c.failing.items():
            failing[sev] = failing.get(sev, 0) + n
    return _counts(
        sum(c.cameras for c in parts),
        sum(c.cameras_failing for c in parts),
        failing,
        sum(c.cameras_not_audited for c in parts),
        sum(c.cameras_compliant for c in parts),
    )


def security_record(r: Row[Any]) -> SecurityRecord:
    """A row of ``information_systems`` as its record."""
    return SecurityRecord(
        r.framework, r.level, r.decision_number, r.decision_date, r.plan_status, r.next_check_due
    )


def _system_view(
    today: date, oid: int, name: str, agency: str, r: Row[Any] | None, *, counts: Counts
) -> SystemView:
    record = security_record(r) if r else None
    overdue = bool(record and record.next_check_due and record.next_check_due < today)
    return SystemView(oid, name, agency, record, overdue, counts)


class Orgs(Area):
    """The organisation tree, information systems and compliance counts of a scope."""

    __slots__ = ()

    def _node(self, o: Row[Any], zones: dict[int, str]) -> OrgNode:
        base = 0 if self.s.p.org_path is None else self.s.p.org_path.count("/") - 2
        depth = o.path.count("/") - 2 - base
        zone = nearest_zone(o.path, zones)
        return OrgNode(o.id, o.parent_id, o.kind, o.name, o.site, depth, o.timezone, zone)

    def org_tree(self) -> list[OrgNode]:
        with self.s.engine.connect() as conn:
            rows = conn.execute(
                select(OrgUnit.__table__).where(self.s.org_visible()).order_by(OrgUnit.path)
            ).all()
            zones = unit_zones(conn)
        return [self._node(o, zones) for o in rows]

    def org(self, org_id: int) -> OrgNode:
        with self.s.engine.connect() as conn:
            o = self.s.org_row(conn, org_id)
            zones = unit_zones(conn)
        return self._node(o, zones)

    def set_timezone(self, org_id: int, name: str | None) -> OrgNode:
        """Set the zone the unit's part of the tree shows times in (an IANA name), or clear it
        (None: inherited from above, at the top the collector's ``[web] timezone``)."""
        with self.s.action("org.timezone", "org", org_id) as act:
            self.s.require("admin")
            if name is not None:
                try:
                    checked_zone(name)
                except ValueError as exc:
                    raise Invalid(str(exc)) from None
            with read_then_write(self.s.engine) as conn:
                unit = self.s.org_row(conn, org_id)
                act.org_unit_id = unit.id
                conn.execute(update(OrgUnit).where(OrgUnit.id == org_id).values(timezone=name))
            act.detail = {"timezone": name, "before": unit.timezone}
        return self.org(org_id)

    def create_org(
        self, *, parent_id: int | None, kind: str, name: str, site: str | None = None
    ) -> OrgNode:
        with self.s.action("org.create", "org", f"{kind}:{name}") as act:
            self.s.require("admin")
            if kind not in PARENT_KINDS:
                raise Invalid(f"unknown kind {kind!r}")
            if (kind == "site") != (site is not None):
                raise Invalid("a site node needs the agents' site name; other nodes have none")
            with read_then_write(self.s.engine) as conn:
                if parent_id is None:
                    self.s.require_whole_fleet()
                    parent_kind, parent_path = None, "/"
                else:
                    parent = self.s.org_row(conn, parent_id)
                    parent_kind, parent_path = parent.kind, parent.path
                    act.org_unit_id = parent.id
                if parent_kind not in PARENT_KINDS[kind]:
                    raise Invalid(f"a {kind} cannot be placed under {parent_kind or 'the top'}")
                if (
                    site is not None
                    and conn.execute(select(OrgUnit.id).where(OrgUnit.site == site)).first()
                ):
                    raise Invalid(f"site {site} is already in the tree")
                new_id = self._insert_unit(conn, parent_id, parent_path, kind, name, site)
            act.org_unit_id = new_id
            act.detail = {"parent_id": parent_id, "kind": kind, "name": name, "site": site}
        return self.org(new_id)

    def _insert_unit(  # noqa: PLR0917  # the unit's own columns
        self,
        conn: Connection,
        parent_id: int | None,
        parent_path: str,
        kind: str,
        name: str,
        site: str | None,
    ) -> int:
        """A new unit under ``parent_path``; its own path needs its id, so it is completed after
        the insert, in the same transaction."""
        new_id: int = conn.execute(
            insert(OrgUnit)
            .values(
                parent_id=parent_id,
                kind=kind,
                name=name,
                path=parent_path,
                site=site,
                created_at=self.s.now,
            )
            .returning(OrgUnit.id)
        ).scalar_one()
        conn.execute(
            update(OrgUnit).where(OrgUnit.id == new_id).values(path=f"{parent_path}{new_id}/")
        )
        return new_id

    def map_site(self, site: str, system_id: int, name: str | None = None) -> OrgNode:
        """Attach the agents' ``site`` under an information system (creating or moving it)."""
        with self.s.action("site.map", "site", site) as act:
            self.s.require("admin")
            with read_then_write(self.s.engine) as conn:
                unit = self.s.org_row(conn, system_id)
                if unit.kind != "system":
                    raise Invalid("sites are attached to information systems")
                act.org_unit_id = unit.id
                existing = conn.execute(
                    select(OrgUnit.__table__).where(OrgUnit.site == site)
                ).one_or_none()
                if existing is not None:
                    self.s.org_row(conn, existing.id)  # moving needs the current place in scope too
                    conn.execute(
                        update(OrgUnit)
                        .where(OrgUnit.id == existing.id)
                        .values(
                            parent_id=unit.id,
                            path=f"{unit.path}{existing.id}/",
                            name=name or existing.name,
                        )
                    )
                    act.detail = {"system_id": system_id, "moved_from": existing.parent_id}
                    site_id = existing.id
                else:
                    if (
                        self.s.p.org_path is not None
                        and conn.execute(
                            select(Agent.agent_id).where(Agent.site == site).limit(1)
                        ).first()
                    ):
                        # agents of an unmapped site are visible to whole-fleet users only
                        self.s.require_whole_fleet()
                    site_id = self._insert_unit(
                        conn, unit.id, unit.path, "site", name or site, site
                    )
                    act.detail = {"system_id": system_id}
        return self.org(site_id)

    def set_security_record(self, system_id: int, record: SecurityRecord) -> SystemView:
        with self.s.action("system.security_record", "org", system_id) as act:
            self.s.require("admin")
            with read_then_write(self.s.engine) as conn:
                unit = self.s.org_row(conn, system_id)
                act.org_unit_id = unit.id
                if unit.kind != "system":
                    raise Invalid("security records belong to information systems")
                values = {
                    "framework": record.framework,
                    "level": record.level,
                    "decision_number": record.decision_number,
                    "decision_date": record.decision_date,
                    "plan_status": record.plan_status,
                    "next_check_due": record.next_check_due,
                    "updated_at": self.s.now,
                }
                done = conn.execute(
                    update(InformationSystem)
                    .where(InformationSystem.org_unit_id == system_id)
                    .values(values)
                ).rowcount
                if not done:
                    conn.execute(insert(InformationSystem).values(org_unit_id=system_id, **values))
            act.detail = {
                k: v.isoformat() if isinstance(v, date) else v
                for k, v in values.items()
                if k != "updated_at"
            }
        return self.system(system_id)

    def _site_counts(self, conn: Connection) -> dict[str, Counts]:
        """Cameras, failing cameras and failing findings per severity, per site in scope: one
        pass over the cameras and the summary columns ingest keeps on them."""
        result: dict[str, Counts] = {}
        for site, cameras, not_audited, clean, failing_cams, *by_sev in conn.execute(
            select(Agent.site, func.count(), *audit_sums(), *failing_sums())
            .join(Camera, Camera.agent_id == Agent.agent_id)
            .where(self.s.agent_visible())
            .group_by(Agent.site)
        ):
            failing = {sev: int(n) for sev, n in zip(SEVERITIES, by_sev, strict=True)}
            result[site] = _counts(
                cameras, int(failing_cams), failing, int(not_audited), int(clean)
            )
        return result

    def compliance(self) -> Compliance:
        with self.s.engine.connect() as conn:
            per_site = self._site_counts(conn)
            nodes = conn.execute(
                select(OrgUnit.__table__).where(self.s.org_visible()).order_by(OrgUnit.path)
            ).all()
            orgs = [(o.id, o.parent_id, o.kind, o.name, o.site, o.path) for o in nodes]
            records = {
                r.org_unit_id: r
                for r in conn.execute(
                    select(InformationSystem.__table__).where(
                        InformationSystem.org_unit_id.in_([o[0] for o in orgs if o[2] == "system"])
                    )
                ).all()
            }
        base = 0 if self.s.p.org_path is None else self.s.p.org_path.count("/") - 2
        site_paths = [(path, site) for _, _, kind, _, site, path in orgs if kind == "site"]
        names = {oid: name for oid, _, _, name, _, _ in orgs}
        # each site's counts under every unit of its path (itself included)
        under: dict[int, list[Counts]] = defaultdict(list)
        for path, site in site_paths:
            if site in per_site:
                for part in path.strip("/").split("/"):
                    under[int(part)].append(per_site[site])
        result: list[OrgCompliance] = []
        systems: list[SystemView] = []
        for oid, parent, kind, name, site, path in orgs:
            counts = _sum(under.get(oid, []))
            node = OrgNode(oid, parent, kind, name, site, path.count("/") - 2 - base)
            result.append(OrgCompliance(node, counts))
            if kind == "system":
                agency = names.get(parent, "") if parent is not None else ""
                systems.append(
                    _system_view(self.s.today, oid, name, agency, records.get(oid), counts=counts)
                )
        unassigned = None
        if self.s.p.org_path is None:
            mapped = {s for _, s in site_paths}
            unassigned = _sum([c for site, c in per_site.items() if site not in mapped])
        return Compliance(result, systems, unassigned)

    def systems(self) -> list[SystemView]:
        return self.compliance().systems

    def system(self, system_id: int) -> SystemView:
        with self.s.engine.connect() as conn:
            if self.s.org_row(conn, system_id).kind != "system":
                raise NotVisible(f"information system {system_id}")
        return next(v for v in self.compliance().systems if v.id == system_id)
