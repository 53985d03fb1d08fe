"""Tables of the collector. The schema is owned by the Alembic migrations shipped next to this
module; these models describe it for queries and for ``alembic revision --autogenerate``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)  # SQLite stores the clock reading without its offset

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Agent(Base):
    __tablename__ = "agents"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    hostname: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | revoked
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex
    site: Mapped[str] = mapped_column(String(64))
    pre_approved: Mapped[bool] = mapped_column(Boolean)
    uses_left: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Message(Base):
    """Every accepted agent message, once, with the exact JWS text."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("agent_id", "seq", name="uq_messages_agent_seq"),
        Index("ix_messages_agent_prev_seq", "agent_id", "prev_seq"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    agent_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    prev: Mapped[str] = mapped_column(String(64))
    prev_seq: Mapped[int] = mapped_column(BigInteger)
    jws: Mapped[str] = mapped_column(Text)


class Camera(Base):
    """Current state per camera: the newest report (highest seq) that mentioned it wins.

    ``audit`` is how far the camera's audit got (``protocol.AuditState``): only "audited" ever
    counts a camera as clean. ``password_key_id`` and ``password_fingerprint`` are the keyed
    fingerprint of the camera's stored password (AUTH-03, docs/adr/0019-password-reuse.md):
    cameras with both equal share one password; the password itself never leaves the site.

    ``fail_<severity>`` count the failed findings of the camera's current report per severity.
    Ingest writes them in the upsert that replaces the camera's findings (one transaction, so
    they are never stale; migration 0011 computed them for the rows stored before): fleet-wide
    counts (overview, compliance, the findings list's total) read 100,000 camera rows instead of
    1,000,000 findings.
    """

    __tablename__ = "cameras"
    __table_args__ = (Index("ix_cameras_password", "password_key_id", "password_fingerprint"),)

    agent_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("agents.agent_id"), primary_key=True
    )
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    report_seq: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(512))
    reachable: Mapped[bool] = mapped_column(Boolean)
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    audited_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    audit: Mapped[str] = mapped_column(String(16), server_default="not_audited")
    audit_reason: Mapped[str | None] = mapped_column(String(512))
    password_key_id: Mapped[str | None] = mapped_column(String(16))
    password_fingerprint: Mapped[str | None] = mapped_column(String(64))
    fail_critical: Mapped[int] = mapped_column(Integer, server_default="0")
    fail_high: Mapped[int] = mapped_column(Integer, server_default="0")
    fail_medium: Mapped[int] = mapped_column(Integer, server_default="0")
    fail_low: Mapped[int] = mapped_column(Integer, server_default="0")
    fail_info: Mapped[int] = mapped_column(Integer, server_default="0")


# the camera's failed-finding count of each severity (``protocol.messages.Severity``)
FAIL_COLUMNS: Final = {
    "critical": Camera.fail_critical,
    "high": Camera.fail_high,
    "medium": Camera.fail_medium,
    "low": Camera.fail_low,
    "info": Camera.fail_info,
}


def fail_total() -> ColumnElement[int]:
    """The camera's failed findings of every severity."""
    c = Camera
    return c.fail_critical + c.fail_high + c.fail_medium + c.fail_low + c.fail_info


KEV_CODE: Final = "fw.known_exploited"
# the rows of ``ix_findings_kev`` (queries select them with ``kev_failing``)
KEV_FAILING: Final = f"code = '{KEV_CODE}' AND status = 'fail'"
CVE_MAX: Final = 32
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,20}")


def finding_cve(evidence: Mapping[str, Any]) -> str | None:
    """``findings.cve``: the CVE id the finding's evidence names, None when it names none."""
    cve = evidence.get("cve")
    return cve if isinstance(cve, str) and _CVE.fullmatch(cve) else None


class Finding(Base):
    """Current findings per camera, replaced as a whole by a newer report."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_camera", "agent_id", "camera_id"),
        # the known-exploited page and the report's KEV set, in the page's camera order
        Index(
            "ix_findings_kev",
            "agent_id",
            "camera_id",
            sqlite_where=text(KEV_FAILING),
            postgresql_where=text(KEV_FAILING),
        ),
        # the known-exploited page: the cameras of each CVE, counted and listed in camera order
        Index(
            "ix_findings_kev_cve",
            "cve",
            "agent_id",
            "camera_id",
            sqlite_where=text(KEV_FAILING),
            postgresql_where=text(KEV_FAILING),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    agent_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    report_seq: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(80))
    check: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    controls: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(512))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the evidence's CVE when it is one (``finding_cve``), written by ingest with the finding
    cve: Mapped[str | None] = mapped_column(String(CVE_MAX))


class Quarantine(Base):
    """Rejected messages, bounded: the oldest rows are pruned beyond the configured size."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(String(512))
    topic: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sample: Mapped[bytes] = mapped_column(LargeBinary)


def kev_failing() -> ColumnElement[bool]:
    """The findings ``ix_findings_kev`` holds, written with literals so that SQLite and
    PostgreSQL see that the partial index applies."""
    return and_(
        Finding.code == literal_column(f"'{KEV_CODE}'"),
        Finding.status == literal_column("'fail'"),
    )
