from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

from protocol import generate_private_key
from server.config import DatabaseConfig, IngestConfig, MqttConfig, ServerConfig
from server.ingest.ingestor import Ingestor
from server.ingest.subscriber import Subscriber
from server.metrics import Metrics
from server.storage import Repository
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto, wait_port

PG_URL = os.environ.get("CAMWARDEN_TEST_PG", "")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a throwaway schema in CAMWARDEN_TEST_PG."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    if not PG_URL:
        pytest.skip("CAMWARDEN_TEST_PG is not set (make test exports it)")
    with pg_schema() as url:
        yield url


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """The URL of a throwaway schema in CAMWARDEN_TEST_PG, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    repository = Repository.open(db_url)
    repository.migrate()
    try:
        yield repository
    finally:
        repository.close()


def make_config(db_url: str, broker_port: int = 1883, **ingest: object) -> ServerConfig:
    settings: dict[str, object] = {"batch_latency_s": 0.05, "quarantine_size": 50}
    settings.update(ingest)
    return ServerConfig(
        state_dir="unused",
        database=DatabaseConfig(url=db_url),
        mqtt=MqttConfig(port=broker_port, client_id=f"test-{uuid.uuid4().hex[:8]}"),
        ingest=IngestConfig(**settings),  # type: ignore[arg-type]
    )


def enroll(repo: Repository, agent: SimAgent, *, approved: bool = True) -> None:
    now = datetime.now(UTC)
    token = repo.create_token(
        agent.site, approved=approved, ttl=timedelta(hours=1), uses=1, now=now
    )
    repo.enroll(
        token,
        agent_id=agent.agent_id,
        site=agent.site,
        jwk=agent.jwk,
        kid=agent.key.thumbprint(),
        hostname=None,
        now=now,
    )


class Collector:
    """An in-process collector (subscriber thread) on a real broker and database."""

    def __init__(self, config: ServerConfig, repo: Repository) -> None:
        self.config = config
        self.metrics = Metrics()
        self.ingestor = Ingestor(config, repo, self.metrics)
        self.command_key = generate_private_key()
        self.subscriber = Subscriber(
            config.mqtt,
            self.ingestor,
            config.ingest.batch_size,
            config.ingest.batch_latency_s,
            self.command_key,
            stall_after_s=config.ingest.stall_after_s,
            tune_process_gc=False,  # process-wide: not in the test runner
        )

    def rejected(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "camwarden_ingest_rejected_total", {"reason": reason}
        )
        return value or 0.0


@pytest.fixture
def collector(mosquitto: Mosquitto, repo: Repository, db_url: str) -> Iterator[Collector]:
    c = Collector(make_config(db_url, mosquitto.port), repo)
    c.subscriber.start()
    assert c.subscriber.connected.wait(10)
    try:
        yield c
    finally:
        c.subscriber.stop()


class Publisher:
    """A plain MQTT v5 client that publishes QoS 1 and waits for the broker's PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def publish_all(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto.port)
    try:
        yield p
    finally:
        p.close()


def wait_until(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    done = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while not predicate():
        if datetime.now(UTC) > deadline:
            raise AssertionError("condition not reached in time")
        done.wait(0.05)


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on a real uvicorn server on a free loopback port, and a client for it.

    The port is bound here and the socket handed to uvicorn: a port number found free and
    bound later by the server thread could be taken in between (on a loaded machine the gap
    is long, and every other test's connections draw from the same ephemeral ports); the
    server would then fail to bind and the client would talk to whatever holds the port."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and an
    # accepted socket inherits it (with proto 0 each answer waited 40 ms for a delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # as the collector runs it: only http.trusted_proxies count
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_port("127.0.0.1", port)  # refused until the server listens on the socket
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
