"""The scoped query and action layer: the ONE place where tenancy and roles are enforced.

A ``Scoped`` is built per request from the authenticated ``Principal``. Every read restricts rows
to the principal's organisation subtree (agents and cameras through the site their agent enrolled
with); every lookup by id of something outside it raises ``NotVisible`` (shown as 404, so ids of
other tenants are not even confirmed); every action checks the role first (``Forbidden``, 403)
and is written to the audit log with its outcome. Routes never touch tables themselves.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from protocol import AuditState
from server.queries import SEVERITIES
from server.storage import Repository, read_then_write
from server.storage.models import Agent, Camera, Finding, Message
from server.storage.org_models import (
    ALERT_KINDS,
    LEVELS,
    PARENT_KINDS,
    ROLES,
    ROUTE_CHANNELS,
    SEVERITY_RANK_SQL,
    AlertDelivery,
    AlertEvent,
    AlertRoute,
    ApiToken,
    AuditEntry,
    DailySnapshot,
    InformationSystem,
    ModelEntry,
    OrgUnit,
    PrunedMessage,
    RetentionPolicy,
    User,
    WebSession,
)
from server.web.security import hash_password, new_secret, secret_hash
from server.web.throttle import Lock, SignInThrottle

Role = Literal["viewer", "operator", "admin"]
AgentState = Literal["online", "silent", "pending", "revoked"]
HISTORY = 20  # reports shown in a camera's history
AUDIT_STATES: Final[tuple[str, ...]] = get_args(AuditState)
NOT_AUDITED_ANY: Final = "not_audited_any"  # a camera list filter: any state but "audited"
CAMERA_FILTERS: Final = (*AUDIT_STATES, NOT_AUDITED_ANY)
# the collector's own AUTH-03 finding: this camera's password is also used on other cameras
REUSE_CODE: Final = "auth.password_reused"
REUSE_CHECK: Final = "password-reuse"
REUSE_CONTROLS: Final = ("AUTH-03",)
REUSE_SEVERITY: Final = "high"


class ScopeError(Exception):
    pass


class NotVisible(ScopeError):
    """Unknown, or outside the principal's subtree (the two are indistinguishable on purpose)."""


class Forbidden(ScopeError):
    """The principal's role does not allow the action."""


class Invalid(ScopeError):
    """The request is well-formed but cannot be applied (wrong parent kind, duplicate name...)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    org_unit_id: int | None
    org_path: str | None  # None: the whole fleet, unmapped sites included
    lang: str | None
    csrf: str | None = None  # set for session logins; None for API tokens

    def has(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


# the command line: a whole-fleet administrator named ``cli``, checked and audited as the web is
CLI = Principal(0, "cli", "admin", None, None, None)


# -- views returned to routes (also the API's response schemas) --------------------------------


@dataclass(frozen=True, slots=True)
class OrgNode:
    id: int
    parent_id: int | None
    kind: str
    name: str
    site: str | None
    depth: int


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


@dataclass(frozen=True, slots=True)
class Fleet:
    cameras: int
    reachable: int
    cameras_failing: int
    cameras_not_audited: int  # counted apart: never among the compliant ones
    cameras_compliant: int  # audited, and no check failed
    audit: dict[str, int]  # cameras per audit state (AUDIT_STATES)
    agents: dict[str, int]  # online, silent, pending, revoked
    failing: dict[str, int]
    overdue_systems: int


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
class FindingRow:
    id: int
    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    code: str
    check: str
    status: str
    severity: str
    controls: list[str]
    reason: str | None
    evidence: dict[str, Any]


class _Paged:
    """``pages`` of a paged list: at least one, so that an empty list shows page 1 of 1."""

    __slots__ = ()
    total: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class FindingPage(_Paged):
    items: list[FindingRow]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True, slots=True)
class FindingFilters:
    severity: str | None = None
    control: str | None = None
    vendor: str | None = None
    model: str | None = None
    org: int | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ReportLine:
    seq: int
    issued_at: datetime
    received_at: datetime
    present: bool  # the report mentioned this camera
    reachable: bool | None
    failing: int
    audit: str | None  # AuditState in that report (reports before it was sent: not_audited)


@dataclass(frozen=True, slots=True)
class CameraRef:
    agent_id: str
    camera_id: str
    site: str


@dataclass(frozen=True, slots=True)
class CameraView:
    agent_id: str
    camera_id: str
    site: str
    address: str
    reachable: bool
    identity: dict[str, Any]
    audited_at: datetime | None
    updated_at: datetime
    report_seq: int
    findings: list[FindingRow]
    history: list[ReportLine]
    audit: str  # AuditState: only "audited" may count as clean
    audit_reason: str | None
    # the other cameras the caller may see that use this camera's password (AUTH-03)
    password_reused_on: list[CameraRef]


@dataclass(frozen=True, slots=True)
class CameraLine:
    agent_id: str
    camera_id: str
    site: str
    address: str
    reachable: bool
    vendor: str | None
    model: str | None
    audit: str
    audit_reason: str | None
    audited_at: datetime | None
    failing: int  # failed checks


@dataclass(frozen=True, slots=True)
class CameraPage(_Paged):
    items: list[CameraLine]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    username: str
    role: str
    org_unit_id: int | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


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


@dataclass(frozen=True, slots=True)
class Retention:
    level: int
    raw_reports_days: int
    updated_at: datetime
    updated_by: str | None


@dataclass(slots=True)
class _Act:
    org_unit_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _audit_sums() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Per group of cameras: how many were not fully audited, and how many are compliant
    (audited, and no check failed). Sums over the ``cameras`` table in the query's FROM."""
    audited = Camera.audit == "audited"
    failing = (
        select(Finding.id)
        .where(
            Finding.agent_id == Camera.agent_id,
            Finding.camera_id == Camera.camera_id,
            Finding.status == "fail",
        )
        .exists()
    )
    return (
        func.coalesce(func.sum(case((audited, 0), else_=1)), 0),
        func.coalesce(func.sum(case((and_(audited, ~failing), 1), else_=0)), 0),
    )


def _reuse_row(
    agent_id: str, camera_id: str, site: str, identity: dict[str, Any], n: int
) -> FindingRow:
    """The collector's AUTH-03 finding of a camera whose password ``n`` other cameras use."""
    return FindingRow(
        0,
        agent_id,
        camera_id,
        site,
        identity.get("vendor"),
        identity.get("model"),
        REUSE_CODE,
        REUSE_CHECK,
        "fail",
        REUSE_SEVERITY,
        list(REUSE_CONTROLS),
        None,
        {"cameras": n},
    )


def _stored_row(r: Sequence[Any]) -> FindingRow:
    return FindingRow(*r)


