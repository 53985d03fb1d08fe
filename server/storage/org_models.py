"""Tables of the dashboard: the organisation tree, users, sessions, API tokens, audit, retention.

Registered on the same ``Base`` as the ingest tables; the schema is owned by migrations 0002 and
0003 (model register, alerts, daily trend, retention stubs).

The organisation tree is province or ministry -> agency -> information system -> site. Each node
keeps a materialised ``path`` (``/1/4/9/``) so that "everything under this node" is one indexed
prefix match; sites carry the ``site`` name agents enroll with, which ties agents and cameras
into the tree without touching the ingest tables.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime

ROOT_KINDS: Final = ("province", "ministry")
KINDS: Final = (*ROOT_KINDS, "agency", "system", "site")
# which kinds a node of each kind may be placed under (None: a root)
PARENT_KINDS: Final[dict[str, tuple[str | None, ...]]] = {
    "province": (None,),
    "ministry": (None,),
    "agency": ("province", "ministry", "agency"),
    "system": ("agency",),
    "site": ("system",),
}
ROLES: Final = ("viewer", "operator", "admin")
FRAMEWORKS: Final = ("ND85_TT12_TCVN11930", "ND331_TCVN14423")
PLAN_STATUSES: Final = ("full", "partial", "none")
LEVELS: Final = (1, 2, 3, 4, 5)
# raw reports kept per security level unless an administrator changes it (days)
DEFAULT_RETENTION_DAYS: Final[dict[int, int]] = {1: 30, 2: 30, 3: 90, 4: 180, 5: 365}


class OrgUnit(Base):
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(512), index=True)
    site: Mapped[str | None] = mapped_column(String(64), unique=True)  # kind "site" only
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the IANA zone times of this part of the tree are shown in; None: the parent's (at the top:
    # the collector's ``[web] timezone``)
    timezone: Mapped[str | None] = mapped_column(String(64))


def unit_zones(conn: Connection) -> dict[int, str]:
    """The units that set a time zone (a handful), by id."""
    rows = conn.execute(select(OrgUnit.id, OrgUnit.timezone).where(OrgUnit.timezone.is_not(None)))
    return {oid: name for oid, name in rows if name}


def nearest_zone(path: str, zones: dict[int, str]) -> str | None:
    """The zone the unit of ``path`` (``/1/4/9/``) shows times in: its own, else its nearest
    ancestor's, from ``zones`` (the units that set one); None when none of them did."""
    ids = [int(part) for part in path.strip("/").split("/")]
    return next((zones[i] for i in reversed(ids) if i in zones), None)


