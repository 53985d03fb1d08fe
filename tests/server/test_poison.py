"""Poison isolation: a message the database refuses is quarantined with the database's reason,
the rest of its batch is stored, and nothing retries it; a database that is down is retried, and
a stalled ingest shows on /healthz. Real SQLite and PostgreSQL, a real broker for the collector."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime

import msgspec
import pytest
from sqlalchemy import create_engine, event, select, text

from protocol import StatusReport
from server.api import create_app
from server.ingest.batches import Progress
from server.ingest.ingestor import Ingestor, Verifying
from server.metrics import Metrics
from server.storage import DatabaseUnavailable, RecordRefused, Repository
from server.storage.errors import translate
from server.storage.models import Message, Quarantine
from server.storage.records import Checked, Incoming, Rejected
from tests.server.conftest import Collector, Publisher, enroll, make_config, serve, wait_until
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto, free_port

POISON = "poison"  # a camera address the database is made to refuse


def refuse_poison(repo: Repository) -> str:
    """A real refusal by the database: a constraint on camera addresses; returns its name."""
    with repo.engine.begin() as conn:
        if repo.engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON cameras "
                    f"WHEN NEW.address = '{POISON}' "
                    "BEGIN SELECT RAISE(ABORT, 'camera address refuse_poison'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "ALTER TABLE cameras ADD CONSTRAINT refuse_poison "
                    f"CHECK (address <> '{POISON}')"
                )
            )
    return "refuse_poison"


def enrolled(repo: Repository, *agent_ids: str) -> list[SimAgent]:
    agents = [SimAgent(agent_id) for agent_id in agent_ids]
    for agent in agents:
        enroll(repo, agent)
    return agents


def incoming(msg: tuple[str, bytes]) -> Incoming:
    return Incoming(msg[0], msg[1], datetime.now(UTC))


def reasons(results: list[Checked | Rejected]) -> list[str]:
    return [r.error.reason if isinstance(r, Rejected) else "accepted" for r in results]


@pytest.fixture
def ingestor(repo: Repository, db_url: str) -> Iterator[Ingestor]:
    ingest = Ingestor(make_config(db_url), repo, Metrics())
    try:
        yield ingest
    finally:
        ingest.close()


def test_a_refused_message_is_isolated_and_the_rest_of_its_batch_stored(
    repo: Repository, ingestor: Ingestor
) -> None:
    good, bad = enrolled(repo, "pi-1", "pi-9")
    constraint = refuse_poison(repo)
    batch = [incoming(good.report()) for _ in range(20)]
    batch.insert(13, incoming(bad.report(address=POISON)))
    batch += [incoming(good.report()) for _ in range(20)]
    commits: list[int] = []
    event.listen(repo.engine, "commit", lambda _conn: commits.append(1))
    results = ingestor.process(batch)
    assert reasons(results).count("accepted") == 40
    assert reasons(results).count("refused") == 1
    assert [r.error.reason for r in results if isinstance(r, Rejected)] == ["refused"]
    assert repo.count(Message) == 40
    with repo.engine.connect() as conn:
        row = conn.execute(select(Quarantine.reason, Quarantine.detail, Quarantine.topic)).one()
    assert row.reason == "refused"
    assert constraint in row.detail  # the database's own reason
    assert row.topic == batch[13].topic
    # bisected: about 2 log2(41) transactions, not one per message
    assert len(commits) <= 14
    value = ingestor.metrics.registry.get_sample_value(
        "camwarden_ingest_rejected_total", {"reason": "refused"}
    )
    assert value == 1
    # the agent's next report goes in; its predecessor is the refused one, never stored
    assert reasons(ingestor.process([incoming(bad.report())])) == ["accepted"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_nul_that_bypassed_the_schema_is_refused_by_postgresql(
    repo: Repository, ingestor: Ingestor
) -> None:
    """What stopped the fleet's ingest: PostgreSQL text cannot hold NUL. The schema now refuses
    it on the wire; if one reached the storage anyway, it is quarantined, not retried."""
    agent, other = enrolled(repo, "pi-1", "pi-2")
    checked = ingestor.pipeline.check(incoming(agent.report()))
    message = checked.message
    assert isinstance(message, StatusReport)
    cam = msgspec.structs.replace(message.cameras[0], address="10.0.0.1\x00")
    poisoned = Checked(
        checked.incoming,
        msgspec.structs.replace(message, cameras=[cam]),
        checked.kid,
        checked.digest,
    )
    after = ingestor.pipeline.check(incoming(other.report()))
    done: Future[list[Checked | Rejected]] = Future()
    done.set_result([poisoned, after])
    verifying = Verifying([[checked.incoming, after.incoming]], lambda _chunk: done)
    assert reasons(ingestor.store(verifying)) == ["refused", "accepted"]
    with repo.engine.connect() as conn:
        detail = conn.execute(select(Quarantine.detail)).scalar_one()
    assert "NUL" in detail


def test_control_characters_are_a_schema_violation(repo: Repository, ingestor: Ingestor) -> None:
    (agent,) = enrolled(repo, "pi-1")
    for hostile in ("10.0.0.1\x00", "\x1b[31mred", "a\x85b", "a\x7fb"):
        assert reasons(ingestor.process([incoming(agent.report(address=hostile))])) == ["schema"]
    assert reasons(ingestor.process([incoming(agent.report(address="a\tb\r\nc"))])) == ["accepted"]
    with repo.engine.connect() as conn:
        details = conn.execute(select(Quarantine.detail)).scalars().all()
    assert len(details) == 4
    assert all("address" in d and "\x00" not in d for d in details)


def _execute(repo: Repository, *steps: tuple[str, Mapping[str, object]]) -> None:
    with translate(), repo.engine.begin() as conn:
        for sql, params in steps:
            conn.execute(text(sql), params)


def test_database_errors_are_translated_at_the_storage_edge(repo: Repository) -> None:
    refuse_poison(repo)
    now = datetime.now(UTC)
    agent = (
        "INSERT INTO agents (agent_id, site, kid, public_jwk, status, enrolled_at, updated_at) "
        "VALUES ('a', 's', 'k', '{}', 'approved', :t, :t)",
        {"t": now},
    )
    camera = (
        "INSERT INTO cameras (agent_id, camera_id, site, report_seq, address, reachable, "
        "identity, updated_at) VALUES ('a', 'c', 's', 1, :address, true, '{}', :t)",
        {"address": POISON, "t": now},
    )
    with pytest.raises(RecordRefused) as refused:
        _execute(repo, agent, camera)
    assert "refuse_poison" in refused.value.detail
    assert "INSERT" not in refused.value.detail  # the reason, not the statement
    with pytest.raises(RecordRefused):  # a duplicate key
        _execute(repo, agent, agent)
    if repo.engine.dialect.name == "postgresql":
        with pytest.raises(RecordRefused, match="too long"):  # too long for its column
            _execute(repo, (agent[0].replace("'s'", "'" + "s" * 65 + "'"), {"t": now}))
    # nothing listens there: the database is down, not the data wrong
    url = (
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
        if repo.engine.dialect.name == "postgresql"
        else "sqlite:////nonexistent-dir/camwarden.db"
    )
    down = create_engine(url)
    with pytest.raises(DatabaseUnavailable), translate(), down.connect():
        pass
    down.dispose()


def test_progress_says_stalled_only_while_messages_wait_without_a_commit() -> None:
    now = [100.0]
    progress = Progress(lambda: now[0])
    now[0] = 500.0
    assert progress.stalled_for() == 0.0  # idle is not stalled
    progress.received(3)
    now[0] = 530.0
    assert progress.stalled_for() == 30.0
    progress.received(2)  # more waiting does not reset the clock
    now[0] = 540.0
    assert progress.stalled_for() == 40.0
    progress.committed(3)
    assert progress.stalled_for() == 0.0  # moved just now; 2 still wait
    now[0] = 545.0
    assert progress.stalled_for() == 5.0
    progress.committed(2)
    now[0] = 900.0
    assert progress.stalled_for() == 0.0


# -- through a real broker -------------------------------------------------------------------


@pytest.mark.integration
def test_a_good_agent_is_stored_within_seconds_while_a_poison_message_waits(
    collector: Collector, publisher: Publisher, repo: Repository
) -> None:
    good, bad = enrolled(repo, "pi-1", "pi-9")
    refuse_poison(repo)
    publisher.publish(*good.report())
    wait_until(lambda: repo.count(Message) == 1)
    # a database refusal and a schema refusal from an approved agent, then the good agent
    publisher.publish(*bad.report(address=POISON))
    publisher.publish(*bad.report(address="cam\x00"))
    sent = time.monotonic()
    publisher.publish(*good.report())
    wait_until(lambda: repo.count(Message) == 2, timeout=10)  # about 0.2 s on a loaded machine
    elapsed = time.monotonic() - sent
    print(f"\ngood report stored {elapsed:.3f} s after it was sent, behind a poison message")
    wait_until(lambda: repo.count(Quarantine) == 2)
    assert repo.quarantine_reasons() == {"refused": 1, "schema": 1}
    assert collector.rejected("refused") == 1
    assert collector.rejected("schema") == 1
    # no retry loop: nothing more is attempted, the poison is acknowledged and gone
    publisher.publish(*good.report())
    wait_until(lambda: repo.count(Message) == 3)
    assert collector.rejected("refused") == 1
    assert collector.subscriber.progress.waiting == 0
    with serve(
        create_app(
            collector.config,
            repo,
            command_key=collector.command_key,
            metrics=collector.metrics,
            health=collector.subscriber.health,
        )
    ) as client:
        health = client.get("/healthz")
        metrics = client.get("/metrics").text
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert "camwarden_ingest_stalled 0.0" in metrics
    assert 'camwarden_ingest_rejected_total{reason="refused"} 1.0' in metrics
    # the poison was acknowledged to the broker: the session (same client id) holds nothing
    # of it for the next collector, only what is published after
    collector.subscriber.stop()
    successor = Collector(collector.config, repo)
    successor.subscriber.start()
    try:
        publisher.publish(*good.report())
        wait_until(lambda: repo.count(Message) == 4)
    finally:
        successor.subscriber.stop()
    assert successor.rejected("refused") == successor.rejected("schema") == 0
    assert successor.rejected("duplicate") == 0


@pytest.mark.integration
def test_a_blocked_database_stalls_the_ingest_visibly_and_loses_nothing(
    mosquitto: Mosquitto, publisher: Publisher, repo: Repository, db_url: str
) -> None:
    """A writer holding the tables (a real lock, not a stub): messages wait, /healthz answers
    503 "ingest stalled" after ``stall_after_s``; released, every message is stored."""
    (agent,) = enrolled(repo, "pi-1")
    config = make_config(db_url, mosquitto.port, stall_after_s=0.5)
    collector = Collector(config, repo)
    collector.subscriber.start()
    assert collector.subscriber.connected.wait(10)
    app = create_app(
        config,
        repo,
        command_key=collector.command_key,
        metrics=collector.metrics,
        health=collector.subscriber.health,
    )
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        engine = create_engine(db_url)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(60)
            conn.rollback()
        engine.dispose()

    holder = threading.Thread(target=hold_lock)
    try:
        with serve(app) as client:
            assert client.get("/healthz").status_code == 200
            holder.start()
            assert locked.wait(10)
            publisher.publish_all([agent.report() for _ in range(5)])
            wait_until(lambda: client.get("/healthz").status_code == 503, timeout=20)
            assert client.get("/healthz").json() == {"status": "ingest stalled"}
            assert "camwarden_ingest_stalled 1.0" in client.get("/metrics").text
            release.set()
            holder.join(10)
            wait_until(lambda: repo.count(Message) == 5, timeout=30)
            wait_until(lambda: client.get("/healthz").status_code == 200)
            assert json.loads(client.get("/healthz").text) == {"status": "ok"}
    finally:
        release.set()
        if holder.is_alive():
            holder.join(10)
        collector.subscriber.stop()
    assert collector.rejected("duplicate") == 0


@pytest.mark.integration
def test_a_database_outage_in_the_key_lookup_is_retried_and_loses_nothing(
    mosquitto: Mosquitto, publisher: Publisher, repo: Repository, db_url: str
) -> None:
    """Stage 1 reads an agent's key from the database the first time it sees it: with that read
    failing (the agents table gone for a while), the batch is checked again once the database is
    back, not failed the same way forever."""
    (agent,) = enrolled(repo, "pi-1")  # never seen by this collector: its key is not cached
    config = make_config(db_url, mosquitto.port, stall_after_s=0.5)
    collector = Collector(config, repo)
    collector.subscriber.start()
    assert collector.subscriber.connected.wait(10)
    try:
        with repo.engine.begin() as conn:
            conn.execute(text("ALTER TABLE agents RENAME TO agents_away"))
        publisher.publish_all([agent.report() for _ in range(3)])
        wait_until(lambda: collector.subscriber.health() == "ingest stalled", timeout=20)
        assert repo.count(Message) == 0
        with repo.engine.begin() as conn:
            conn.execute(text("ALTER TABLE agents_away RENAME TO agents"))
        wait_until(lambda: repo.count(Message) == 3, timeout=30)
        wait_until(lambda: collector.subscriber.health() is None)
    finally:
        collector.subscriber.stop()
    assert collector.rejected("unknown_key") == 0