def _reuse_of(r: Sequence[Any]) -> FindingRow:
    """A row of ``Scoped._reuse_findings``."""
    return _reuse_row(r[0], r[1], r[2], r[3], int(r[4]))


def _list_order(row: FindingRow) -> tuple[int, int]:
    """``_severity_rank`` then id, in Python (a camera's own findings)."""
    rank = SEVERITIES.index(row.severity) if row.severity in SEVERITIES else 99
    return rank, row.id


def _severity_rank() -> ColumnElement[int]:
    """Rendered with literals so that PostgreSQL matches it to the index ``ix_findings_list``."""
    return literal_column(SEVERITY_RANK_SQL.replace("severity", "findings.severity"), Integer)


class Scoped:
    def __init__(
        self, repo: Repository, principal: Principal, *, silent_after: timedelta, now: datetime
    ) -> None:
        self.repo = repo
        self.engine = repo.engine
        self.p = principal
        self.silent_after = silent_after
        self.now = now

    # -- the scope predicates: everything below builds on these four -----------------------

    def _org_visible(self) -> ColumnElement[bool]:
        return true() if self.p.org_path is None else OrgUnit.path.startswith(self.p.org_path)

    def _sites_under(self, path: str | None) -> Select[Any]:
        q = select(OrgUnit.site).where(OrgUnit.kind == "site")
        return q if path is None else q.where(OrgUnit.path.startswith(path))

    def _agent_visible(self, column: Any = Agent.agent_id) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        agents = select(Agent.agent_id).where(Agent.site.in_(self._sites_under(self.p.org_path)))
        return column.in_(agents)  # type: ignore[no-any-return]

    def _require(self, role: Role) -> None:
        if not self.p.has(role):
            raise Forbidden(f"needs the {role} role")

    def _require_whole_fleet(self) -> None:
        if self.p.org_path is not None:
            raise Forbidden("only administrators of the whole fleet may change this")

    # -- audit -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _action(self, action: str, target_type: str, target_id: object) -> Iterator[_Act]:
        act = _Act()
        outcome = "ok"
        try:
            yield act
        except (Forbidden, NotVisible):
            outcome = "denied"
            raise
        except Exception:
            outcome = "failed"
            raise
        finally:
            with read_then_write(self.engine) as conn:
                conn.execute(
                    insert(AuditEntry).values(
                        at=self.now,
                        user_id=self.p.user_id,
                        username=self.p.username,
                        action=action,
                        target_type=target_type,
                        target_id=str(target_id)[:128],
                        org_unit_id=act.org_unit_id,
                        outcome=outcome,
                        detail=act.detail,
                    )
                )

    def audit(self, limit: int = 200) -> list[AuditView]:
        self._require("admin")
        q = select(AuditEntry.__table__).order_by(AuditEntry.id.desc()).limit(limit)
        if self.p.org_path is not None:
            orgs = select(OrgUnit.id).where(self._org_visible())
            q = q.where(AuditEntry.org_unit_id.in_(orgs))
        with self.engine.connect() as conn:
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

    # -- organisation tree -----------------------------------------------------------------

    def org_tree(self) -> list[OrgNode]:
        base = 0 if self.p.org_path is None else self.p.org_path.count("/") - 2
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OrgUnit.__table__).where(self._org_visible()).order_by(OrgUnit.path)
            ).all()
            return [
                OrgNode(o.id, o.parent_id, o.kind, o.name, o.site, o.path.count("/") - 2 - base)
                for o in rows
            ]

    def _org(self, conn: Connection, org_id: int) -> Row[Any]:
        org = conn.execute(
            select(OrgUnit.__table__).where(OrgUnit.id == org_id, self._org_visible())
        ).one_or_none()
        if org is None:
            raise NotVisible(f"organisation unit {org_id}")
        return org

    def org(self, org_id: int) -> OrgNode:
        with self.engine.connect() as conn:
            o = self._org(conn, org_id)
        base = 0 if self.p.org_path is None else self.p.org_path.count("/") - 2
        return OrgNode(o.id, o.parent_id, o.kind, o.name, o.site, o.path.count("/") - 2 - base)

    def create_org(
        self, *, parent_id: int | None, kind: str, name: str, site: str | None = None
    ) -> OrgNode:
        with self._action("org.create", "org", f"{kind}:{name}") as act:
            self._require("admin")
            if kind not in PARENT_KINDS:
                raise Invalid(f"unknown kind {kind!r}")
            if (kind == "site") != (site is not None):
                raise Invalid("a site node needs the agents' site name; other nodes have none")
            with read_then_write(self.engine) as conn:
                if parent_id is None:
                    self._require_whole_fleet()
                    parent_kind, parent_path = None, "/"
                else:
                    parent = self._org(conn, parent_id)
                    parent_kind, parent_path = parent.kind, parent.path
                    act.org_unit_id = parent.id
                if parent_kind not in PARENT_KINDS[kind]:
                    raise Invalid(f"a {kind} cannot be placed under {parent_kind or 'the top'}")
                if (
                    site is not None
                    and conn.execute(select(OrgUnit.id).where(OrgUnit.site == site)).first()
                ):
                    raise Invalid(f"site {site} is already in the tree")
                new_id = conn.execute(
                    insert(OrgUnit)
                    .values(
                        parent_id=parent_id,
                        kind=kind,
                        name=name,
                        path=parent_path,  # completed below once the id is known
                        site=site,
                        created_at=self.now,
                    )
                    .returning(OrgUnit.id)
                ).scalar_one()
                conn.execute(
                    update(OrgUnit)
                    .where(OrgUnit.id == new_id)
                    .values(path=f"{parent_path}{new_id}/")
                )
            act.org_unit_id = new_id
            act.detail = {"parent_id": parent_id, "kind": kind, "name": name, "site": site}
        return self.org(new_id)

    def map_site(self, site: str, system_id: int, name: str | None = None) -> OrgNode:
        """Attach the agents' ``site`` under an information system (creating or moving it)."""
        with self._action("site.map", "site", site) as act:
            self._require("admin")
            with read_then_write(self.engine) as conn:
                system = self._org(conn, system_id)
                if system.kind != "system":
                    raise Invalid("sites are attached to information systems")
                act.org_unit_id = system.id
                existing = conn.execute(
                    select(OrgUnit.__table__).where(OrgUnit.site == site)
                ).one_or_none()
                if existing is not None:
                    self._org(conn, existing.id)  # moving needs the current place in scope too
                    conn.execute(
                        update(OrgUnit)
                        .where(OrgUnit.id == existing.id)
                        .values(
                            parent_id=system.id,
                            path=f"{system.path}{existing.id}/",
                            name=name or existing.name,
                        )
                    )
                    act.detail = {"system_id": system_id, "moved_from": existing.parent_id}
                    site_id = existing.id
                else:
                    if (
                        self.p.org_path is not None
                        and conn.execute(
                            select(Agent.agent_id).where(Agent.site == site).limit(1)
                        ).first()
                    ):
                        # agents of an unmapped site are visible to whole-fleet users only
                        self._require_whole_fleet()
                    site_id = conn.execute(
                        insert(OrgUnit)
                        .values(
                            parent_id=system.id,
                            kind="site",
                            name=name or site,
                            path=system.path,
                            site=site,
                            created_at=self.now,
                        )
                        .returning(OrgUnit.id)
                    ).scalar_one()
                    conn.execute(
                        update(OrgUnit)
                        .where(OrgUnit.id == site_id)
                        .values(path=f"{system.path}{site_id}/")
                    )
                    act.detail = {"system_id": system_id}
        return self.org(site_id)

    # -- information systems and compliance ------------------------------------------------

    def set_security_record(self, system_id: int, record: SecurityRecord) -> SystemView:
        with self._action("system.security_record", "org", system_id) as act:
            self._require("admin")
            with read_then_write(self.engine) as conn:
                system = self._org(conn, system_id)
                act.org_unit_id = system.id
                if system.kind != "system":
                    raise Invalid("security records belong to information systems")
                values = {
                    "framework": record.framework,
                    "level": record.level,
                    "decision_number": record.decision_number,
                    "decision_date": record.decision_date,
                    "plan_status": record.plan_status,
                    "next_check_due": record.next_check_due,
                    "updated_at": self.now,
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
        """Cameras, failing cameras and failing findings per severity, per site in scope."""
        cameras: dict[str, int] = {}
        failing_cams: dict[str, int] = {}
        by_sev: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEVERITIES, 0))
        visible = self._agent_visible()
        for site, n in conn.execute(
            select(Agent.site, func.count())
            .join(Camera, Camera.agent_id == Agent.agent_id)
            .where(visible)
            .group_by(Agent.site)
        ):
            cameras[site] = n
        fails = (
            select(Agent.site, Finding.agent_id, Finding.camera_id, Finding.severity)
            .join(Agent, Agent.agent_id == Finding.agent_id)
            .where(Finding.status == "fail", visible)
        ).subquery()
        for site, sev, n in conn.execute(
            select(fails.c.site, fails.c.severity, func.count()).group_by(
                fails.c.site, fails.c.severity
            )
        ):
            by_sev[site][sev] = n
        distinct = select(fails.c.site, fails.c.agent_id, fails.c.camera_id).distinct().subquery()
        for site, n in conn.execute(
            select(distinct.c.site, func.count()).group_by(distinct.c.site)
        ):
            failing_cams[site] = n
        not_audited: dict[str, int] = {}
        clean: dict[str, int] = {}
        for site, n_not_audited, n_clean in conn.execute(
            select(Agent.site, *_audit_sums())
            .join(Camera, Camera.agent_id == Agent.agent_id)
            .where(visible)
            .group_by(Agent.site)
        ):
            not_audited[site], clean[site] = int(n_not_audited), int(n_clean)
        return {
            site: _counts(
                cameras.get(site, 0),
                failing_cams.get(site, 0),
                dict(by_sev[site]),
                not_audited.get(site, 0),
                clean.get(site, 0),
            )
            for site in cameras.keys() | by_sev.keys()
        }

    @staticmethod
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

    def compliance(self) -> Compliance:
        with self.engine.connect() as conn:
            per_site = self._site_counts(conn)
            nodes = conn.execute(
                select(OrgUnit.__table__).where(self._org_visible()).order_by(OrgUnit.path)
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
        base = 0 if self.p.org_path is None else self.p.org_path.count("/") - 2
        site_paths = [(path, site) for _, _, kind, _, site, path in orgs if kind == "site"]
        names = {oid: name for oid, _, _, name, _, _ in orgs}
        result: list[OrgCompliance] = []
        systems: list[SystemView] = []
        for oid, parent, kind, name, site, path in orgs:
            counts = self._sum(
                [per_site[s] for p, s in site_paths if p.startswith(path) and s in per_site]
            )
            node = OrgNode(oid, parent, kind, name, site, path.count("/") - 2 - base)
            result.append(OrgCompliance(node, counts))
            if kind == "system":
                agency = names.get(parent, "") if parent is not None else ""
                systems.append(self._system_view(oid, name, agency, records.get(oid), counts))
        unassigned = None
        if self.p.org_path is None:
            mapped = {s for _, s in site_paths}
            unassigned = self._sum([c for s, c in per_site.items() if s not in mapped])
        return Compliance(result, systems, unassigned)

    def _system_view(
        self, oid: int, name: str, agency: str, r: Row[Any] | None, counts: Counts
    ) -> SystemView:
        record = (
            SecurityRecord(
                r.framework,
                r.level,
                r.decision_number,
                r.decision_date,
                r.plan_status,
                r.next_check_due,
            )
            if r
            else None
        )
        overdue = bool(record and record.next_check_due and record.next_check_due < self.today)
        return SystemView(oid, name, agency, record, overdue, counts)

    @property
    def today(self) -> date:
        return self.now.astimezone(UTC).date()

    def systems(self) -> list[SystemView]:
        return self.compliance().systems

    def system(self, system_id: int) -> SystemView:
        with self.engine.connect() as conn:
            if self._org(conn, system_id).kind != "system":
                raise NotVisible(f"information system {system_id}")
        return next(s for s in self.compliance().systems if s.id == system_id)

    # -- fleet -----------------------------------------------------------------------------

    def fleet(self) -> Fleet:
        visible = self._agent_visible()
        silent_before = self.now - self.silent_after
        with self.engine.connect() as conn:
            cams: Sequence[Any] = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((Camera.reachable, 1), else_=0)), 0),
                    *_audit_sums(),
                ).where(self._agent_visible(Camera.agent_id))
            ).one()
            audit = dict.fromkeys(AUDIT_STATES, 0)
            for state_, n in conn.execute(
                select(Camera.audit, func.count())
                .where(self._agent_visible(Camera.agent_id))
                .group_by(Camera.audit)
            ):
                audit[state_] = n
            states = dict.fromkeys(("online", "silent", "pending", "revoked"), 0)
            state = case(
                (Agent.status == "pending", "pending"),
                (Agent.status == "revoked", "revoked"),
                (Agent.last_seen >= silent_before, "online"),
                else_="silent",
            )
            for s, n in conn.execute(select(state, func.count()).where(visible).group_by(state)):
                states[s] = n
            failing = dict.fromkeys(SEVERITIES, 0)
            open_findings = and_(Finding.status == "fail", self._agent_visible(Finding.agent_id))
            for sev, n in conn.execute(
                select(Finding.severity, func.count())
                .where(open_findings)
                .group_by(Finding.severity)
            ):
                failing[sev] = n
            cameras_failing = conn.execute(
                select(func.count()).select_from(
                    select(Finding.agent_id, Finding.camera_id)
                    .where(open_findings)
                    .distinct()
                    .subquery()
                )
            ).scalar_one()
            overdue = conn.execute(
                select(func.count())
                .select_from(InformationSystem)
                .join(OrgUnit, OrgUnit.id == InformationSystem.org_unit_id)
                .where(self._org_visible(), InformationSystem.next_check_due < self.today)
            ).scalar_one()
        return Fleet(
            cams[0],
            int(cams[1]),
            cameras_failing,
            int(cams[2] or 0),
            int(cams[3] or 0),
            audit,
            states,
            failing,
            overdue,
        )

    # -- agents ----------------------------------------------------------------------------

    def _agent_state(self, status: str, last_seen: datetime | None) -> AgentState:
        if status in ("pending", "revoked"):
            return status  # type: ignore[return-value]
        if last_seen is not None and last_seen >= self.now - self.silent_after:
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
            .where(self._agent_visible())
            .order_by(Agent.site, Agent.agent_id)
        )
        if agent_id is not None:
            q = q.where(Agent.agent_id == agent_id)
        with self.engine.connect() as conn:
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

    def _site_org(self, conn: Connection, site: str) -> int | None:
        return conn.execute(select(OrgUnit.id).where(OrgUnit.site == site)).scalar()

    def set_agent_status(self, agent_id: str, action: Literal["approve", "revoke"]) -> AgentView:
        with self._action(f"agent.{action}", "agent", agent_id) as act:
            current = self.agent(agent_id)
            with self.engine.connect() as conn:
                act.org_unit_id = self._site_org(conn, current.site)
            self._require("operator")
            target = {"approve": "approved", "revoke": "revoked"}[action]
            act.detail = {"from": current.status}
            if not self.repo.set_status(agent_id, target, self.now):
                raise Invalid(f"agent {agent_id} is {current.status}; cannot {action}")
        return self.agent(agent_id)

    # -- findings and cameras --------------------------------------------------------------

    def _finding_query(self, f: FindingFilters) -> Select[Any]:
        vendor = Camera.identity["vendor"].as_string()
        model = Camera.identity["model"].as_string()
        q = (
            select(
                Finding.id,
                Finding.agent_id,
                Finding.camera_id,
                Camera.site,
                vendor,
                model,
                Finding.code,
                Finding.check,
                Finding.status,
                Finding.severity,
                Finding.controls,
                Finding.reason,
                Finding.evidence,
            )
            .join(
                Camera,
                and_(Camera.agent_id == Finding.agent_id, Camera.camera_id == Finding.camera_id),
            )
            .where(self._agent_visible(Finding.agent_id))
        )
        if f.severity:
            q = q.where(Finding.severity == f.severity)
        if f.status:
            q = q.where(Finding.status == f.status)
        if f.control:
            # control ids match ^[A-Z]{2,5}-[0-9]{2}$ (checked by the routes): no LIKE wildcards
            q = q.where(cast(Finding.controls, String).like(f'%"{f.control}"%'))
        return self._camera_filters(q, f)

    def _camera_filters(self, q: Select[Any], f: FindingFilters) -> Select[Any]:
        """The filters on the camera a finding is about (``cameras`` is in ``q``'s FROM)."""
        if f.vendor:
            q = q.where(Camera.identity["vendor"].as_string() == f.vendor)
        if f.model:
            q = q.where(Camera.identity["model"].as_string() == f.model)
        if f.org is not None:
            with self.engine.connect() as conn:
                org = self._org(conn, f.org)
            q = q.where(
                Camera.agent_id.in_(
                    select(Agent.agent_id).where(Agent.site.in_(self._sites_under(org.path)))
                )
            )
        return q

    def _reuse_counts(self) -> Select[str, str, int]:
        """(agent_id, camera_id, n) for each camera in scope whose password is also used on n
        other cameras in scope (same fingerprint under the same key: docs/adr/0019). Cameras
        outside the caller's scope are neither listed nor counted. One pass groups the cameras
        by password, a second joins each camera to its group: linear in cameras, not in pairs."""
        grouped = aliased(Camera, name="grouped")
        sets = (
            select(
                grouped.password_key_id,
                grouped.password_fingerprint,
                func.count().label("n"),
            )
            .where(
                grouped.password_fingerprint.is_not(None),
                self._agent_visible(grouped.agent_id),
            )
            .group_by(grouped.password_key_id, grouped.password_fingerprint)
            .having(func.count() > 1)
            .subquery()
        )
        return (
            select(Camera.agent_id, Camera.camera_id, (sets.c.n - 1).label("n"))
            .join(
                sets,
                and_(
                    sets.c.password_key_id == Camera.password_key_id,
                    sets.c.password_fingerprint == Camera.password_fingerprint,
                ),
            )
            .where(self._agent_visible(Camera.agent_id))
        )

    def _reuse_findings(self, f: FindingFilters) -> Select[Any] | None:
        """(agent_id, camera_id, site, identity, count) of the collector's AUTH-03 findings the
        filters keep; None when they exclude AUTH-03."""
        if (
            f.severity not in (None, REUSE_SEVERITY)
            or f.status not in (None, "fail")
            or f.control not in (None, *REUSE_CONTROLS)
        ):
            return None
        counts = self._reuse_counts().subquery()
        q = select(
            counts.c.agent_id, counts.c.camera_id, Camera.site, Camera.identity, counts.c.n
        ).join(
            Camera,
            and_(counts.c.agent_id == Camera.agent_id, counts.c.camera_id == Camera.camera_id),
        )
        return self._camera_filters(q, f)

    def findings(self, f: FindingFilters, page: int = 1, per_page: int = 50) -> FindingPage:
        stored = self._finding_query(f)
        reuse = self._reuse_findings(f)
        offset = (page - 1) * per_page
        with self.engine.connect() as conn:
            if reuse is not None:
                total, items = self._with_reuse(conn, stored, reuse, per_page, offset)
                return FindingPage(items, total, page, per_page)
            total = conn.execute(select(func.count()).select_from(stored.subquery())).scalar_one()
            rows = conn.execute(
                stored.order_by(_severity_rank(), Finding.agent_id, Finding.camera_id, Finding.id)
                .limit(per_page)
                .offset(offset)
            )
            return FindingPage([FindingRow(*r) for r in rows], total, page, per_page)

    def _with_reuse(
        self, conn: Connection, stored: Select[Any], reuse: Select[Any], limit: int, offset: int
    ) -> tuple[int, list[FindingRow]]:
        """The agents' findings and the collector's AUTH-03 ones (severity high) in one list:
        the agents' critical and high findings, then the AUTH-03 block by camera, then the
        rest. Each part is counted and read in its own order (the agents' findings in the
        index order of the findings list), and the page is cut across the parts."""

        def count(q: Select[Any]) -> int:
            return int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())

        head = count(
            stored.where(Finding.severity.in_(SEVERITIES[: SEVERITIES.index(REUSE_SEVERITY) + 1]))
        )
        reused, total_stored = count(reuse), count(stored)
        order = (_severity_rank(), Finding.agent_id, Finding.camera_id, Finding.id)
        ordered = stored.order_by(*order)
        by_camera = reuse.order_by(*reuse.selected_columns[:2])
        # each part: its first position in the list, its end, its query, the query's row at
        # the part's start, and how a row becomes a finding
        parts: tuple[tuple[int, int, Select[Any], int, Callable[[Sequence[Any]], FindingRow]], ...]
        parts = (
            (0, head, ordered, 0, _stored_row),
            (head, head + reused, by_camera, 0, _reuse_of),
            (head + reused, reused + total_stored, ordered, head, _stored_row),
        )
        items: list[FindingRow] = []
        for first, end, query, base, make in parts:
            lo, hi = max(offset, first), min(offset + limit, end)
            if lo < hi:
                rows = conn.execute(query.limit(hi - lo).offset(base + lo - first))
                items += [make(r) for r in rows]
        return reused + total_stored, items

    def facets(self) -> dict[str, list[str]]:
        """Vendors and models present in scope, for the filter drop-downs."""
        vendor = Camera.identity["vendor"].as_string()
        model = Camera.identity["model"].as_string()
        visible = self._agent_visible(Camera.agent_id)
        with self.engine.connect() as conn:
            vendors = conn.execute(
                select(vendor).where(visible, vendor.is_not(None)).distinct().order_by(vendor)
            ).scalars()
            models = conn.execute(
                select(model).where(visible, model.is_not(None)).distinct().order_by(model)
            ).scalars()
            return {"vendors": [v for v in vendors if v], "models": [m for m in models if m]}

    def cameras(self, audit: str | None = None, page: int = 1, per_page: int = 50) -> CameraPage:
        """The cameras in scope with their audit state, those not fully audited first."""
        where = [self._agent_visible(Camera.agent_id)]
        if audit == NOT_AUDITED_ANY:
            where.append(Camera.audit != "audited")
        elif audit is not None:
            where.append(Camera.audit == audit)
        failing = (  # per listed camera, by index (ix_findings_camera)
            select(func.count())
            .where(
                Finding.agent_id == Camera.agent_id,
                Finding.camera_id == Camera.camera_id,
                Finding.status == "fail",
            )
            .scalar_subquery()
        )
        q = select(
            Camera.agent_id,
            Camera.camera_id,
            Camera.site,
            Camera.address,
            Camera.reachable,
            Camera.identity["vendor"].as_string(),
            Camera.identity["model"].as_string(),
            Camera.audit,
            Camera.audit_reason,
            Camera.audited_at,
            failing,
        ).where(*where)
        first = case((Camera.audit == "audited", 1), else_=0)
        with self.engine.connect() as conn:
            total = self._count_cameras(conn, *where)
            rows = conn.execute(
                q.order_by(first, Camera.agent_id, Camera.camera_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return CameraPage([CameraLine(*r) for r in rows], total, page, per_page)

    @staticmethod
    def _count_cameras(conn: Connection, *where: ColumnElement[bool]) -> int:
        return int(
            conn.execute(select(func.count()).select_from(Camera).where(*where)).scalar_one()
        )

    def cameras_not_audited(self) -> int:
        """Cameras in scope whose audit did not complete."""
        with self.engine.connect() as conn:
            return self._count_cameras(
                conn, self._agent_visible(Camera.agent_id), Camera.audit != "audited"
            )

    def camera(self, agent_id: str, camera_id: str) -> CameraView:
        with self.engine.connect() as conn:
            cam = conn.execute(
                select(Camera.__table__).where(
                    Camera.agent_id == agent_id,
                    Camera.camera_id == camera_id,
                    self._agent_visible(Camera.agent_id),
                )
            ).one_or_none()
            if cam is None:
                raise NotVisible(f"camera {agent_id}/{camera_id}")
            reports = conn.execute(
                select(Message.seq, Message.issued_at, Message.received_at, Message.jws)
                .where(Message.agent_id == agent_id, Message.type == "report")
                .order_by(Message.seq.desc())
                .limit(HISTORY)
            ).all()
        findings = self._camera_findings(agent_id, camera_id)
        history = [self._history_line(camera_id, *r) for r in reports]
        shared = self._password_shared(cam.password_key_id, cam.password_fingerprint)
        others = [c for c in shared if (c.agent_id, c.camera_id) != (agent_id, camera_id)]
        if others:
            reuse = _reuse_row(agent_id, camera_id, cam.site, cam.identity, len(others))
            findings = sorted([reuse, *findings], key=_list_order)
        return CameraView(
            cam.agent_id,
            cam.camera_id,
            cam.site,
            cam.address,
            cam.reachable,
            cam.identity,
            cam.audited_at,
            cam.updated_at,
            cam.report_seq,
            findings,
            history,
            cam.audit,
            cam.audit_reason,
            others,
        )

    def _password_shared(self, key_id: str | None, fingerprint: str | None) -> list[CameraRef]:
        """The cameras in scope whose password has this fingerprint under this key."""
        if key_id is None or fingerprint is None:
            return []
        with self.engine.connect() as conn:
            return [
                CameraRef(*r)
                for r in conn.execute(
                    select(Camera.agent_id, Camera.camera_id, Camera.site)
                    .where(
                        Camera.password_key_id == key_id,
                        Camera.password_fingerprint == fingerprint,
                        self._agent_visible(Camera.agent_id),
                    )
                    .order_by(Camera.agent_id, Camera.camera_id)
                )
            ]

    def _camera_findings(self, agent_id: str, camera_id: str) -> list[FindingRow]:
        q = self._finding_query(FindingFilters()).where(
            Finding.agent_id == agent_id, Finding.camera_id == camera_id
        )
        with self.engine.connect() as conn:
            return [FindingRow(*r) for r in conn.execute(q.order_by(_severity_rank(), Finding.id))]

    @staticmethod
    def _history_line(
        camera_id: str, seq: int, issued: datetime, received: datetime, jws: str
    ) -> ReportLine:
        """The camera's line in a stored report (verified at ingest; decoded, not re-verified)."""
        payload = jws.split(".")[1]
        report = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        for cam in report.get("cameras", []):
            if cam.get("camera_id") == camera_id:
                fails = sum(1 for f in cam.get("findings", []) if f.get("status") == "fail")
                audit = cam.get("audit", "not_audited")
                return ReportLine(
                    seq,
                    issued,
                    received,
                    True,
                    cam.get("reachable"),
                    fails,
                    audit if audit in AUDIT_STATES else "not_audited",
                )
        return ReportLine(seq, issued, received, False, None, 0, None)

    # -- users and tokens ------------------------------------------------------------------

    def _user_visible(self) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        return User.org_unit_id.in_(select(OrgUnit.id).where(self._org_visible()))

    def users(self) -> list[UserView]:
        self._require("admin")
        with self.engine.connect() as conn:
            return [
                UserView(u.id, u.username, u.role, u.org_unit_id, u.disabled, u.created_at)
                for u in conn.execute(
                    select(User.__table__).where(self._user_visible()).order_by(User.username)
                ).all()
            ]

    def user(self, user_id: int) -> UserView:
        found = [u for u in self.users() if u.id == user_id]
        if not found:
            raise NotVisible(f"user {user_id}")
        return found[0]

    def create_user(
        self, username: str, password: str, role: str, org_unit_id: int | None
    ) -> UserView:
        with self._action("user.create", "user", username) as act:
            self._require("admin")
            if role not in ROLES:
                raise Invalid(f"unknown role {role!r}")
            with read_then_write(self.engine) as conn:
                if org_unit_id is None:
                    self._require_whole_fleet()
                else:
                    self._org(conn, org_unit_id)
                act.org_unit_id = org_unit_id
                act.detail = {"role": role, "org_unit_id": org_unit_id}
                try:
                    new_id = conn.execute(
                        insert(User)
                        .values(
                            username=username,
                            password_hash=hash_password(password),
                            role=role,
                            org_unit_id=org_unit_id,
                            disabled=False,
                            created_at=self.now,
                            password_changed_at=self.now,
                        )
                        .returning(User.id)
                    ).scalar_one()
                except IntegrityError as exc:
                    raise Invalid(f"user {username} exists") from exc
        return self.user(new_id)

    def set_user_disabled(self, user_id: int, disabled: bool) -> UserView:
        with self._action("user.disable" if disabled else "user.enable", "user", user_id) as act:
            target = self.user(user_id)
            act.org_unit_id = target.org_unit_id
            if user_id == self.p.user_id:
                raise Invalid("you cannot disable yourself")
            with read_then_write(self.engine) as conn:
                conn.execute(update(User).where(User.id == user_id).values(disabled=disabled))
                if disabled:
                    self._end_sessions(conn, user_id)
        return self.user(user_id)

    def set_password(self, user_id: int, password: str) -> None:
        with self._action("user.password", "user", user_id) as act:
            if user_id != self.p.user_id:
                act.org_unit_id = self.user(user_id).org_unit_id
            with read_then_write(self.engine) as conn:
                conn.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(password_hash=hash_password(password), password_changed_at=self.now)
                )
                self._end_sessions(conn, user_id)

    def sign_in_locks(self) -> list[Lock]:
        """Accounts and source addresses locked after failed sign-ins (server.web.throttle):
        all for the whole fleet's admins; an agency's admins see their own users' accounts."""
        self._require("admin")
        with self.engine.connect() as conn:
            locks = SignInThrottle.locks(conn, self.now)
        if self.p.org_path is None:
            return locks
        mine = {u.username for u in self.users()}
        return [lock for lock in locks if lock.kind == "account" and lock.name in mine]

    def unlock_sign_in(self, kind: Literal["account", "source"], name: str) -> None:
        """Forget an account's or a source's failed sign-ins, ending its lock (audited)."""
        with self._action("session.unlock", kind, name) as act:
            self._require("admin")
            users = {u.username: u for u in self.users()}
            if kind == "account" and name in users:
                act.org_unit_id = users[name].org_unit_id
            else:  # a source address, or an account name that no user has
                self._require_whole_fleet()
            with read_then_write(self.engine) as conn:
                if kind == "account":
                    found = SignInThrottle.unlock(conn, username=name)
                else:
                    found = SignInThrottle.unlock(conn, source=name)
            if not found:
                raise NotVisible(f"no failed sign-ins of {kind} {name}")

    @staticmethod
    def _end_sessions(conn: Connection, user_id: int) -> None:
        conn.execute(delete(WebSession).where(WebSession.user_id == user_id))

    def set_language(self, lang: str) -> None:
        with read_then_write(self.engine) as conn:
            conn.execute(update(User).where(User.id == self.p.user_id).values(lang=lang))

    def tokens(self) -> list[TokenView]:
        with self.engine.connect() as conn:
            return [
                TokenView(
                    t.id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at is not None
                )
                for t in conn.execute(
                    select(ApiToken.__table__)
                    .where(ApiToken.user_id == self.p.user_id)
                    .order_by(ApiToken.id)
                ).all()
            ]

    def create_token(self, name: str) -> tuple[TokenView, str]:
        """A new API token for the principal itself; the secret is returned once, never stored."""
        with self._action("token.create", "token", name) as act:
            act.org_unit_id = self.p.org_unit_id
            secret = "cwt_" + new_secret()
            with read_then_write(self.engine) as conn:
                token_id = conn.execute(
                    insert(ApiToken)
                    .values(
                        user_id=self.p.user_id,
                        name=name,
                        token_hash=secret_hash(secret),
                        prefix=secret[:12],
                        created_at=self.now,
                    )
                    .returning(ApiToken.id)
                ).scalar_one()
            act.detail = {"id": token_id}
        return next(t for t in self.tokens() if t.id == token_id), secret

    def revoke_token(self, token_id: int) -> TokenView:
        with self._action("token.revoke", "token", token_id) as act:
            act.org_unit_id = self.p.org_unit_id
            with read_then_write(self.engine) as conn:
                done = conn.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        ApiToken.user_id == self.p.user_id,
                        ApiToken.revoked_at.is_(None),
                    )
                    .values(revoked_at=self.now)
                ).rowcount
            if not done:
                raise NotVisible(f"token {token_id}")
        return next(t for t in self.tokens() if t.id == token_id)

    # -- retention -------------------------------------------------------------------------

    def retention(self) -> list[Retention]:
        with self.engine.connect() as conn:
            return [
                Retention(r.level, r.raw_reports_days, r.updated_at, r.updated_by)
                for r in conn.execute(
                    select(RetentionPolicy.__table__).order_by(RetentionPolicy.level)
                ).all()
            ]

    def set_retention(self, level: int, days: int) -> Retention:
        with self._action("retention.set", "retention", level) as act:
            self._require("admin")
            self._require_whole_fleet()
            if level not in LEVELS or days < 1:
                raise Invalid("level is 1 to 5 and days at least 1")
            act.detail = {"raw_reports_days": days}
            with read_then_write(self.engine) as conn:
                conn.execute(
                    update(RetentionPolicy)
                    .where(RetentionPolicy.level == level)
                    .values(raw_reports_days=days, updated_at=self.now, updated_by=self.p.username)
                )
        return next(r for r in self.retention() if r.level == level)

    # -- certified-model register (QCVN 135:2024) and INV-02 -------------------------------

    def _site_visible(self, column: Any) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        return column.in_(self._sites_under(self.p.org_path))  # type: ignore[no-any-return]

    def model_register(self) -> list[ModelView]:
        """The register is national reference data: every user reads all of it."""
        with self.engine.connect() as conn:
            return [
                _model_view(r)
                for r in conn.execute(
                    select(ModelEntry.__table__).order_by(
                        ModelEntry.vendor_key, ModelEntry.model_key, ModelEntry.hardware_key
                    )
                ).all()
            ]

    def save_model(self, entry: ModelIn, model_id: int | None = None) -> ModelView:
        """Create (``model_id`` None) or replace a register entry: whole-fleet administrators."""
        with self._action(
            "model.save", "model", model_id or f"{entry.vendor}/{entry.model}"
        ) as act:
            self._require("admin")
            self._require_whole_fleet()
            values = {
                "vendor": entry.vendor,
                "model": entry.model,
                "hardware_id": entry.hardware_id or None,
                "vendor_key": model_key(entry.vendor),
                "model_key": model_key(entry.model),
                "hardware_key": model_key(entry.hardware_id),
                "certificate_number": entry.certificate_number,
                "certificate_issuer": entry.certificate_issuer,
                "certificate_date": entry.certificate_date,
                "flagged": entry.flagged,
                "flag_reason": entry.flag_reason,
                "flag_reference": entry.flag_reference,
                "updated_at": self.now,
                "updated_by": self.p.username,
            }
            act.detail = {
                k: v.isoformat() if isinstance(v, date) else v
                for k, v in values.items()
                if k in ("vendor", "model", "hardware_id", "certificate_number", "flagged")
            }
            try:
                with read_then_write(self.engine) as conn:
                    if model_id is None:
                        model_id = conn.execute(
                            insert(ModelEntry).values(values).returning(ModelEntry.id)
                        ).scalar_one()
                    elif not conn.execute(
                        update(ModelEntry).where(ModelEntry.id == model_id).values(values)
                    ).rowcount:
                        raise NotVisible(f"register entry {model_id}")
            except IntegrityError as exc:
                raise Invalid("this vendor, model and hardware id are already registered") from exc
        return next(m for m in self.model_register() if m.id == model_id)

    def delete_model(self, model_id: int) -> None:
        with self._action("model.delete", "model", model_id):
            self._require("admin")
            self._require_whole_fleet()
            with read_then_write(self.engine) as conn:
                if not conn.execute(delete(ModelEntry).where(ModelEntry.id == model_id)).rowcount:
                    raise NotVisible(f"register entry {model_id}")

    def devices(self) -> list[DeviceView]:
        """Every camera in scope with its register match and INV-02 verdict."""
        matcher = ModelMatcher(self.model_register())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Camera.agent_id, Camera.camera_id, Camera.site, Camera.identity)
                .where(self._agent_visible(Camera.agent_id))
                .order_by(Camera.agent_id, Camera.camera_id)
            ).all()
        result = []
        for r in rows:
            vendor, model = r.identity.get("vendor"), r.identity.get("model")
            entry = matcher.match(vendor, model, r.identity.get("hardware_id"))
            result.append(
                DeviceView(
                    r.agent_id,
                    r.camera_id,
                    r.site,
                    vendor,
                    model,
                    r.identity.get("hardware_id"),
                    r.identity.get("firmware"),
                    entry.id if entry else None,
                    inv02_status(entry),
                )
            )
        return result

    # -- CISA KEV --------------------------------------------------------------------------

    def kev(self) -> list[KevGroup]:
        """Cameras with a failing known-exploited finding, grouped by CVE (newest KEV first)."""
        q = self._finding_query(FindingFilters(status="fail")).where(Finding.code == KEV_CODE)
        groups: dict[str, list[FindingRow]] = defaultdict(list)
        with self.engine.connect() as conn:
            for r in conn.execute(q.order_by(Finding.agent_id, Finding.camera_id)):
                row = FindingRow(*r)
                groups[str(row.evidence.get("cve", "?"))].append(row)
        return sorted(
            (
                KevGroup(
                    cve,
                    str(rows[0].evidence.get("kev_date_added", "")) or None,
                    [
                        KevDevice(
                            f.agent_id,
                            f.camera_id,
                            f.site,
                            f.vendor,
                            f.model,
                            _text(f.evidence.get("firmware")),
                            _text(f.evidence.get("remedy")),
                        )
                        for f in rows
                    ],
                )
                for cve, rows in groups.items()
            ),
            key=lambda g: (g.kev_date_added or "", g.cve),
            reverse=True,
        )

    # -- trend -----------------------------------------------------------------------------

    def trend(self, days: int = 30) -> list[TrendPoint]:
        """Open findings per day and severity over the last ``days`` days (daily snapshots)."""
        first = self.today - timedelta(days=days - 1)
        per_day: dict[date, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for day, sev, n in conn.execute(
                select(
                    DailySnapshot.day,
                    DailySnapshot.severity,
                    func.sum(DailySnapshot.open_findings),
                )
                .where(DailySnapshot.day >= first, self._site_visible(DailySnapshot.site))
                .group_by(DailySnapshot.day, DailySnapshot.severity)
            ):
                per_day.setdefault(day, dict.fromkeys(SEVERITIES, 0))[sev] = int(n)
        return [TrendPoint(day, counts) for day, counts in sorted(per_day.items())]

    # -- alerts ----------------------------------------------------------------------------

    def _route_visible(self) -> ColumnElement[bool]:
        if self.p.org_path is None:
            return true()
        return AlertRoute.org_unit_id.in_(select(OrgUnit.id).where(self._org_visible()))

    def alert_routes(self) -> list[RouteView]:
        self._require("operator")
        with self.engine.connect() as conn:
            return [
                RouteView(r.id, r.org_unit_id, r.name, r.channel, r.target, r.kinds, r.enabled)
                for r in conn.execute(
                    select(AlertRoute.__table__)
                    .where(self._route_visible())
                    .order_by(AlertRoute.id)
                ).all()
            ]

    def create_alert_route(
        self, *, org_unit_id: int | None, name: str, channel: str, target: str, kinds: list[str]
    ) -> tuple[RouteView, str | None]:
        """A route for alerts of ``org_unit_id``'s subtree; a webhook's HMAC secret is returned
        once (it is stored to sign with, but never shown again)."""
        with self._action("alert_route.create", "alert_route", name) as act:
            self._require("admin")
            if channel not in ROUTE_CHANNELS or not kinds or set(kinds) - set(ALERT_KINDS):
                raise Invalid("channel is webhook or email; kinds are finding, silent, audit")
            with read_then_write(self.engine) as conn:
                if org_unit_id is None:
                    self._require_whole_fleet()
                else:
                    self._org(conn, org_unit_id)
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
                        created_at=self.now,
                    )
                    .returning(AlertRoute.id)
                ).scalar_one()
            act.detail = {"id": route_id, "channel": channel, "target": target, "kinds": kinds}
        return next(r for r in self.alert_routes() if r.id == route_id), secret

    def delete_alert_route(self, route_id: int) -> None:
        with (
            self._action("alert_route.delete", "alert_route", route_id) as act,
            read_then_write(self.engine) as conn,
        ):
            route = conn.execute(
                select(AlertRoute.__table__).where(AlertRoute.id == route_id, self._route_visible())
            ).one_or_none()
            if route is None:
                raise NotVisible(f"alert route {route_id}")
            act.org_unit_id = route.org_unit_id
            self._require("admin")
            if route.org_unit_id is None:
                self._require_whole_fleet()
            conn.execute(delete(AlertDelivery).where(AlertDelivery.route_id == route_id))
            conn.execute(delete(AlertRoute).where(AlertRoute.id == route_id))

    def alerts(self, limit: int = 200) -> list[AlertView]:
        """The newest alert events in scope with how their deliveries went."""
        with self.engine.connect() as conn:
            events = conn.execute(
                select(AlertEvent.__table__)
                .where(self._site_visible(AlertEvent.site))
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

    # -- compliance report -----------------------------------------------------------------

    def report_data(self, org_id: int, start: date, end: date) -> ReportData:
        if end < start:
            raise Invalid("the period ends before it starts")
        begin = datetime.combine(start, datetime.min.time(), UTC)
        stop = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
        with self.engine.connect() as conn:
            root = self._org(conn, org_id)
            nodes = [
                ReportNode(o.id, o.parent_id, o.kind, o.name, o.path, o.site)
                for o in conn.execute(
                    select(OrgUnit.__table__)
                    .where(OrgUnit.path.startswith(root.path))
                    .order_by(OrgUnit.path)
                )
            ]
            records = {
                r.org_unit_id: SecurityRecord(
                    r.framework,
                    r.level,
                    r.decision_number,
                    r.decision_date,
                    r.plan_status,
                    r.next_check_due,
                )
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
                        Finding.code == KEV_CODE, Finding.status == "fail"
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
        matcher = ModelMatcher(self.model_register())
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
                    )
                ),
                c.audit,
                passwords[(c.password_key_id, c.password_fingerprint)] > 1,
            )
            for c in cameras
        ]
        org = next(n for n in nodes if n.id == root.id)
        return ReportData(
            org, start, end, self.now, self.p.username, nodes, records, devices, episodes
        )


