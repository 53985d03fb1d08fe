"""Tables of firmware distribution: the catalogue, rollout campaigns, and signed commands.

Registered on the same ``Base`` as the ingest tables; the schema is owned by migration 0003.
The TUF metadata itself lives on disk (``server.firmware.tuf_repo``); the catalogue keeps what
operators need around it (models, release notes, who uploaded and retired what).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime


class FirmwareImage(Base):
    __tablename__ = "firmware_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_path: Mapped[str] = mapped_column(String(255), unique=True)  # the TUF target path
    vendor: Mapped[str] = mapped_column(String(64))
    models: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(64))
    build_date: Mapped[date | None] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    vendor_sha256: Mapped[str | None] = mapped_column(String(64))  # published by the vendor
    release_notes: Mapped[str] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retired_by: Mapped[str | None] = mapped_column(String(64))


class Rollout(Base):
    """A campaign; ``phase``/``stage``/``failures``/``resume_to`` mirror ``campaign.Campaign``.

    ``action`` is the signed command each target gets: ``firmware.apply`` (built from the image)
    or any other action whose params each target carries (``RolloutTarget.params``)."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80), server_default="firmware.apply")
    image_id: Mapped[int | None] = mapped_column(ForeignKey("firmware_images.id"), index=True)
    # the org unit the targets were selected under (visibility); None: whole fleet
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    selector: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    phase: Mapped[str] = mapped_column(String(24))
    stage: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    resume_to: Mapped[str | None] = mapped_column(String(24))
    downgrade_approved_by: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RolloutTarget(Base):
    __tablename__ = "rollout_targets"
    __table_args__ = (Index("ix_rollout_targets_command", "command_id"),)

    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # order of the plan
    stage: Mapped[int] = mapped_column(Integer)  # 0: canary, then batches 1..n
    state: Mapped[str] = mapped_column(String(16))  # pending | in_flight | succeeded | failed
    from_version: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the command's, if not firmware
    command_id: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(512))
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RolloutEvent(Base):
    """Every step of a campaign with who approved or caused it (``system`` for the scheduler)."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class CommandRecord(Base):
    """Every command signed and published to an agent, and the latest result it reported."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_agent", "agent_id"),)

    command_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    nonce: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_by: Mapped[str] = mapped_column(String(64))
    rollout_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16))  # sent, then the agent's CommandStatus
    step: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_seq: Mapped[int] = mapped_column(BigInteger)  # seq of the last result applied
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
