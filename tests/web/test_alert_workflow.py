"""Alerts acknowledged, silenced and assigned (server.domain.alert_workflow), on the real
database: who may act, on what, with the history and the audit log, and a silenced alert
sending nothing until its silence ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from server.alerts.worker import AlertWorker
from server.config import AlertsConfig
from server.domain.alert_workflow import AlertWorkflow
from server.domain.scope import Forbidden, Invalid, NotVisible
from server.storage import Repository
from server.storage.org_models import AlertDelivery, AlertEvent, AuditEntry
from tests.web.conftest import World, bearer, principal_of, scoped_as


def flow(repo: Repository, username: str, now: datetime | None = None) -> AlertWorkflow:
    scoped = scoped_as(repo, principal_of(repo, username))
    return AlertWorkflow(scoped if now is None else type(scoped)(
        repo, scoped.p, silent_after=scoped.silent_after, now=now
    ))  # fmt: skip


def events(repo: Repository, site: str) -> list[int]:
    with repo.engine.connect() as conn:
        return list(conn.execute(select(AlertEvent.id).where(AlertEvent.site == site)).scalars())


def test_acknowledge_silence_assign_with_history(repo: Repository, world: World) -> None:
    alert = events(repo, "site-a")[0]
    operator = flow(repo, "operator-a")
    operator.acknowledge(alert)
    operator.silence(alert, 4)
    operator.assign(alert, world.users["admin-a"])
    state = flow(repo, "viewer-a").states([alert])[alert]  # a viewer reads it
    assert state.acknowledged_by == "operator-a"
    assert state.silenced_until is not None
    assert state.silenced_until > datetime.now(UTC) + timedelta(hours=3)
    assert state.assignee == "admin-a"
    assert [(h.username, h.action, h.assignee) for h in state.history] == [
        ("operator-a", "ack", None),
        ("operator-a", "silence", None),
        ("operator-a", "assign", "admin-a"),
    ]
    operator.unsilence(alert)
    operator.assign(alert, None)
    state = operator.states([alert])[alert]
    assert (state.silenced_until, state.assignee, len(state.history)) == (None, None, 5)
    with repo.engine.connect() as conn:
        audit = conn.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail, AuditEntry.org_unit_id)
            .where(AuditEntry.target_type == "alert")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a.action, a.outcome) for a in audit] == [
        ("alert.ack", "ok"),
        ("alert.silence", "ok"),
        ("alert.assign", "ok"),
        ("alert.unsilence", "ok"),
        ("alert.assign", "ok"),
    ]
    assert audit[1].detail == {"hours": 4}
    assert audit[2].detail == {"assignee": "admin-a"}
    assert audit[0].org_unit_id is not None  # agency A's administrator reads it


def test_who_may_act_on_what(repo: Repository, world: World) -> None:
    mine, foreign = events(repo, "site-a")[0], events(repo, "site-b")[0]
    operator = flow(repo, "operator-a")
    with pytest.raises(NotVisible):
        operator.acknowledge(foreign)
    assert operator.states([foreign]) == {}
    with pytest.raises(Forbidden):
        flow(repo, "viewer-a").acknowledge(mine)
    with pytest.raises(Invalid):
        operator.silence(mine, 5)  # not one of the periods offered
    with pytest.raises(Invalid):
        operator.assign(mine, world.users["admin-b"])  # another agency's user
    with pytest.raises(Invalid):
        operator.assign(mine, world.users["viewer-a"])  # a viewer cannot act on it
    assert [a.username for a in operator.assignable()] == ["admin-a", "operator-a"]
    with repo.engine.connect() as conn:
        denied = conn.execute(
            select(AuditEntry.action).where(AuditEntry.outcome == "denied")
        ).scalars()
        assert sorted(denied) == ["alert.ack", "alert.ack"]


def test_a_silenced_alert_waits_for_the_end_of_its_silence(repo: Repository, world: World) -> None:
    """Agency B's route (a closed port) has a pending delivery per open finding of B."""
    now = datetime.now(UTC)
    silenced = events(repo, "site-b")[0]
    flow(repo, "admin-b", now).silence(silenced, 1)
    worker = AlertWorker(AlertsConfig(), repo)

    def attempts() -> dict[int, int]:
        with repo.engine.connect() as conn:
            return dict(conn.execute(select(AlertDelivery.event_id, AlertDelivery.attempts)).all())

    before = attempts()
    assert before[silenced] == 0
    worker.deliver_due(now + timedelta(minutes=1))
    during = attempts()
    assert during[silenced] == 0
    assert all(n == 1 for e, n in during.items() if e != silenced)
    worker.deliver_due(now + timedelta(hours=2))  # silence over (and every retry due)
    assert attempts()[silenced] == 1


def test_the_api_acts_and_answers_the_handling(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    alert = events(repo, "site-a")[0]
    url = f"/api/v1/alerts/{alert}"
    given = {"assignee_id": world.users["operator-a"]}
    answer = server.post(f"{url}/assign", json=given, headers=bearer(world, "operator-a"))
    assert answer.status_code == 200, answer.text
    handling = answer.json()
    assert handling["assignee"] == "operator-a"
    assert [(h["action"], h["assignee"]) for h in handling["history"]] == [("assign", "operator-a")]
    silenced = server.post(f"{url}/silence", json={"hours": 24}, headers=bearer(world, "admin-a"))
    assert silenced.json()["silenced_until"] is not None
    assert server.post(f"{url}/ack", headers=bearer(world, "viewer-a")).status_code == 403
    assert server.post(f"{url}/close", headers=bearer(world, "admin-a")).status_code == 422
    odd = server.post(f"{url}/silence", json={"hours": 5}, headers=bearer(world, "admin-a"))
    assert odd.status_code == 422