KEV_CODE = "fw.known_exploited"
_TEXT_LIMIT = 512


def _text(value: object) -> str | None:
    return str(value)[:_TEXT_LIMIT] if value is not None else None


def model_key(text: str | None) -> str:
    return " ".join((text or "").lower().split())


@dataclass(frozen=True, slots=True)
class ModelIn:
    vendor: str
    model: str
    hardware_id: str | None = None
    certificate_number: str | None = None
    certificate_issuer: str | None = None
    certificate_date: date | None = None
    flagged: bool = False
    flag_reason: str | None = None
    flag_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ModelView:
    id: int
    vendor: str
    model: str
    hardware_id: str | None
    certificate_number: str | None
    certificate_issuer: str | None
    certificate_date: date | None
    flagged: bool
    flag_reason: str | None
    flag_reference: str | None
    updated_at: datetime
    updated_by: str | None

    @property
    def certified(self) -> bool:
        return self.certificate_number is not None


def _model_view(r: Row[Any]) -> ModelView:
    return ModelView(
        r.id,
        r.vendor,
        r.model,
        r.hardware_id,
        r.certificate_number,
        r.certificate_issuer,
        r.certificate_date,
        r.flagged,
        r.flag_reason,
        r.flag_reference,
        r.updated_at,
        r.updated_by,
    )


