"""Operator actions and the alert jobs read, then write. On SQLite they must wait for the lock
the running collector's ingest holds, not fail with "database is locked" because another
writer committed between their first read and their first write."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from server.domain.agents import Agents
from server.domain.audit_log import AuditLog
from server.domain.orgs import Orgs, SecurityRecord
from server.domain.retention import RetentionPolicies
from server.domain.rollouts import Rollouts
from server.domain.scope import CLI, Invalid
from server.domain.users import Users
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.alert_events import snapshot, sync
from tests.support.sqlite import another_writer
from tests.web.conftest import PASSWORD, World, escrow_jwk, principal_of, scoped_as


@pytest.fixture
def sqlite_url(db_url: str) -> str:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer")
    return db_url


def test_operator_actions_wait_for_a_concurrent_writer(
    sqlite_url: str, repo: Repository, world: World
) -> None:
    root = scoped_as(repo, CLI)
    with another_writer(sqlite_url):
        system = Orgs(root).create_org(parent_id=world.agency_a, kind="system", name="System C")
    with another_writer(sqlite_url):
        site = Orgs(root).map_site("site-c", system.id)
    assert site.site == "site-c"
    with another_writer(sqlite_url):
        Orgs(root).set_security_record(
            system.id, SecurityRecord("ND85_TT12_TCVN11930", 2, None, None, "full", None)
        )
    with another_writer(sqlite_url):
        user = Users(root).create_user("operator-c", PASSWORD, "operator", world.agency_a)
    with another_writer(sqlite_url):
        assert Users(root).set_user_disabled(user.id, True).disabled
    admin = Users(scoped_as(repo, principal_of(repo, "root")))  # a token is a user's
    with another_writer(sqlite_url):
        info, _secret = admin.create_token("ops")
    with another_writer(sqlite_url):
        admin.revoke_token(info.id)
    with another_writer(sqlite_url):
        assert RetentionPolicies(root).set_retention(2, 400).raw_reports_days == 400
    with another_writer(sqlite_url):
        assert Agents(root).set_agent_status("agent-a2", "approve").status == "approved"
    titles = [e.action for e in AuditLog(root).audit()]
    assert "org.create" in titles
    assert "agent.approve" in titles


def test_password_rotation_queues_beside_a_concurrent_writer(
    sqlite_url: str, repo: Repository, world: World
) -> None:
    fw = Rollouts(scoped_as(repo, CLI), TufRepository.under(world.firmware.state_dir))
    with another_writer(sqlite_url):
        command_id = fw.rotate_password("agent-a1", "cam-0", escrow_jwk(), "admin")
    assert command_id


def test_alert_jobs_wait_for_a_concurrent_writer(
    sqlite_url: str, repo: Repository, world: World
) -> None:
    with another_writer(sqlite_url):
        sync(repo.engine, datetime.now(UTC), timedelta(minutes=15))
    with another_writer(sqlite_url):
        snapshot(repo.engine, date.today())


def test_the_command_line_holds_no_token(repo: Repository) -> None:
    """A token acts as its user; the command line is no account (on SQLite as on PostgreSQL, a
    row naming no user is refused by the foreign key too)."""
    with pytest.raises(Invalid, match="acts as its user"):
        Users(scoped_as(repo, CLI)).create_token("ops")
