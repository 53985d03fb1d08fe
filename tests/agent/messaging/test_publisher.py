from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from agent.config import MqttConfig
from agent.messaging.mqtt import Publisher
from agent.messaging.outbox import Outbox
from tests.agent.messaging.test_outbox import KEY, heartbeat, hello, make, report
from tests.agent.support import check_chain, decode_all, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Subscriber

pytestmark = pytest.mark.integration


async def _drain(outbox: Outbox, port: int) -> Publisher:
    publisher = Publisher(outbox, agent_id="a1", site="s1", config=MqttConfig(port=port))
    task = asyncio.create_task(publisher.run())
    try:
        async with asyncio.timeout(60):
            await publisher.wait_drained()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return publisher


async def test_drains_a_preloaded_outbox_in_order(mosquitto: Mosquitto, tmp_path: Path) -> None:
    issuer = make(tmp_path, max_messages=100_000)
    n = 2000
    issuer.issue(hello)
    for i in range(1, n):
        issuer.issue(report if i % 100 == 0 else heartbeat)
    sub = Subscriber(mosquitto.port)
    try:
        start = time.perf_counter()
        publisher = await _drain(issuer._outbox, mosquitto.port)
        elapsed = time.perf_counter() - start
        print(f"\npublisher drained {n} messages in {elapsed:.2f} s: {n / elapsed:.0f} msg/s")
        assert publisher.acked == n
        await asyncio.to_thread(wait_for, lambda: len(sub.snapshot()) >= n)
        got = sub.snapshot()
    finally:
        sub.close()
    by_seq = decode_all([payload for _, payload in got], KEY)
    assert sorted(by_seq) == list(range(1, n + 1))
    arrival = [decode_all([p], KEY).popitem()[0] for _, p in got]
    assert arrival == sorted(arrival)  # seq order on the wire
    assert check_chain(by_seq) == 19
    assert {t for t, _ in got} == {"camwarden/v1/s1/a1/report", "camwarden/v1/s1/a1/heartbeat"}
    assert len(issuer._outbox) == 0
    assert not list((tmp_path / "outbox").iterdir())


async def test_a_refused_puback_keeps_the_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic write camwarden/v1/s1/a1/report\n")
    broker = Mosquitto(tmp_path / "broker", extra=f"acl_file {acl}")
    broker.start()
    try:
        issuer = make(tmp_path)
        issuer.issue(hello)
        issuer.issue(heartbeat)  # not allowed by the ACL: PUBACK 135 Not authorized
        issuer.issue(report)
        outbox = issuer._outbox
        publisher = Publisher(outbox, agent_id="a1", site="s1", config=MqttConfig(port=broker.port))
        task = asyncio.create_task(publisher.run())
        try:
            async with asyncio.timeout(20):
                await publisher.wait_drained()
            await asyncio.sleep(1.5)  # mosquitto resets the connection; no retry loop follows
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        broker.stop()
    assert [(e.seq, e.kind) for e in outbox.entries()] == [(2, "heartbeat")]
    assert publisher.refused == 1
    assert publisher.acked == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused message seq 2" in r.getMessage() for r in warnings)
    assert any("Not authorized" in r.getMessage() for r in warnings)
