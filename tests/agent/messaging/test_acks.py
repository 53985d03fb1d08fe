"""End-to-end acknowledgement in the publisher: a real broker, a test collector signing acks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import MqttConfig
from agent.messaging.mqtt import Publisher
from agent.messaging.outbox import Outbox
from protocol.envelope import ACK_TYP, MESSAGE_TYP, sign
from protocol.keys import generate_private_key, import_public_jwk, public_jwk
from protocol.messages import Ack, Command, encode, to_ranges
from protocol.topics import topic
from tests.agent.messaging.test_outbox import KEY, heartbeat, hello, make, report
from tests.agent.support import decode_all, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Subscriber

pytestmark = pytest.mark.integration

COLLECTOR = generate_private_key()
PINNED = import_public_jwk(public_jwk(COLLECTOR))  # what the agent holds: the public half


def ack(
    seqs: Iterable[int],
    *,
    key: OKPKey = COLLECTOR,
    agent_id: str = "a1",
    site: str = "s1",
    typ: str = ACK_TYP,
) -> bytes:
    message = Ack(agent_id=agent_id, site=site, ranges=to_ranges(seqs), issued_at=datetime.now(UTC))
    return sign(encode(message), key, typ=typ).encode()


def ack_with_ranges(ranges: str) -> bytes:
    """A signed ack whose ranges are written by hand (``Ack`` refuses bad ones)."""
    payload = encode(Ack(agent_id="a1", site="s1", ranges=[(1, 1)], issued_at=datetime.now(UTC)))
    return sign(payload.replace(b"[[1,1]]", ranges.encode()), COLLECTOR, typ=ACK_TYP).encode()


class CollectorSide:
    """Publishes to the agent's cmd topic, as the collector does."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"col-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, payload: bytes) -> None:
        self.client.publish(topic("s1", "a1", "cmd"), payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class TimedSubscriber(Subscriber):
    """Records when each agent message arrived: seq -> arrival times."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[int, list[float]] = {}
        self._times = threading.Lock()
        super().__init__(port, client_id=f"sub-{uuid.uuid4().hex[:8]}")

    def _message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        super()._message(c, u, msg)
        if not msg.topic.endswith("/cmd"):
            (seq,) = decode_all([bytes(msg.payload)], KEY)
            with self._times:
                self.arrivals.setdefault(seq, []).append(time.monotonic())

    def count(self, seq: int) -> int:
        with self._times:
            return len(self.arrivals.get(seq, []))


@contextlib.asynccontextmanager
async def running(publisher: Publisher) -> AsyncIterator[Publisher]:
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def publisher_for(outbox: Outbox, port: int, **mqtt_keys: Any) -> Publisher:
    config = MqttConfig(port=port, **mqtt_keys)
    return Publisher(outbox, agent_id="a1", site="s1", config=config, collector_key=PINNED)


async def until(condition: Callable[[], bool]) -> None:
    await asyncio.to_thread(wait_for, condition)


async def test_acked_entries_leave_the_outbox_and_a_puback_alone_removes_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    issuer = make(tmp_path)
    for build in (hello, heartbeat, heartbeat, report, heartbeat, report):
        issuer.issue(build)
    outbox = issuer._outbox
    sub, col = TimedSubscriber(mosquitto.port), CollectorSide(mosquitto.port)
    try:
        async with running(publisher_for(outbox, mosquitto.port, ack_timeout_s=30)) as pub:
            await until(lambda: all(sub.count(seq) for seq in range(1, 7)))
            await asyncio.sleep(0.3)  # the PUBACKs are in; nothing leaves the outbox for them
            assert len(outbox) == 6
            assert not pub.drained
            col.send(ack([1, 2, 3, 5]))
            await until(lambda: len(outbox) == 2)
            assert [e.seq for e in outbox.entries()] == [4, 6]
            assert pub.acked == 4
            col.send(ack([4, 5, 6, 99]))  # 5 again and 99 (not here): harmless
            async with asyncio.timeout(10):
                await pub.wait_drained()
            assert pub.acked == 6
            assert (pub.ignored, pub.republished) == (0, 0)
    finally:
        sub.close()
        col.close()
    assert not list((tmp_path / "outbox").iterdir())


async def test_unacknowledged_entries_are_published_again_with_backoff(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    issuer = make(tmp_path)
    for build in (hello, heartbeat, report):
        issuer.issue(build)
    outbox = issuer._outbox
    sub, col = TimedSubscriber(mosquitto.port), CollectorSide(mosquitto.port)
    try:
        publisher = publisher_for(outbox, mosquitto.port, ack_timeout_s=0.3, ack_timeout_max_s=0.6)
        async with running(publisher) as pub:
            await until(lambda: all(sub.count(seq) >= 4 for seq in (1, 2, 3)))
            col.send(ack([1, 2, 3]))
            await until(lambda: len(outbox) == 0)
            settled = {seq: sub.count(seq) for seq in (1, 2, 3)}
            await asyncio.sleep(1.5)  # acknowledged: never published again
            assert {seq: sub.count(seq) for seq in (1, 2, 3)} == settled
            assert pub.republished >= 9
    finally:
        sub.close()
        col.close()
    gaps = [b - a for a, b in zip(sub.arrivals[1], sub.arrivals[1][1:], strict=False)]
    assert gaps[0] >= 0.25  # ack_timeout_s
    assert all(gap >= 0.55 for gap in gaps[1:3])  # doubled, capped at ack_timeout_max_s


async def test_forged_misaddressed_and_garbage_cmd_messages_are_ignored_and_counted(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = make(tmp_path)
    for build in (hello, heartbeat, report):
        issuer.issue(build)
    outbox = issuer._outbox
    now = datetime.now(UTC)
    command = Command(
        command_id="c1",
        agent_id="a1",
        site="s1",
        action="rotate-password",
        issued_at=now,
        expires_at=now + timedelta(minutes=5),
        nonce="n" * 16,
    )
    hostile = [
        ack([1, 2, 3], key=generate_private_key()),  # forged: another key
        ack([1, 2, 3], agent_id="a2"),  # for another agent
        ack([1, 2, 3], site="s2"),  # for the same agent id at another site
        ack([1, 2, 3], typ=MESSAGE_TYP),  # signed by the collector, but not as an ack
        ack_with_ranges("[[3,1]]"),  # a range that ends before it starts
        ack_with_ranges("[[2,3],[1,1]]"),  # ranges out of order
        ack_with_ranges("[[1,2],[2,3]]"),  # ranges that overlap
        b"not a JWS at all",
        sign(b'{"type":"ack","agent_id":"a1"}', COLLECTOR).encode(),  # signed, bad schema
        b"A" * (2 * 1024 * 1024),  # over the size limit
    ]
    sub, col = TimedSubscriber(mosquitto.port), CollectorSide(mosquitto.port)
    try:
        async with running(publisher_for(outbox, mosquitto.port, ack_timeout_s=30)) as pub:
            await until(lambda: all(sub.count(seq) for seq in (1, 2, 3)))
            for payload in hostile:
                col.send(payload)
            col.send(sign(encode(command), COLLECTOR).encode())
            await until(lambda: pub.ignored == len(hostile))
            assert len(outbox) == 3  # nothing acted on
            col.send(ack([2]))  # the loop goes on: a genuine ack still works
            await until(lambda: len(outbox) == 2)
    finally:
        sub.close()
        col.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for reason in ("unknown_key", "misaddressed", "malformed", "schema", "oversized"):
        assert any(f": {reason}:" in w for w in warnings), reason
    assert any("command c1" in w and "no executor" in w for w in warnings)


async def test_without_a_collector_key_the_puback_removes_the_entry(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = make(tmp_path)
    for build in (hello, heartbeat, report):
        issuer.issue(build)
    outbox = issuer._outbox
    publisher = Publisher(outbox, agent_id="a1", site="s1", config=MqttConfig(port=mosquitto.port))
    async with running(publisher):
        async with asyncio.timeout(20):
            await publisher.wait_drained()
    assert publisher.acked == 3
    assert len(outbox) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "only broker-acknowledged" in w] == [warnings[0]]


async def test_mqtt_311_keeps_its_session_without_properties(tmp_path: Path) -> None:
    """``[mqtt] protocol = "3.1.1"`` (a NATS cluster's listener, docs/adr/0032): the agent
    connects as 3.1.1 with clean_session false, so an ack sent while it is away reaches it
    when it is back, and entries leave the outbox on that ack only."""
    broker = Mosquitto(tmp_path / "broker", extra="log_type notice")
    broker.start()
    issuer = make(tmp_path)
    for build in (hello, heartbeat, report):
        issuer.issue(build)
    outbox = issuer._outbox
    sub, col = TimedSubscriber(broker.port), CollectorSide(broker.port)
    try:
        v311 = {"protocol": "3.1.1", "ack_timeout_s": 600}
        async with running(publisher_for(outbox, broker.port, **v311)) as pub:
            await until(lambda: all(sub.count(seq) for seq in (1, 2, 3)))
            await until(lambda: len(pub._sent) == 3)  # PUBACKed, waiting for the collector
        assert len(outbox) == 3
        col.send(ack([1, 2, 3]))  # the agent is away: its session keeps the ack
        async with running(publisher_for(outbox, broker.port, **v311)) as pub:
            async with asyncio.timeout(30):
                await pub.wait_drained()
            assert pub.acked == 3
    finally:
        sub.close()
        col.close()
        broker.stop()
    # mosquitto logs the protocol of each connection: p2 is MQTT 3.1.1 (5 would be p5)
    connects = [line for line in broker.log.read_text().splitlines() if " as a1 " in line]
    assert len(connects) == 2
    assert all("(p2, c0," in line for line in connects)
