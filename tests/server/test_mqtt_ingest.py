"""A running collector on the real Mosquitto fixture: rejections, revocation, enrollment."""

from __future__ import annotations

import base64
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from protocol import public_jwk, sign
from server.api import create_app
from server.cli import main
from server.storage import DatabaseUnavailable, Repository
from server.storage.models import Message, Quarantine
from server.storage.repository import IngestBatch
from tests.server.conftest import Collector, Publisher, enroll, make_config, serve, wait_until
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_hostile_messages_are_counted_and_the_loop_goes_on(
    collector: Collector, publisher: Publisher, repo: Repository
) -> None:
    agent, other = SimAgent("pi-1"), SimAgent("pi-2")
    enroll(repo, agent)
    enroll(repo, other)
    good = agent.report()
    publisher.publish(*good)
    wait_until(lambda: repo.count(Message) == 1)
    head, payload, _ = good[1].split(b".")
    forged = head + b"." + payload + b"." + base64.urlsafe_b64encode(bytes(64)).rstrip(b"=")
    report_topic = good[0]
    hostile = {
        "bad_signature": forged,
        "unknown_key": agent.report(key=other.key)[1],
        "duplicate": good[1],
        "replay": SimAgent("pi-1", key=agent.key).report(cameras=4)[1],
        "malformed": good[1][: len(good[1]) // 2],
        "oversized": b"A" * (10 * 1024 * 1024),
        "schema": sign(b'{"type":"report","agent_id":"pi-1"}', agent.key).encode(),
    }
    for payload_bytes in hostile.values():
        publisher.publish(report_topic, payload_bytes)
    publisher.publish(report_topic, b"\xc3\x28 not utf-8")  # malformed again
    publisher.publish("camwarden/v1/site-1/pi-2/report", agent.report()[1])  # misaddressed
    after = agent.report()
    publisher.publish(*after)
    wait_until(lambda: repo.count(Message) == 2)
    with serve(
        create_app(
            collector.config, repo, command_key=collector.command_key, metrics=collector.metrics
        )
    ) as client:
        text = client.get("/metrics").text
        assert client.get("/healthz").status_code == 200
    for reason in [*hostile, "misaddressed"]:
        assert collector.rejected(reason) >= 1, reason
        assert (
            f'camwarden_ingest_rejected_total{{reason="{reason}"}} 1.0' in text
            or reason == "malformed"
        )
    assert collector.rejected("malformed") == 2
    assert repo.count(Quarantine) == 9


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_revocation_and_enrollment_over_http(
    collector: Collector, publisher: Publisher, repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = SimAgent("pi-7", site="hanoi")
    app = create_app(
        collector.config, repo, command_key=collector.command_key, metrics=collector.metrics
    )
    db = ["--set", f'database.url="{repo.engine.url.render_as_string(hide_password=False)}"']
    assert main([*db, "tokens", "create", "--site", "hanoi", "--ttl", "1h"]) == 0
    token = capsys.readouterr().out.strip()
    body = {"token": token, "agent_id": "pi-7", "site": "hanoi", "jwk": agent.jwk, "hostname": "h"}
    with serve(app) as client:
        response = client.post("/api/v1/enroll", json=body)
        assert response.status_code == 201
        assert response.json() == {
            "agent_id": "pi-7",
            "site": "hanoi",
            "status": "pending",
            "collector_jwk": public_jwk(collector.command_key),
        }
        assert client.post("/api/v1/enroll", json=body).status_code == 403  # single use
    publisher.publish(*agent.report())
    wait_until(lambda: collector.rejected("unknown_key") == 1)
    assert main([*db, "agents", "approve", "pi-7"]) == 0
    publisher.publish(*agent.report())
    wait_until(lambda: repo.count(Message) == 1)
    assert main([*db, "agents", "revoke", "pi-7"]) == 0
    publisher.publish(*agent.report())
    wait_until(lambda: collector.rejected("revoked_key") == 1)
    assert repo.count(Message) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_enrollment_errors(collector: Collector, repo: Repository) -> None:
    agent, other = SimAgent("pi-1"), SimAgent("pi-2")
    enroll(repo, agent)

    def token() -> str:
        return repo.create_token(
            "site-1", approved=True, ttl=timedelta(hours=1), uses=2, now=datetime.now(UTC)
        )

    def post(jwk: dict[str, str], agent_id: str = "pi-3", tok: str | None = None) -> int:
        body = {"token": tok or token(), "agent_id": agent_id, "site": "site-1", "jwk": jwk}
        return client.post("/api/v1/enroll", json=body).status_code

    with serve(create_app(collector.config, repo, command_key=collector.command_key)) as client:
        statuses = [
            post(other.jwk, agent_id="pi-1"),  # pi-1 has another key
            post({k: str(v) for k, v in other.key.as_dict(private=True).items()}),
            post({**other.jwk, "crv": "X25519"}),
            post({**other.jwk, "kid": agent.jwk["kid"]}),
            post(other.jwk, tok="not-a-token"),
            post(other.jwk),
        ]
    assert statuses == [409, 422, 422, 422, 403, 201]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_deliveries_of_one_read_are_split_into_batches_of_the_configured_size(
    mosquitto: Mosquitto,
    publisher: Publisher,
    repo: Repository,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    sizes: list[int] = []
    write = IngestBatch.write

    def recording(self: IngestBatch, results: Any, **kwargs: Any) -> None:
        sizes.append(len(results))
        write(self, results, **kwargs)

    monkeypatch.setattr(IngestBatch, "write", recording)
    collector = Collector(make_config(db_url, mosquitto.port, batch_size=20), repo)
    collector.subscriber.start()
    try:
        assert collector.subscriber.connected.wait(10)
        publisher.publish_all([agent.report() for _ in range(130)])
        wait_until(lambda: repo.count(Message) == 130)
    finally:
        collector.subscriber.stop()
    assert sum(sizes) == 130
    assert max(sizes) <= 20  # a socket read may carry more than a batch; the rest waits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_nothing_is_acknowledged_before_its_batch_is_committed(
    mosquitto: Mosquitto,
    publisher: Publisher,
    repo: Repository,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    config = make_config(db_url, mosquitto.port, batch_size=20)
    attempts: list[int] = []
    ingest_batch = Repository.ingest_batch

    def database_down(self: Repository) -> Any:
        attempts.append(1)
        raise DatabaseUnavailable("database is down")

    monkeypatch.setattr(Repository, "ingest_batch", database_down)
    first = Collector(config, repo)
    first.subscriber.start()
    assert first.subscriber.connected.wait(10)
    publisher.publish_all([agent.report() for _ in range(70)])  # several batches in flight
    wait_until(lambda: len(attempts) >= 3)
    first.subscriber.stop()  # verified, never committed: nothing may have been acknowledged
    monkeypatch.setattr(Repository, "ingest_batch", ingest_batch)
    assert repo.count(Message) == 0
    second = Collector(config, repo)  # the same client id: the broker kept the session
    second.subscriber.start()
    try:
        wait_until(lambda: repo.count(Message) == 70)
    finally:
        second.subscriber.stop()
    assert second.rejected("duplicate") == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_broker_restart_mid_stream_loses_nothing(
    mosquitto: Mosquitto, collector: Collector, repo: Repository
) -> None:
    agent = SimAgent("pi-1")
    enroll(repo, agent)
    before, after = [agent.report() for _ in range(150)], [agent.report() for _ in range(150)]
    first = Publisher(mosquitto.port)
    first.publish_all(before)
    first.close()
    mosquitto.restart()  # the collector may be mid-batch; its connection (and read buffer) go
    wait_until(collector.subscriber.connected.is_set, timeout=30)
    second = Publisher(mosquitto.port)
    try:
        second.publish_all(after)
    finally:
        second.close()
    wait_until(lambda: repo.count(Message) == 300, timeout=30)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_collector_joins_the_configured_share_group(
    mosquitto: Mosquitto, publisher: Publisher, repo: Repository, db_url: str
) -> None:
    config = make_config(db_url, mosquitto.port)
    config = msgspec.structs.replace(
        config, mqtt=msgspec.structs.replace(config.mqtt, share_group="ops-7f3a")
    )
    collector = Collector(config, repo)
    collector.subscriber.start()
    assert collector.subscriber.connected.wait(10)
    # a second member of that group takes every other message: the collector is in it
    member = Publisher(mosquitto.port)
    got: list[bytes] = []
    joined = threading.Event()
    member.client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    member.client.on_subscribe = lambda *_: joined.set()
    member.client.subscribe("$share/ops-7f3a/camwarden/v1/+/+/report", qos=1)
    try:
        assert joined.wait(10)
        agent = SimAgent("pi-1")
        enroll(repo, agent)
        reports = [agent.report() for _ in range(10)]
        publisher.publish_all(reports)
        wait_until(lambda: repo.count(Message) + len(got) == 10)
        time.sleep(0.5)  # nothing more arrives: each report went to one member only
        assert repo.count(Message) + len(got) == 10
        assert 0 < len(got) < 10
    finally:
        member.close()
        collector.subscriber.stop()
