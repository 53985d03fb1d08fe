"""Retention: raw reports pruned per security level; the chain stays verifiable across the gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from protocol import import_public_jwk
from server.cli import main
from server.storage import Repository
from server.storage.models import Agent, Message
from server.storage.org_models import PrunedMessage
from server.storage.retention import ChainBroken, export_kept, prune, retention_days, verify_chain
from server.verify import verify_file
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, process

DAY = timedelta(days=1)
FRESHNESS = timedelta(days=30)


def history(repo: Repository, db_url: str, sim: SimAgent, reports: int) -> None:
    """Reports and heartbeats, as an agent sends them."""
    messages = []
    for n in range(reports):
        messages.append(sim.report(2))
        if n % 2:
            messages.append(sim.heartbeat())
    process(repo, db_url, messages)


def agent_key(repo: Repository, agent_id: str) -> object:
    with repo.engine.connect() as conn:
        jwk = conn.execute(select(Agent.public_jwk).where(Agent.agent_id == agent_id)).scalar_one()
    return import_public_jwk(jwk)


def test_prune_by_level_and_verify_across_the_gap(
    repo: Repository, db_url: str, world: World, tmp_path: Path
) -> None:
    lone = SimAgent("agent-x", "site-unmapped")
    enroll(repo, lone)
    b3 = SimAgent("agent-b3", "site-b")
    enroll(repo, b3)
    history(repo, db_url, b3, 6)
    history(repo, db_url, lone, 2)
    days = retention_days(repo.engine)
    # system A is level 3 (90 days), system B level 2 (30), unmapped sites the longest (365)
    assert (days["agent-a1"], days["agent-b3"], days["agent-x"]) == (90, 30, 365)

    # 40 days on: B's reports are past 30 days, A's are not; nothing below the freshness window
    later = datetime.now(UTC) + 40 * DAY
    archive = tmp_path / "archive"
    result = prune(repo.engine, later, min_age=FRESHNESS, archive_dir=archive)
    with repo.engine.connect() as conn:
        kept = dict.fromkeys(("agent-a1", "agent-b1", "agent-b3", "agent-x"), 0)
        for agent_id in kept:
            kept[agent_id] = len(
                conn.execute(select(Message.seq).where(Message.agent_id == agent_id)).all()
            )
        pruned = conn.execute(
            select(PrunedMessage.seq).where(PrunedMessage.agent_id == "agent-b3")
        ).scalars()
        pruned_b3 = sorted(pruned)
    assert kept["agent-a1"] == 2  # level 3: everything kept
    assert kept["agent-x"] == 3  # unmapped: the longest policy
    # B: only the newest report (the chain head the cameras rest on) and what follows it
    assert kept["agent-b3"] == 2  # report seq 8 and the heartbeat seq 9
    assert pruned_b3 == list(range(1, 8))
    assert result.agents == 2  # agent-b1, agent-b3
    assert result.messages == 1 + 7  # agent-b1: its first report

    # from the database alone: kept signatures + links through the pruned digests
    check = verify_chain(repo.engine, "agent-b3")
    assert (check.kept, check.pruned, check.reports, check.gaps) == (2, 7, 6, [])
    # offline: the archive files followed by the kept messages are one valid report file
    (b3_archive,) = (archive / "agent-b3").glob("*.jws")
    whole = b3_archive.read_bytes() + export_kept(repo.engine, "agent-b3")
    summary = verify_file(whole, agent_key(repo, "agent-b3"))  # type: ignore[arg-type]
    assert (summary.messages, summary.reports, summary.notes) == (9, 6, [])
    # the kept report alone only says it continues an earlier one; the stubs close that gap
    alone = verify_file(export_kept(repo.engine, "agent-b3"), agent_key(repo, "agent-b3"))  # type: ignore[arg-type]
    assert "not in this file" in alone.notes[0]

    # a tampered stub breaks the chain
    with repo.engine.begin() as conn:
        conn.execute(
            update(PrunedMessage)
            .where(PrunedMessage.agent_id == "agent-b3", PrunedMessage.seq == 7)
            .values(digest="0" * 64)
        )
    with pytest.raises(ChainBroken, match="prev does not match"):
        verify_chain(repo.engine, "agent-b3")


def test_freshness_window_is_a_floor_and_the_cli_prunes(
    repo: Repository, db_url: str, world: World, tmp_path: Path
) -> None:
    b3 = SimAgent("agent-b3", "site-b")
    enroll(repo, b3)
    history(repo, db_url, b3, 3)
    # a one-day policy still keeps everything younger than the freshness window (30 days)
    soon = datetime.now(UTC) + 10 * DAY
    with repo.engine.begin() as conn:
        conn.execute(update(Message).values(received_at=datetime.now(UTC)))
    assert prune(repo.engine, soon, min_age=FRESHNESS, archive_dir=None).messages == 0
    args = ["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}"]
    assert main([*args, "prune"]) == 0
    assert main([*args, "verify-chain", "agent-b3"]) == 0
    assert main([*args, "verify-chain", "nobody"]) == 1
    assert main([*args, "alerts-once"]) == 0  # one round of the worker `run` starts
