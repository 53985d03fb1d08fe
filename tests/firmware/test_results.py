"""The scheduler applies command results by agent and seq, whatever order their rows committed in.

With several collectors sharing the subscription, message ids are handed out when a transaction
inserts, so a result can commit after rows with much higher ids; a cursor over ids skipped it.
An idle tick only reads, so it never waits for the ingest's write lock.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from protocol import Command, CommandResult, encode, generate_private_key, sign, topic
from server.firmware.commands import new_command
from server.firmware.scheduler import Publish, Scheduler
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.commands import queue
from server.storage.firmware_models import CommandRecord
from server.storage.models import Message

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PREV = "0" * 64
AGENT_KEY = generate_private_key()


def store_message(repo: Repository, *, row_id: int, seq: int, jws: str, kind: str) -> None:
    with repo.engine.begin() as conn:
        conn.execute(
            insert(Message).values(
                id=row_id,
                agent_id="agent-a",
                seq=seq,
                type=kind,
                issued_at=NOW,
                received_at=NOW,
                digest=f"{seq:064x}",
                prev=PREV,
                prev_seq=0,
                jws=jws,
            )
        )


def result_jws(command_id: str, seq: int, status: str) -> str:
    payload = encode(
        CommandResult(
            agent_id="agent-a",
            site="site-1",
            seq=seq,
            issued_at=NOW,
            prev=PREV,
            prev_seq=0,
            command_id=command_id,
            status=status,  # type: ignore[arg-type]  # the literal is checked by msgspec
        )
    )
    return sign(payload, AGENT_KEY)


def command_state(repo: Repository, command_id: str) -> tuple[str, int]:
    with repo.engine.connect() as conn:
        row = conn.execute(
            select(CommandRecord.status, CommandRecord.last_seq).where(
                CommandRecord.command_id == command_id
            )
        ).one()
    return row.status, row.last_seq


def queue_command(repo: Repository) -> Command:
    """A firmware command for agent-a, queued as the CLI or the API queues one."""
    cmd = new_command(
        "firmware.apply",
        agent_id="agent-a",
        site="site-1",
        camera_id="cam-1",
        params={},
        now=NOW,
        ttl=timedelta(hours=1),
    )
    with repo.engine.begin() as conn:
        queue(conn, cmd, issued_by="admin", rollout_id=None, now=NOW)
    return cmd


def scheduler(repo: Repository, tmp_path: Path, publish: Publish) -> Scheduler:
    return Scheduler(
        repo, TufRepository.under(tmp_path), generate_private_key(), publish, clock=lambda: NOW
    )


def test_results_are_applied_in_seq_order_even_when_committed_below_newer_ids(
    tmp_path: Path,
) -> None:
    repo = Repository.open(f"sqlite:///{tmp_path / 'c.db'}")
    repo.migrate()
    try:
        # the agent's newest message before the command: results can only come after it
        store_message(repo, row_id=5, seq=40, jws="x.e30.x", kind="heartbeat")
        cmd = queue_command(repo)
        with repo.engine.begin() as conn:
            conn.execute(update(CommandRecord).values(status="sent"))
        assert command_state(repo, cmd.command_id) == ("sent", 40)
        sched = scheduler(repo, tmp_path, lambda *_: None)

        store_message(
            repo,
            row_id=900,
            seq=42,
            jws=result_jws(cmd.command_id, 42, "in_progress"),
            kind="cmd-result",
        )
        sched.consume_results()
        assert command_state(repo, cmd.command_id) == ("in_progress", 42)

        # seq 41 (accepted) commits late with a low id: older than what was applied, ignored
        store_message(
            repo,
            row_id=10,
            seq=41,
            jws=result_jws(cmd.command_id, 41, "accepted"),
            kind="cmd-result",
        )
        # seq 43 (succeeded) commits with an id far below the one already read
        store_message(
            repo,
            row_id=11,
            seq=43,
            jws=result_jws(cmd.command_id, 43, "succeeded"),
            kind="cmd-result",
        )
        sched.consume_results()
        assert command_state(repo, cmd.command_id) == ("succeeded", 43)

        # a final command is no longer read: a forged later row changes nothing
        store_message(
            repo, row_id=12, seq=44, jws=result_jws(cmd.command_id, 44, "failed"), kind="cmd-result"
        )
        sched.consume_results()
        assert command_state(repo, cmd.command_id) == ("succeeded", 43)
    finally:
        repo.close()


def test_an_idle_tick_only_reads_and_a_busy_one_still_publishes_and_applies(
    tmp_path: Path,
) -> None:
    repo = Repository.open(f"sqlite:///{tmp_path / 'c.db'}")
    repo.migrate()
    published: list[str] = []
    sched = scheduler(repo, tmp_path, lambda name, _payload: published.append(name))
    try:
        # another process (the ingest) holds SQLite's write lock: an idle tick does not queue
        # behind it (busy_timeout is 10 s)
        writer = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            start = time.monotonic()
            assert sched.run_once() == 0
            assert time.monotonic() - start < 2
        finally:
            writer.execute("ROLLBACK")
            writer.close()

        cmd = queue_command(repo)
        assert sched.run_once() == 1
        assert published == [topic("site-1", "agent-a", "cmd")]
        assert command_state(repo, cmd.command_id) == ("sent", 0)
        store_message(
            repo, row_id=1, seq=3, jws=result_jws(cmd.command_id, 3, "accepted"), kind="cmd-result"
        )
        assert sched.run_once() == 0
        assert command_state(repo, cmd.command_id) == ("accepted", 3)
    finally:
        repo.close()


def test_a_sent_command_without_an_answer_is_sent_again_until_answered_or_expired(
    tmp_path: Path,
) -> None:
    """A broker that keeps nothing for an absent agent (a NATS cluster, docs/adr/0032) or one
    that lost the command: the scheduler publishes it again every ``resend_after_s`` until the
    agent answers (the agent refuses a command it has seen without answering)."""
    repo = Repository.open(f"sqlite:///{tmp_path / 'c.db'}")
    repo.migrate()
    published: list[str] = []
    now = [NOW]
    sched = Scheduler(
        repo,
        TufRepository.under(tmp_path),
        generate_private_key(),
        lambda name, _payload: published.append(name),
        clock=lambda: now[0],
        resend_after_s=60.0,
    )
    try:
        cmd = queue_command(repo)  # expires an hour after NOW
        assert sched.run_once() == 1
        now[0] = NOW + timedelta(seconds=59)
        assert sched.run_once() == 0
        now[0] = NOW + timedelta(seconds=61)
        assert sched.run_once() == 1  # unanswered for a minute: again
        assert sched.run_once() == 0  # and the minute starts over
        now[0] = NOW + timedelta(minutes=61)
        assert sched.run_once() == 0  # expired: the agent would refuse it
        assert command_state(repo, cmd.command_id) == ("sent", 0)

        with repo.engine.begin() as conn:  # the campaign timed it out meanwhile
            conn.execute(
                update(CommandRecord)
                .where(CommandRecord.command_id == cmd.command_id)
                .values(status="failed")
            )
        answered = queue_command(repo)
        now[0] = NOW
        assert sched.run_once() == 1
        store_message(
            repo,
            row_id=1,
            seq=3,
            jws=result_jws(answered.command_id, 3, "accepted"),
            kind="cmd-result",
        )
        now[0] = NOW + timedelta(minutes=5)
        assert sched.run_once() == 0  # answered: never again
        assert command_state(repo, answered.command_id) == ("accepted", 3)
        assert published == [topic("site-1", "agent-a", "cmd")] * 3
    finally:
        repo.close()
