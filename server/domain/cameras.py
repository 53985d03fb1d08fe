"""Cameras in scope: the paged list with audit states, and one camera with its findings, report
history and the other cameras sharing its password."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, get_args

from sqlalchemy import ColumnElement, Connection, case, func, select

from protocol import AuditState
from server.domain.findings import FindingRow, Findings, list_order, reuse_row
from server.domain.scope import Area, NotVisible, Paged
from server.storage.models import Camera, Finding, Message

HISTORY = 20  # reports shown in a camera's history
AUDIT_STATES: Final[tuple[str, ...]] = get_args(AuditState)
NOT_AUDITED_ANY: Final = "not_audited_any"  # a camera list filter: any state but "audited"
CAMERA_FILTERS: Final = (*AUDIT_STATES, NOT_AUDITED_ANY)


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
class CameraPage(Paged):
    items: list[CameraLine]
    total: int
    page: int
    per_page: int


def _count_cameras(conn: Connection, *where: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.count()).select_from(Camera).where(*where)).scalar_one())


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


class Cameras(Area):
    """The cameras of a scope."""

    __slots__ = ()

    def cameras(self, audit: str | None = None, page: int = 1, per_page: int = 50) -> CameraPage:
        """The cameras in scope with their audit state, those not fully audited first."""
        where = [self.s.agent_visible(Camera.agent_id)]
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
        with self.s.engine.connect() as conn:
            total = _count_cameras(conn, *where)
            rows = conn.execute(
                q.order_by(first, Camera.agent_id, Camera.camera_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return CameraPage([CameraLine(*r) for r in rows], total, page, per_page)

    def cameras_not_audited(self) -> int:
        """Cameras in scope whose audit did not complete."""
        with self.s.engine.connect() as conn:
            return _count_cameras(
                conn, self.s.agent_visible(Camera.agent_id), Camera.audit != "audited"
            )

    def camera(self, agent_id: str, camera_id: str) -> CameraView:
        with self.s.engine.connect() as conn:
            cam = conn.execute(
                select(Camera.__table__).where(
                    Camera.agent_id == agent_id,
                    Camera.camera_id == camera_id,
                    self.s.agent_visible(Camera.agent_id),
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
        findings = Findings(self.s).camera_findings(agent_id, camera_id)
        history = [_history_line(camera_id, *r) for r in reports]
        shared = self._password_shared(cam.password_key_id, cam.password_fingerprint)
        others = [c for c in shared if (c.agent_id, c.camera_id) != (agent_id, camera_id)]
        if others:
            reuse = reuse_row(agent_id, camera_id, cam.site, cam.identity, len(others))
            findings = sorted([reuse, *findings], key=list_order)
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
        with self.s.engine.connect() as conn:
            return [
                CameraRef(*r)
                for r in conn.execute(
                    select(Camera.agent_id, Camera.camera_id, Camera.site)
                    .where(
                        Camera.password_key_id == key_id,
                        Camera.password_fingerprint == fingerprint,
                        self.s.agent_visible(Camera.agent_id),
                    )
                    .order_by(Camera.agent_id, Camera.camera_id)
                )
            ]