class InformationSystem(Base):
    """The security-level record of an information system (an org unit of kind "system")."""

    __tablename__ = "information_systems"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    framework: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer)
    decision_number: Mapped[str | None] = mapped_column(String(64))
    decision_date: Mapped[date | None] = mapped_column(Date)
    plan_status: Mapped[str] = mapped_column(String(16))
    next_check_due: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))
    # the root of what the user sees and acts on; None: the whole fleet, unmapped sites included
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    lang: Mapped[str | None] = mapped_column(String(8))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginThrottle(Base):
    """Failed sign-ins counted per account (``account:NAME``) and per source address
    (``source:ADDRESS``); a key locked until a future time is refused (server.domain.throttle)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token for automation: acts as its user; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise it in lists
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who did what, when, to which target, with which outcome. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    # the org unit the target belongs to (scopes who may read the entry); None: fleet-wide
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | failed
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class RetentionPolicy(Base):
    """How long raw reports of systems at a security level are kept (the pruning job reads it)."""

    __tablename__ = "retention_policies"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw_reports_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64))


# -- migration 0003: model register, alerts, daily trend, retention stubs -------------------------

# finding: a critical finding fails; silent: an agent stopped reporting; audit: a camera could not
# be fully audited (login failed, unreachable, partial, unsupported, not audited)
ALERT_KINDS: Final = ("finding", "silent", "audit")
# the findings list's order (most severe first). Migration 0003 indexes this expression with
# agent, camera and id on PostgreSQL (``ix_findings_list``); it is not declared on the model,
# since SQLite can neither use it much nor reflect it.
SEVERITY_RANK_SQL: Final = (
    "CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 3 WHEN 'info' THEN 4 ELSE 99 END"
)

ROUTE_CHANNELS: Final = ("webhook", "email")
DELIVERY_STATES: Final = ("pending", "sent", "failed")


class ModelEntry(Base):
    """A camera model of the register: its certificate (the regulation it was issued under, and
    the firmware it covers) and/or an authority's flag.

    Cameras match an entry by vendor, model, hardware version and firmware (case-insensitive;
    ``server.domain.register``): an entry with a hardware id or a firmware matches only cameras
    reporting them, and the most specific entry wins.
    """

    __tablename__ = "model_register"
    __table_args__ = (
        UniqueConstraint(
            "vendor_key", "model_key", "hardware_key", "firmware_key", name="uq_model_register"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vendor: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    hardware_id: Mapped[str | None] = mapped_column(String(128))
    # lower-cased match keys ("" for no hardware id) so that the unique constraint holds
    vendor_key: Mapped[str] = mapped_column(String(128))
    model_key: Mapped[str] = mapped_column(String(128))
    hardware_key: Mapped[str] = mapped_column(String(128))
    firmware: Mapped[str | None] = mapped_column(String(128))  # the certified firmware
    firmware_key: Mapped[str] = mapped_column(String(128), server_default="")
    regulation: Mapped[str | None] = mapped_column(String(64))  # e.g. "QCVN 11:2026/BCA"
    certificate_number: Mapped[str | None] = mapped_column(String(64))
    certificate_issuer: Mapped[str | None] = mapped_column(String(200))
    certificate_date: Mapped[date | None] = mapped_column(Date)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(512))
    flag_reference: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class AlertEvent(Base):
    """An alertable episode: a critical finding failing on a camera, a camera that could not be
    fully audited (``code`` is its audit state), or an agent gone silent.

    Open while ``closed_at`` is None; at most one open event per (kind, agent, camera, code),
    which is what deduplicates alerts. Closed critical findings stay as the findings history the
    compliance report counts.
    """

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_key", "kind", "agent_id", "camera_id", "code"),
        Index("ix_alert_events_opened", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # finding | silent | audit
    agent_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))  # "" for silent agents
    code: Mapped[str] = mapped_column(String(80))  # "" for silent agents
    site: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the people's side (server.domain.alert_workflow): who saw it, who owns it, and until when
    # no delivery is sent for it; every change is an AlertAction row and an audit-log entry
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    silenced_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AlertRoute(Base):
    """Where alerts of an org subtree go; routes of every ancestor apply too (inherited)."""

    __tablename__ = "alert_routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(String(512))  # URL, or comma-separated addresses
    secret: Mapped[str | None] = mapped_column(String(128))  # webhook HMAC-SHA256 key
    kinds: Mapped[list[str]] = mapped_column(JSON)  # subset of ALERT_KINDS
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


ALERT_ACTIONS: Final = ("ack", "silence", "unsilence", "assign")


class AlertAction(Base):
    """What a user did to an alert event: its history, oldest first."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # one of ALERT_ACTIONS
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)  # silence
    assignee: Mapped[str | None] = mapped_column(String(64))  # assign (None: unassigned)


class AlertDelivery(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "route_id", name="uq_alert_deliveries"),
        Index("ix_alert_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id"))
    route_id: Mapped[int] = mapped_column(ForeignKey("alert_routes.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(512))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DailySnapshot(Base):
    """Open (failing) findings per day, site and severity: the overview's trend chart."""

    __tablename__ = "daily_snapshots"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    severity: Mapped[str] = mapped_column(String(16), primary_key=True)
    open_findings: Mapped[int] = mapped_column(Integer)
    cameras: Mapped[int] = mapped_column(Integer)


class PrunedMessage(Base):
    """What stays of a message whose raw JWS the retention job deleted (docs/adr/0009)."""

    __tablename__ = "pruned_messages"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    prev: Mapped[str] = mapped_column(String(64))
    prev_seq: Mapped[int] = mapped_column(BigInteger)
    pruned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    archive: Mapped[str | None] = mapped_column(String(255))  # archive file name, if written
