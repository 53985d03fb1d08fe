"""Remediation items in the database: the per-camera rows of a plan and the results on them.

The scheduler hands every final command result here (``record_result``): a result of a plan's
settings command fills the camera's item (outcome, per-setting results, the sealed snapshot); a
result of a restore command fills the item's rollback state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from protocol import CommandResult
from protocol.commands import FINAL
from server.firmware.commands import SettingResults
from server.storage.remediation_models import RemediationItem


def add_items(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """The plan's items, one per camera the selection reached (``RemediationItem`` columns)."""
    if rows:
        conn.execute(insert(RemediationItem), [dict(r) for r in rows])


def record_result(
    conn: Connection, cmd: Any, result: CommandResult, found: SettingResults, now: datetime
) -> None:
    """A result on the item it concerns: ``cmd`` (the ``commands`` row) is a plan's settings
    command for its camera, or the restore command of an item; nothing otherwise. The sealed
    snapshot is kept from whichever result carries it (the agent sends it before any write);
    the outcome, per-setting results and re-audit from the final result."""
    final = result.status in FINAL
    if cmd.rollout_id is not None:
        values: dict[str, Any] = {"updated_at": now}
        if found.sealed is not None:
            values["sealed"] = found.sealed
        if final:
            values |= {
                "outcome": result.status,
                "outcome_reason": result.reason,
                "results": found.settings,
                "reaudit": found.reaudit,
            }
        conn.execute(
            update(RemediationItem)
            .where(
                RemediationItem.rollout_id == cmd.rollout_id,
                RemediationItem.agent_id == cmd.agent_id,
                RemediationItem.camera_id == cmd.camera_id,
            )
            .values(**values)
        )
    elif final:
        conn.execute(
            update(RemediationItem)
            .where(RemediationItem.rollback_command_id == result.command_id)
            .values(
                rollback_status=result.status,
                rollback_reason=result.reason,
                rollback_results=found.settings,
                updated_at=now,
            )
        )


def set_rollback(
    conn: Connection,
    rollout_id: int,
    key: tuple[str, str],
    command_id: str,
    *,
    by: str,
    now: datetime,
) -> None:
    conn.execute(
        update(RemediationItem)
        .where(
            RemediationItem.rollout_id == rollout_id,
            RemediationItem.agent_id == key[0],
            RemediationItem.camera_id == key[1],
        )
        .values(
            rollback_command_id=command_id,
            rollback_status="queued",
            rollback_by=by,
            updated_at=now,
        )
    )
