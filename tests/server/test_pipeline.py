"""The pipeline with real signatures, over SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from protocol import GENESIS, REASONS, generate_private_key, sign, topic
from server.ingest.ingestor import Ingestor
from server.metrics import Metrics
from server.storage import Repository
from server.storage.models import Camera, Finding, Message, Quarantine
from server.storage.records import Checked, Incoming, Rejected
from tests.server.conftest import enroll, make_config
from tests.support.agents import SimAgent


def incoming(msg: tuple[str, bytes], topic_name: str | None = None) -> Incoming:
    return Incoming(topic_name or msg[0], msg[1], datetime.now(UTC))


def reasons(results: list[Checked | Rejected]) -> list[str]:
    return [r.error.reason if isinstance(r, Rejected) else "accepted" for r in results]


@pytest.fixture
def ingestor(repo: Repository, db_url: str) -> Ingestor:
    return Ingestor(
        make_config(db_url, quarantine_size=5, max_message_bytes=64 * 1024), repo, Metrics()
    )


def test_accepts_and_projects_the_newest_report(repo: Repository, ingestor: Ingestor) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    first, second, beat = agent.report(cameras=2), agent.report(cameras=1), agent.heartbeat()
    # out of order: the newer report first; the older one must not overwrite the projection
    assert reasons(ingestor.process([incoming(second), incoming(beat)])) == ["accepted"] * 2
    assert reasons(ingestor.process([incoming(first)])) == ["accepted"]
    with repo.engine.connect() as conn:
        cams = conn.execute(select(Camera.camera_id, Camera.report_seq)).all()
        controls = conn.execute(select(Finding.camera_id, Finding.controls)).all()
        stored = conn.execute(select(Message.seq, Message.type, Message.jws)).all()
    assert sorted(cams) == [("cam-0", 2), ("cam-1", 1)]
    assert ("cam-0", ["AUTH-01", "AUTH-02"]) in controls
    assert sorted((s, t) for s, t, _ in stored) == [(1, "report"), (2, "report"), (3, "heartbeat")]
    assert {j.encode() for _, _, j in stored} == {first[1], second[1], beat[1]}
    record = repo.agent("pi-1")
    assert record is not None
    assert record.last_seen is not None


def test_every_rejection_has_its_reason(repo: Repository, ingestor: Ingestor) -> None:
    agent, other, stranger = SimAgent("pi-1"), SimAgent("pi-2"), SimAgent("pi-3")
    enroll(repo, agent)
    enroll(repo, other)
    good = agent.report()
    head, payload, _sig = good[1].split(b".")
    forged_sig = base64.urlsafe_b64encode(bytes(64)).rstrip(b"=")
    stale = agent.report(issued_at=datetime.now(UTC) - timedelta(days=60))
    future = agent.report(issued_at=datetime.now(UTC) + timedelta(hours=1))
    cases = [
        (incoming(good), "accepted"),
        (incoming(good), "duplicate"),
        (incoming(agent.heartbeat()), "accepted"),
        (incoming((good[0], SimAgent("pi-1", key=agent.key).report(cameras=5)[1])), "replay"),
        (incoming((good[0], head + b"." + payload + b"." + forged_sig)), "bad_signature"),
        (incoming(agent.report(key=other.key)), "unknown_key"),
        (incoming(stranger.report()), "unknown_key"),
        (incoming((good[0], good[1][:100])), "malformed"),
        (incoming((good[0], b"x" * (64 * 1024 + 1))), "oversized"),
        (incoming((good[0], b"\xff\xfe" + good[1])), "malformed"),
        (incoming((good[0], sign(b'{"type":"report","seq":-1}', agent.key).encode())), "schema"),
        (incoming(agent.report(), topic("site-1", "pi-2", "report")), "misaddressed"),
        (incoming(agent.report(), topic("site-1", "pi-1", "heartbeat")), "misaddressed"),
        (incoming(stale), "stale"),
        (incoming(future), "stale"),
    ]
    results = ingestor.process([c for c, _ in cases])
    assert reasons(results) == [expected for _, expected in cases]
    assert repo.count(Message) == 2
    assert repo.count(Quarantine) == 5  # bounded: only the newest rejections are kept
    for reason in REASONS:  # every label exists, even at zero
        assert (
            ingestor.metrics.registry.get_sample_value(
                "camwarden_ingest_rejected_total", {"reason": reason}
            )
            is not None
        )
    with repo.engine.connect() as conn:
        newest = conn.execute(select(Quarantine.reason).order_by(Quarantine.id)).scalars().all()
    assert newest == ["schema", "misaddressed", "misaddressed", "stale", "stale"]


def test_replay_within_one_batch_and_key_status(repo: Repository, ingestor: Ingestor) -> None:
    agent, pending = SimAgent("pi-1"), SimAgent("pi-9")
    enroll(repo, agent)
    enroll(repo, pending, approved=False)
    one = agent.report()
    again = SimAgent("pi-1", key=agent.key).report(cameras=4)
    waiting = pending.report()
    assert reasons(
        ingestor.process([incoming(one), incoming(one), incoming(again), incoming(waiting)])
    ) == [
        "accepted",
        "duplicate",
        "replay",
        "unknown_key",
    ]
    assert repo.set_status("pi-9", "approved", datetime.now(UTC))
    assert reasons(ingestor.process([incoming(waiting)])) == ["accepted"]
    assert repo.set_status("pi-1", "revoked", datetime.now(UTC))
    assert reasons(ingestor.process([incoming(agent.report())])) == ["revoked_key"]
    assert not repo.set_status("pi-1", "approved", datetime.now(UTC))  # revocation is final


def test_chain_links_are_checked_in_both_directions(repo: Repository, ingestor: Ingestor) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    r1 = agent.report()
    r2 = agent.report()
    # a report 3 that names bytes that are not the stored report 2 breaks the chain
    fork = SimAgent("pi-1", key=agent.key)
    fork.report(cameras=5)
    fork.report(cameras=5)
    bad3 = fork.report()  # seq 3, prev = digest of the fork's report 2, prev_seq 2
    assert reasons(ingestor.process([incoming(r2)])) == ["accepted"]  # predecessor not here yet
    assert reasons(ingestor.process([incoming(bad3)])) == ["broken_chain"]
    assert reasons(ingestor.process([incoming(r1)])) == ["accepted"]

    late = SimAgent("pi-2")
    enroll(repo, late)
    a1 = late.report()
    a2 = late.report()
    other1 = SimAgent("pi-2", key=late.key).report(cameras=7)
    assert reasons(ingestor.process([incoming(a2)])) == ["accepted"]
    # report 1 arrives after report 2, but it is not the report 2 was chained to
    assert reasons(ingestor.process([incoming(other1)])) == ["broken_chain"]
    assert reasons(ingestor.process([incoming(a1)])) == ["accepted"]
    heartbeat = late.heartbeat()
    after = late.report()  # prev_seq names report 2, the heartbeat is not a link
    assert reasons(ingestor.process([incoming(heartbeat), incoming(after)])) == ["accepted"] * 2


def restart(agent: SimAgent) -> None:
    """The agent forgets its chain (not its seq) and starts a new one, as if from scratch."""
    agent.prev, agent.prev_seq = GENESIS, 0


def test_a_chain_that_starts_again_is_broken(repo: Repository, ingestor: Ingestor) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    hello, r2, beat = agent.report(), agent.report(), agent.heartbeat()
    assert (
        reasons(ingestor.process([incoming(hello), incoming(r2), incoming(beat)]))
        == ["accepted"] * 3
    )
    restart(agent)
    again = agent.report()  # seq 4, prev_seq 0: would disown reports 1 and 2
    assert reasons(ingestor.process([incoming(again)])) == ["broken_chain"]
    with repo.engine.connect() as conn:
        detail = conn.execute(select(Quarantine.detail)).scalar_one()
    assert detail == "report 4 starts a new chain after report 1"
    # heartbeats before the first report carry prev_seq 0 too: they start nothing
    assert reasons(ingestor.process([incoming(agent.heartbeat())])) == ["accepted"]

    # within one batch, and whatever the order of arrival: only the first report starts a chain
    other = SimAgent("pi-2")
    enroll(repo, other)
    first, second = other.report(), other.report()
    restart(other)
    third = other.report()
    assert reasons(ingestor.process([incoming(third), incoming(second), incoming(first)])) == [
        "accepted",
        "accepted",
        "broken_chain",
    ]
    late = SimAgent("pi-3")
    enroll(repo, late)
    a1 = late.report()
    restart(late)
    a2 = late.report()
    assert reasons(ingestor.process([incoming(a2)])) == ["accepted"]  # nothing known before it
    assert reasons(ingestor.process([incoming(a1)])) == ["broken_chain"]  # a second start


def test_generated_key_is_unknown_until_enrolled(repo: Repository, ingestor: Ingestor) -> None:
    agent = SimAgent("pi-1", key=generate_private_key())
    msg = agent.report()
    assert reasons(ingestor.process([incoming(msg)])) == ["unknown_key"]
    enroll(repo, agent)
    assert reasons(ingestor.process([incoming(msg)])) == ["accepted"]


def test_an_agent_approved_by_its_token_is_announced_once(repo: Repository) -> None:
    """Its broker role and certificate follow as on approval, without waiting for a sync."""
    heard: list[tuple[str, str]] = []
    repo.status_listeners.append(lambda agent_id, status: heard.append((agent_id, status)))
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    enroll(repo, SimAgent("pi-2"), approved=False)
    assert heard == [("pi-1", "approved")]
    enroll(repo, agent)  # enrolling again with the same key: nothing new to announce
    assert heard == [("pi-1", "approved")]


def projection(repo: Repository) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    with repo.engine.connect() as conn:
        cams = conn.execute(select(Camera.agent_id, Camera.camera_id, Camera.report_seq)).all()
        found = conn.execute(select(Finding.agent_id, Finding.camera_id, Finding.report_seq)).all()
    return (
        sorted((a, c, int(seq)) for a, c, seq in cams),
        sorted((a, c, int(seq)) for a, c, seq in found),
    )


def test_projection_does_not_depend_on_batch_boundaries(
    repo: Repository, ingestor: Ingestor
) -> None:
    a, b = SimAgent("pi-1"), SimAgent("pi-2")
    enroll(repo, a)
    enroll(repo, b)
    a1, a2, a3 = a.report(cameras=3), a.report(cameras=1), a.report(cameras=2)
    b1, b2 = b.report(cameras=2), b.report(cameras=0)
    # one batch, several agents, out of order: each camera from the newest report naming it
    assert (
        reasons(ingestor.process([incoming(m) for m in (a3, b1, a1, b2, a2)])) == ["accepted"] * 5
    )
    cams, found = projection(repo)
    assert cams == [
        ("pi-1", "cam-0", 3),
        ("pi-1", "cam-1", 3),
        ("pi-1", "cam-2", 1),
        ("pi-2", "cam-0", 1),
        ("pi-2", "cam-1", 1),
    ]
    assert found == sorted([(agent, cam, seq) for agent, cam, seq in cams for _ in range(2)])
    # an older report in a later batch changes nothing; a newer one replaces its cameras only
    a4 = a.report(cameras=1)
    assert reasons(ingestor.process([incoming(a4)])) == ["accepted"]
    cams_after, found_after = projection(repo)
    assert ("pi-1", "cam-0", 4) in cams_after
    assert ("pi-1", "cam-1", 3) in cams_after
    assert found_after.count(("pi-1", "cam-0", 4)) == 2
    assert not [f for f in found_after if f[:2] == ("pi-1", "cam-0") and f[2] != 4]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_stores_a_batch_of_messages_in_one_insert_statement(
    repo: Repository, ingestor: Ingestor
) -> None:
    # sqlite3 would step an executemany once per row, handing the GIL to the verify threads at
    # every row (docs/adr/0008-ingest-throughput.md)
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    batch = [incoming(agent.report()) for _ in range(40)]
    inserts: list[tuple[str, bool]] = []

    def record(*args: object) -> None:
        statement, executemany = str(args[2]), bool(args[5])
        if statement.startswith("INSERT INTO messages"):
            inserts.append((statement, executemany))

    event.listen(repo.engine, "before_cursor_execute", record)
    try:
        assert reasons(ingestor.process(batch)) == ["accepted"] * 40
    finally:
        event.remove(repo.engine, "before_cursor_execute", record)
    [(statement, _)] = inserts
    assert statement.count("(?, ?, ?, ?, ?, ?, ?, ?, ?)") == 40
    assert repo.count(Message) == 40


def test_times_sent_with_an_offset_are_stored_as_the_same_instant(
    repo: Repository, ingestor: Ingestor
) -> None:
    # an agent in Vietnam may send its local time; SQLite keeps no offset, so the stored value
    # must be the UTC clock reading or it comes back seven hours off
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    hanoi = timezone(timedelta(hours=7))
    sent = datetime.now(hanoi).replace(microsecond=0)
    assert reasons(ingestor.process([incoming(agent.report(issued_at=sent))])) == ["accepted"]
    with repo.engine.connect() as conn:
        [issued] = conn.execute(select(Message.issued_at)).scalars().all()
        updated = set(conn.execute(select(Camera.updated_at)).scalars().all())
    assert issued == sent
    assert issued.utcoffset() == timedelta(0)
    assert updated == {sent}
