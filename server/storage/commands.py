"""The signed-command outbox in the database, and what the scheduler reads beside it.

``queue`` puts a command in the ``commands`` table (status ``queued``); the running collector's
scheduler signs and publishes it (``queued`` -> ``sent``, or ``expired``), then applies the
agent's ``cmd-result`` messages to it and to its rollout target. Results are matched by
``command_id`` AND the sending agent, and applied only when their seq is newer than the last
applied one, so re-reading messages is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from protocol import Command, CommandResult
from protocol.topics import CHANNEL_OF
from server.storage.firmware_models import CommandRecord, FirmwareImage, Rollout, RolloutTarget
from server.storage.models import Message

# a command in these states may still get results; queued ones are not published yet
OPEN = ("sent", "accepted", "in_progress")
# the message types of the cmd-result channel: command results and survey result parts
RESULT_TYPES = tuple(t for t, channel in CHANNEL_OF.items() if channel == "cmd-result")
UNFINISHED = ("canary", "awaiting_promotion", "rolling", "paused", "halted")


def pending_work(engine: Engine) -> tuple[set[str], list[int]]:
    """The states of commands waiting (queued or open) and the unfinished rollouts, in one
    plain read: an idle tick takes no write lock (SQLite has one for the whole database)."""
    with engine.connect() as conn:
        waiting = set(
            conn.execute(
                select(CommandRecord.status)
                .where(CommandRecord.status.in_((*OPEN, "queued")))
                .distinct()
            ).scalars()
        )
        active = conn.execute(
            select(Rollout.id).where(Rollout.phase.in_(UNFINISHED)).order_by(Rollout.id)
        ).scalars()
        return waiting, list(active)


def open_agents(conn: Connection) -> list[tuple[str, int]]:
    """(agent, oldest last applied seq) of every agent with an open command."""
    rows = conn.execute(
        select(CommandRecord.agent_id, func.min(CommandRecord.last_seq))
        .where(CommandRecord.status.in_(OPEN))
        .group_by(CommandRecord.agent_id)
    )
    return [(agent_id, int(since)) for agent_id, since in rows]


def results_after(conn: Connection, agent_id: str, since: int) -> Sequence[Row[int, str]]:
    """The agent's stored messages of the ``cmd-result`` channel (command results and survey
    result parts) as (seq, jws) after ``since``, by seq."""
    return conn.execute(
        select(Message.seq, Message.jws)
        .where(
            Message.agent_id == agent_id,
            Message.seq > since,
            Message.type.in_(RESULT_TYPES),
        )
        .order_by(Message.seq)
    ).all()


def apply_result(
    conn: Connection, agent_id: str, seq: int, result: CommandResult, now: datetime
) -> Row[Any] | None:
    """Record a result on its command and rollout target; the command's row as it was before,
    or None when the result is not for an open command of this agent newer than ``seq``."""
    cmd = conn.execute(
        select(CommandRecord.__table__).where(
            CommandRecord.command_id == result.command_id,
            CommandRecord.agent_id == agent_id,
            CommandRecord.last_seq < seq,
        )
    ).one_or_none()
    if cmd is None:
        return None  # unknown, someone else's, or already applied
    conn.execute(
        update(CommandRecord)
        .where(CommandRecord.command_id == cmd.command_id)
        .values(
            status=result.status,
            step=result.step,
            reason=result.reason,
            details=dict(result.details),
            last_seq=seq,
            updated_at=now,
        )
    )
    if cmd.rollout_id is not None and cmd.camera_id is not None:
        conn.execute(
            update(RolloutTarget)
            .where(
                RolloutTarget.rollout_id == cmd.rollout_id,
                RolloutTarget.command_id == cmd.command_id,
            )
            .values(step=result.step or result.status, updated_at=now)
        )
    return cmd


def image(conn: Connection, image_id: int) -> Row[Any]:
    """A catalogue image (rollouts reference stored images)."""
    return conn.execute(select(FirmwareImage.__table__).where(FirmwareImage.id == image_id)).one()


def to_publish(conn: Connection, unanswered_since: datetime) -> Sequence[Row[Any]]:
    """The commands to publish now, oldest first: queued ones, and those sent at or before
    ``unanswered_since`` without an answer. They are claimed for this transaction: on
    PostgreSQL their rows stay locked until it ends and rows another collector claimed are
    skipped (``FOR UPDATE SKIP LOCKED``), so each is published by one collector at a time. On
    SQLite the transaction holds the database's write lock (``read_then_write``)."""
    return conn.execute(
        select(CommandRecord.__table__)
        .where(
            (CommandRecord.status == "queued")
            | ((CommandRecord.status == "sent") & (CommandRecord.updated_at <= unanswered_since))
        )
        .order_by(CommandRecord.issued_at)
        .with_for_update(skip_locked=True)
    ).all()


def set_status(conn: Connection, command_id: str, status: str, now: datetime) -> None:
    conn.execute(
        update(CommandRecord)
        .where(CommandRecord.command_id == command_id)
        .values(status=status, updated_at=now)
    )


def queue(
    conn: Connection, cmd: Command, *, issued_by: str, rollout_id: int | None, now: datetime
) -> None:
    """Put a command in the outbox; the running collector signs and publishes it."""
    conn.execute(
        insert(CommandRecord).values(
            command_id=cmd.command_id,
            agent_id=cmd.agent_id,
            site=cmd.site,
            camera_id=cmd.camera_id,
            action=cmd.action,
            nonce=cmd.nonce,
            params=dict(cmd.params),
            issued_at=cmd.issued_at,
            expires_at=cmd.expires_at,
            issued_by=issued_by,
            rollout_id=rollout_id,
            status="queued",
            step=None,
            reason=None,
            details={},
            # results come after the agent received the command: later than its newest message
            last_seq=select(func.coalesce(func.max(Message.seq), 0))
            .where(Message.agent_id == cmd.agent_id)
            .scalar_subquery(),
            updated_at=now,
        )
    )
