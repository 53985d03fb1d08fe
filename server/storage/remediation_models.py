"""Tables of remediation plans: what each camera of a plan gets, or why it gets nothing.

A plan is a rollout (``rollouts`` row, ``action`` = the settings command) created awaiting
approval; its targets are the cameras with changes. ``remediation_items`` keeps one row per camera
the selection reached: the planned changes and the settings left out with their reasons, or the
reason the whole camera is left out; after the run, the sealed snapshot of the settings before
the change and the per-setting results the agent reported, and any later rollback. Schema owned
by migration 0012.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime


class RemediationItem(Base):
    __tablename__ = "remediation_items"
    __table_args__ = (Index("ix_remediation_items_rollback", "rollback_command_id"),)

    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # planned | excluded
    reason: Mapped[str | None] = mapped_column(String(40))  # why excluded (a catalogue code)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)  # setting -> value to write
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # {code, setting, reason}
    findings: Mapped[list[str]] = mapped_column(JSON)  # the finding codes the changes close
    controls: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(16))  # the command's final status
    outcome_reason: Mapped[str | None] = mapped_column(String(80))
    results: Mapped[dict[str, Any]] = mapped_column(JSON)  # setting -> {outcome, asked, got}
    reaudit: Mapped[dict[str, Any]] = mapped_column(JSON)  # verdict -> controls, after the change
    sealed: Mapped[str | None] = mapped_column(Text)  # JWE compact: the snapshot before
    rollback_command_id: Mapped[str | None] = mapped_column(String(64))
    rollback_status: Mapped[str | None] = mapped_column(String(16))
    rollback_reason: Mapped[str | None] = mapped_column(String(80))
    rollback_results: Mapped[dict[str, Any]] = mapped_column(JSON)
    rollback_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
