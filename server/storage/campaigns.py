"""Campaigns in the database: load one as a ``campaign.Campaign``, persist a ``Transition``.

Load and save happen in one transaction with the rollout row locked (``FOR UPDATE`` where the
database has it; SQLite serialises writers), and inside one process a lock serialises the
scheduler with operator actions, so a promote never interleaves with a tick.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from server.firmware.campaign import Campaign, Event, Policy, Target, Transition, Window
from server.storage.firmware_models import Rollout, RolloutEvent, RolloutTarget

LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Loaded:
    row: Any  # the rollouts row
    campaign: Campaign


def policy_to_json(p: Policy) -> dict[str, Any]:
    return {
        "canary": p.canary,
        "batch_size": p.batch_size,
        "max_parallel_per_site": p.max_parallel_per_site,
        "failure_threshold": p.failure_threshold,
        "command_ttl_s": int(p.command_ttl.total_seconds()),
        "windows": {
            site: {
                "start": w.start.strftime("%H:%M"),
                "end": w.end.strftime("%H:%M"),
                "utc_offset_min": w.utc_offset_min,
            }
            for site, w in p.windows.items()
        },
    }


def policy_from_json(d: dict[str, Any]) -> Policy:
    return Policy(
        canary=d["canary"],
        batch_size=d["batch_size"],
        max_parallel_per_site=d["max_parallel_per_site"],
        failure_threshold=d["failure_threshold"],
        command_ttl=timedelta(seconds=d["command_ttl_s"]),
        windows={
            site: Window(
                time.fromisoformat(w["start"]), time.fromisoformat(w["end"]), w["utc_offset_min"]
            )
            for site, w in d["windows"].items()
        },
    )


class UnknownRollout(LookupError):
    """No rollout of this id (a command or an action named one that is not stored)."""


def insert_rollout(
    conn: Connection,
    *,
    name: str,
    action: str,
    image_id: int | None,
    org_unit_id: int | None,
    selector: dict[str, Any],
    policy: Policy,
    campaign: Campaign,
    created_by: str,
    now: datetime,
    downgrade_approved_by: str | None = None,
) -> int:
    """A new rollout row in ``campaign``'s phase and stage; its id."""
    return conn.execute(
        insert(Rollout)
        .values(
            name=name,
            action=action,
            image_id=image_id,
            org_unit_id=org_unit_id,
            selector=selector,
            policy=policy_to_json(policy),
            phase=campaign.phase,
            stage=campaign.stage,
            failures=0,
            resume_to=None,
            downgrade_approved_by=downgrade_approved_by,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        .returning(Rollout.id)
    ).scalar_one()


def load_existing(conn: Connection, rollout_id: int) -> Loaded:
    """``load`` of a rollout that must exist; ``UnknownRollout`` otherwise."""
    loaded = load(conn, rollout_id)
    if loaded is None:
        raise UnknownRollout(f"rollout {rollout_id}")
    return loaded


def load(conn: Connection, rollout_id: int) -> Loaded | None:
    row = conn.execute(
        select(Rollout.__table__).where(Rollout.id == rollout_id).with_for_update()
    ).one_or_none()
    if row is None:
        return None
    targets = tuple(
        Target(t.agent_id, t.camera_id, t.site, t.stage, t.state, t.deadline, t.reason)
        for t in conn.execute(
            select(RolloutTarget.__table__)
            .where(RolloutTarget.rollout_id == rollout_id)
            .order_by(RolloutTarget.position)
        )
    )
    campaign = Campaign(
        row.phase,
        row.stage,
        targets,
        policy_from_json(row.policy),
        row.failures,
        row.resume_to,
    )
    return Loaded(row, campaign)


def params(conn: Connection, rollout_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    """The command params each target of a rollout of any other action than firmware carries."""
    return {
        (t.agent_id, t.camera_id): t.params or {}
        for t in conn.execute(
            select(RolloutTarget.agent_id, RolloutTarget.camera_id, RolloutTarget.params).where(
                RolloutTarget.rollout_id == rollout_id
            )
        )
    }


def save(
    conn: Connection,
    rollout_id: int,
    before: Campaign,
    step: Transition,
    now: datetime,
    *,
    commands: dict[tuple[str, str], str] | None = None,
) -> None:
    """Write what changed: the rollout row, changed targets (with their command ids), events."""
    after = step.campaign
    conn.execute(
        update(Rollout)
        .where(Rollout.id == rollout_id)
        .values(
            phase=after.phase,
            stage=after.stage,
            failures=after.failures,
            resume_to=after.resume_to,
            updated_at=now,
        )
    )
    old = {t.key: t for t in before.targets}
    for t in after.targets:
        if old[t.key] == t:
            continue
        values: dict[str, Any] = {
            "state": t.state,
            "deadline": t.deadline,
            "reason": t.reason,
            "updated_at": now,
        }
        if commands and t.key in commands:
            values.update(command_id=commands[t.key], step=None)
        conn.execute(
            update(RolloutTarget)
            .where(
                RolloutTarget.rollout_id == rollout_id,
                RolloutTarget.agent_id == t.agent_id,
                RolloutTarget.camera_id == t.camera_id,
            )
            .values(**values)
        )
    record(conn, rollout_id, step.events, now)


def record(conn: Connection, rollout_id: int, events: tuple[Event, ...], now: datetime) -> None:
    if events:
        conn.execute(
            insert(RolloutEvent),
            [
                {
                    "rollout_id": rollout_id,
                    "at": now,
                    "actor": e.actor,
                    "action": e.action,
                    "detail": dict(e.detail),
                }
                for e in events
            ],
        )