Inv02 = Literal["certified", "flagged", "uncertified"]


def inv02_status(entry: ModelView | None) -> Inv02:
    """INV-02: compliant only when the model is certified and not flagged by the authorities."""
    if entry is not None and entry.flagged:
        return "flagged"
    if entry is not None and entry.certified:
        return "certified"
    return "uncertified"


class ModelMatcher:
    """Vendor + model (+ hardware id) lookups; an entry with the camera's hardware id wins."""

    def __init__(self, entries: list[ModelView]) -> None:
        self._by_key = {
            (model_key(e.vendor), model_key(e.model), model_key(e.hardware_id)): e for e in entries
        }

    def match(
        self, vendor: str | None, model: str | None, hardware: str | None
    ) -> ModelView | None:
        v, m = model_key(vendor), model_key(model)
        if not v or not m:
            return None
        specific = self._by_key.get((v, m, model_key(hardware))) if hardware else None
        return specific or self._by_key.get((v, m, ""))


@dataclass(frozen=True, slots=True)
class DeviceView:
    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    hardware_id: str | None
    firmware: str | None
    register_id: int | None
    inv02: Inv02


@dataclass(frozen=True, slots=True)
class KevDevice:
    agent_id: str
    camera_id: str
    site: str
    vendor: str | None
    model: str | None
    firmware: str | None
    remedy: str | None


@dataclass(frozen=True, slots=True)
class KevGroup:
    cve: str
    kev_date_added: str | None
    devices: list[KevDevice]


@dataclass(frozen=True, slots=True)
class TrendPoint:
    day: date
    open_findings: dict[str, int]


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
