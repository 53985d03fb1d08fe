"""Tables of Internet providers' surveys (Directive 23/CT-TTg): the prefixes a provider holds,
its schedule, each survey and its shards, what the survey agents found, the subscriber map and
the notices sent to subscribers.

Registered on the same ``Base`` as the ingest tables; the schema is owned by migrations 0013
and 0014.
Everything belongs to the organisation unit of the provider (``org_unit_id``), which is what
tenancy filters on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime

SURVEY_STATES: Final = ("running", "done", "cancelled")
# queued: waiting for the scheduler; sent..: the command's; reissued: given to another agent
SHARD_STATES: Final = ("queued", "sent", "running", "done", "failed", "reissued")
NOTICE_STATES: Final = ("open", "sent", "acknowledged", "fixed")
LIST_KINDS: Final = ("exclude", "opt_out")


class SurveyPrefix(Base):
    """A prefix a provider declared it holds (no address is held by two declarations)."""

    __tablename__ = "survey_prefixes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class SurveyListEntry(Base):
    """A prefix inside a provider's own prefixes that its surveys leave alone: ``exclude`` (the
    provider's own equipment) or ``opt_out`` (a subscriber who asked not to be surveyed)."""

    __tablename__ = "survey_list_entries"
    __table_args__ = (UniqueConstraint("org_unit_id", "kind", "prefix"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # one of LIST_KINDS
    prefix: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class SurveySchedule(Base):
    """How often a provider's prefixes are surveyed, and by which survey agents."""

    __tablename__ = "survey_schedules"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    every_days: Mapped[int] = mapped_column(Integer)
    agents: Mapped[list[str]] = mapped_column(JSON)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # one of SURVEY_STATES
    prefixes: Mapped[list[str]] = mapped_column(JSON)  # as declared when it started
    addresses: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(64))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SurveyShard(Base):
    """Contiguous addresses of a survey given to one agent in one command."""

    __tablename__ = "survey_shards"
    __table_args__ = (Index("ix_survey_shards_command", "command_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    blocks: Mapped[list[str]] = mapped_column(JSON)  # CIDR blocks, in address order
    addresses: Mapped[int] = mapped_column(BigInteger)
    agent_id: Mapped[str] = mapped_column(String(64))
    command_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # one of SHARD_STATES
    done: Mapped[int] = mapped_column(BigInteger)  # addresses probed (the last part's summary)
    parts: Mapped[list[int]] = mapped_column(JSON)  # SurveyResult parts received
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the last part's, as sent
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SurveyHost(Base):
    """An address that answered a survey, with what it shows anyone (its identity)."""

    __tablename__ = "survey_hosts"
    __table_args__ = (UniqueConstraint("survey_id", "address", name="uq_survey_hosts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    shard_id: Mapped[int] = mapped_column(ForeignKey("survey_shards.id"))
    address: Mapped[str] = mapped_column(String(45))
    ports: Mapped[list[int]] = mapped_column(JSON)
    vendor: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    firmware: Mapped[str | None] = mapped_column(String(128))
    complete: Mapped[bool] = mapped_column(Boolean)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    holding_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber_holdings.id"))


class SurveyExposure(Base):
    """An insecure device a survey found: what it is, where, and who held the address then."""

    __tablename__ = "survey_exposures"
    __table_args__ = (
        UniqueConstraint("survey_id", "address", "port", "code", name="uq_survey_exposures"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    shard_id: Mapped[int] = mapped_column(ForeignKey("survey_shards.id"))
    address: Mapped[str] = mapped_column(String(45))
    port: Mapped[int] = mapped_column(Integer)
    vendor: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(80))  # a finding code of the catalogue
    severity: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    holding_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber_holdings.id"))


class SubscriberHolding(Base):
    """A line of the subscriber map: a prefix held by a subscriber over a validity period."""

    __tablename__ = "subscriber_holdings"
    __table_args__ = (
        UniqueConstraint("org_unit_id", "prefix", "valid_from", name="uq_subscriber_holdings"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(64))
    subscriber_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str] = mapped_column(String(64))


class SurveyNotice(Base):
    """What one survey found for one subscriber, and where the notice stands."""

    __tablename__ = "survey_notices"
    __table_args__ = (
        UniqueConstraint("survey_id", "org_unit_id", "subscriber_id", name="uq_survey_notices"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    subscriber_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # one of NOTICE_STATES
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    fixed_by_survey: Mapped[int | None] = mapped_column(Integer)  # the survey that saw it gone
