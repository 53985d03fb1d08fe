"""End-to-end acks from a running collector: after the commit, for stored and duplicate seqs only,
signed with the command key the enrollment answer hands out."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol import (
    Ack,
    decode_collector_message,
    import_private_pem,
    import_public_jwk,
    read_header,
    verify,
)
from server.api import create_app
from server.cli import main
from server.storage import Repository
from server.storage.models import Message
from tests.server.conftest import Collector, Publisher, enroll, serve, wait_until
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Subscriber


def acked(acks: list[tuple[str, Ack]], agent_id: str = "pi-1") -> set[int]:
    return {
        seq
        for _, ack in acks
        if ack.agent_id == agent_id
        for low, high in ack.ranges
        for seq in range(low, high + 1)
    }


@pytest.mark.integration
def test_acks_follow_the_commit_for_stored_and_duplicate_seqs_only(
    mosquitto: Mosquitto, collector: Collector, publisher: Publisher, repo: Repository
) -> None:
    agent, pending = SimAgent("pi-1"), SimAgent("pi-2")
    enroll(repo, pending, approved=False)
    token = repo.create_token(
        "site-1", approved=True, ttl=timedelta(hours=1), uses=1, now=datetime.now(UTC)
    )
    body = {"token": token, "agent_id": "pi-1", "site": "site-1", "jwk": agent.jwk}
    app = create_app(collector.config, repo, command_key=collector.command_key)
    with serve(app) as client:
        answer = client.post("/api/v1/enroll", json=body).json()
    pinned = import_public_jwk(answer["collector_jwk"])  # what the agent keeps
    assert "d" not in answer["collector_jwk"]

    listener = Subscriber(mosquitto.port, client_id="ack-listener", topic="camwarden/v1/+/+/cmd")
    acks: list[tuple[str, Ack]] = []

    def read_acks() -> list[tuple[str, Ack]]:
        for name, token in listener.snapshot()[len(acks) :]:
            assert read_header(token)["typ"] == "camwarden-ack+jws"
            message = decode_collector_message(verify(token, lambda _kid: pinned).payload)
            assert isinstance(message, Ack)
            assert name == f"camwarden/v1/{message.site}/{message.agent_id}/cmd"
            acks.append((name, message))
        return acks

    try:
        first, second = agent.report(), agent.report()
        publisher.publish_all([first, second])
        wait_until(lambda: acked(read_acks()) == {1, 2})
        assert repo.count(Message) == 2  # acknowledged after the commit, never before
        before = len(acks)

        stale = agent.report(issued_at=datetime.now(UTC) - timedelta(days=60))  # seq 3
        twin = SimAgent("pi-1", key=agent.key)
        twin.seq = 1
        replay = twin.report(cameras=4)  # seq 2 again, other bytes
        publisher.publish_all([stale, replay, pending.report()])
        publisher.publish(*agent.report())  # seq 4
        wait_until(lambda: 4 in acked(read_acks()))
        assert acked(acks[before:]) == {4}  # not the stale 3, not the replayed 2
        assert acked(acks, "pi-2") == set()  # a pending agent's message is not stored
        assert collector.rejected("stale") == collector.rejected("replay") == 1
        before = len(acks)

        publisher.publish(*first)  # a republish of something already stored
        wait_until(lambda: len(read_acks()) > before)
        assert [ack.ranges for _, ack in acks[before:]] == [[(1, 1)]]
        assert collector.rejected("duplicate") == 1
    finally:
        listener.close()


def test_migrate_creates_the_command_key_once(tmp_path: Path) -> None:
    state = ["--set", f'state_dir="{tmp_path}"']
    assert main([*state, "migrate"]) == 0
    path = tmp_path / "collector.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kid = import_private_pem(path.read_bytes()).thumbprint()
    assert main([*state, "migrate"]) == 0
    assert import_private_pem(path.read_bytes()).thumbprint() == kid  # kept, never regenerated
    path.write_text("not a key")
    assert main([*state, "migrate"]) == 1
