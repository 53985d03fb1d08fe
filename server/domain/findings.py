"""Findings in scope: the agents' stored ones and the collector's own AUTH-03 finding (a password
used on several cameras), the known-exploited groups and the daily trend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    and_,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import aliased

from server.domain.scope import Area, Paged
from server.domain.summary import SEVERITIES
from server.storage.models import FAIL_COLUMNS, Agent, Camera, Finding, kev_failing
from server.storage.org_models import SEVERITY_RANK_SQL

# the collector's own AUTH-03 finding: this camera's password is also used on other cameras
REUSE_CODE: Final = "auth.password_reused"
REUSE_CHECK: Final = "password-reuse"
REUSE_CONTROLS: Final = ("AUTH-03",)
REUSE_SEVERITY: Final = "high"


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


@dataclass(frozen=True, slots=True)
class FindingPage(Paged):
    items: list[FindingRow]
    total: int
    page: int
    per_page: int
    more: bool = False  # ``total`` is a lower bound: counting stopped at ``COUNT_CAP``


@dataclass(frozen=True, slots=True)
class FindingFilters:
    severity: str | None = None
    control: str | None = None
    vendor: str | None = None
    model: str | None = None
    org: int | None = None
    status: str | None = None


def reuse_row(
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
    """A row of ``_reuse_findings``."""
    return reuse_row(r[0], r[1], r[2], r[3], int(r[4]))


def list_order(row: FindingRow) -> tuple[int, int]:
    """``_severity_rank`` then id, in Python (a camera's own findings)."""
    rank = SEVERITIES.index(row.severity) if row.severity in SEVERITIES else 99
    return rank, row.id


def _severity_rank() -> ColumnElement[int]:
    """Rendered with literals so that PostgreSQL matches it to the index ``ix_findings_list``."""
    return literal_column(SEVERITY_RANK_SQL.replace("severity", "findings.severity"), Integer)


_TEXT_LIMIT = 512


def _text(value: object) -> str | None:
    return str(value)[:_TEXT_LIMIT] if value is not None else None


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
    devices: list[KevDevice]  # in camera order; the first ones only when the page asked so
    cameras: int  # failing cameras of the CVE, listed or not


# a count the summary columns cannot answer (a control, another status) stops here: the list
# shows "10000+" rather than counting a million findings to render fifty
COUNT_CAP: Final = 10_000


def _count(conn: Connection, q: Select[Any]) -> int:
    """The rows of ``q``, up to ``COUNT_CAP + 1``."""
    capped = q.limit(COUNT_CAP + 1).subquery()
    return int(conn.execute(select(func.count()).select_from(capped)).scalar_one())


def _with_reuse(  # the two parts and their counts
    conn: Connection,
    stored: Select[Any],
    reuse: Select[Any],
    head: int,
    total_stored: int,
    *,
    limit: int,
    offset: int,
) -> tuple[int, list[FindingRow]]:
    """The agents' findings and the collector's AUTH-03 ones (severity high) in one list:
    the agents' critical and high findings (``head`` of them), then the AUTH-03 block by
    camera, then the rest (``total_stored`` agents' findings in all). Each part is read in its
    own order (the agents' findings in the index order of the findings list), and the page is
    cut across the parts."""
    reused = _count(conn, reuse)
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


class Findings(Area):
    """The findings of a scope."""

    __slots__ = ()

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
            .where(self.s.agent_visible(Finding.agent_id))
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
            with self.s.engine.connect() as conn:
                org = self.s.org_row(conn, f.org)
            q = q.where(
                Camera.agent_id.in_(
                    select(Agent.agent_id).where(Agent.site.in_(self.s.sites_under(org.path)))
                )
            )
        return q

    def reuse_counts(self) -> Select[str, str, int]:
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
                self.s.agent_visible(grouped.agent_id),
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
            .where(self.s.agent_visible(Camera.agent_id))
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
        counts = self.reuse_counts().subquery()
        q = select(
            counts.c.agent_id, counts.c.camera_id, Camera.site, Camera.identity, counts.c.n
        ).join(
            Camera,
            and_(counts.c.agent_id == Camera.agent_id, counts.c.camera_id == Camera.camera_id),
        )
        return self._camera_filters(q, f)

    def _failed_sum(self, f: FindingFilters, severities: Sequence[str]) -> Select[Any] | None:
        """The failed findings of ``severities`` that the filters keep, summed from the
        cameras' summary columns; None when the filters reach into the findings themselves
        (a control, a status other than fail)."""
        if f.status != "fail" or f.control is not None:
            return None
        total: ColumnElement[int] = literal(0)
        for sev in severities:
            if f.severity in (None, sev):
                total += FAIL_COLUMNS[sev]
        q = select(func.coalesce(func.sum(total), 0)).where(self.s.agent_visible(Camera.agent_id))
        return self._camera_filters(q, f)

    def _stored_count(
        self, conn: Connection, f: FindingFilters, stored: Select[Any], severities: Sequence[str]
    ) -> tuple[int, bool]:
        """The agents' findings of ``severities`` the filters keep, and whether that is only a
        lower bound (counted up to ``COUNT_CAP``)."""
        summed = self._failed_sum(f, severities)
        if summed is not None:
            return int(conn.execute(summed).scalar_one()), False
        if len(severities) < len(SEVERITIES):
            stored = stored.where(Finding.severity.in_(severities))
        n = _count(conn, stored)
        return min(n, COUNT_CAP), n > COUNT_CAP

    def findings(self, f: FindingFilters, page: int = 1, per_page: int = 50) -> FindingPage:
        stored = self._finding_query(f)
        reuse = self._reuse_findings(f)
        offset = (page - 1) * per_page
        with self.s.engine.connect() as conn:
            total, more = self._stored_count(conn, f, stored, SEVERITIES)
            if reuse is not None:
                head, _ = self._stored_count(
                    conn, f, stored, SEVERITIES[: SEVERITIES.index(REUSE_SEVERITY) + 1]
                )
                total, items = _with_reuse(
                    conn, stored, reuse, head, total, limit=per_page, offset=offset
                )
                return FindingPage(items, total, page, per_page, more)
            rows = conn.execute(
                stored.order_by(_severity_rank(), Finding.agent_id, Finding.camera_id, Finding.id)
                .limit(per_page)
                .offset(offset)
            )
            return FindingPage([FindingRow(*r) for r in rows], total, page, per_page, more)

    def facets(self) -> dict[str, list[str]]:
        """Vendors and models present in scope, for the filter drop-downs (one pass)."""
        vendor = Camera.identity["vendor"].as_string()
        model = Camera.identity["model"].as_string()
        with self.s.engine.connect() as conn:
            pairs = conn.execute(
                select(vendor, model)
                .where(self.s.agent_visible(Camera.agent_id))
                .group_by(vendor, model)
            ).all()
        return {
            "vendors": sorted({v for v, _ in pairs if v}),
            "models": sorted({m for _, m in pairs if m}),
        }

    def camera_findings(self, agent_id: str, camera_id: str) -> list[FindingRow]:
        q = self._finding_query(FindingFilters()).where(
            Finding.agent_id == agent_id, Finding.camera_id == camera_id
        )
        with self.s.engine.connect() as conn:
            return [FindingRow(*r) for r in conn.execute(q.order_by(_severity_rank(), Finding.id))]

    def kev(self, shown: int | None = None) -> list[KevGroup]:
        """Cameras with a failing known-exploited finding, grouped by CVE (newest KEV first);
        with ``shown``, only the first ``shown`` cameras of each group are read (``cameras``
        still counts them all): each group walks ``ix_findings_kev`` in camera order and stops
        there."""
        cve = func.coalesce(Finding.cve, "?")
        failing = (kev_failing(), self.s.agent_visible(Finding.agent_id))
        listed = (
            self._finding_query(FindingFilters())
            .add_columns(cve)
            .where(kev_failing())
            .order_by(Finding.cve, Finding.agent_id, Finding.camera_id)
        )
        with self.s.engine.connect() as conn:
            # ix_findings_kev_cve alone: the CVE is a column, no finding's evidence is read
            counted = select(cve, func.count()).where(*failing).group_by(cve)
            counts: dict[str, int] = dict(conn.execute(counted).all())
            if shown is None:
                rows = list(conn.execute(listed))
            else:
                rows = [
                    r
                    for name in counts
                    for r in conn.execute(
                        listed.where(
                            Finding.cve.is_(None) if name == "?" else Finding.cve == name
                        ).limit(max(shown, 1))
                    )
                ]
        groups: dict[str, KevGroup] = {}
        for *r, name in rows:
            f = FindingRow(*r)
            # the catalogue's date of the CVE, the same in each of its findings
            added = _text(f.evidence.get("kev_date_added")) or None
            group = groups.setdefault(name, KevGroup(name, added, [], counts[name]))
            if shown is not None and len(group.devices) >= shown:
                continue
            group.devices.append(
                KevDevice(
                    f.agent_id,
                    f.camera_id,
                    f.site,
                    f.vendor,
                    f.model,
                    _text(f.evidence.get("firmware")),
                    _text(f.evidence.get("remedy")),
                )
            )
        return sorted(groups.values(), key=lambda g: (g.kev_date_added or "", g.cve), reverse=True)

    def kev_cameras(self) -> int:
        """Cameras with at least one failing known-exploited finding (``ix_findings_kev``
        alone: a finding's camera is always stored)."""
        cams = (
            select(Finding.agent_id, Finding.camera_id)
            .where(kev_failing(), self.s.agent_visible(Finding.agent_id))
            .distinct()
            .subquery()
        )
        with self.s.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(cams)).scalar_one())
