"""Collector ingest throughput against its ceilings (prints figures; not a test).

The broker is preloaded with N signed reports in the collectors' persistent shared-subscription
sessions before any collector starts, so the load generator does not compete for CPU. Measured:
(a) mosquitto_sub delivery rate of the same messages (transport ceiling), (b) bare Ed25519
verification of the same reports in one Python thread (crypto ceiling), (c) one collector
process storing into SQLite, (d) two collector processes sharing the subscription.

    python bench/ingest.py [N]
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import collector_subscriptions
from server.storage import Repository
from server.storage.models import Message
from tests.support.agents import SimAgent
from tests.support.mosquitto import Mosquitto, free_port

AGENTS = 8


def client(port: int, client_id: str, persistent: bool) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(2000)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600 if persistent else 0
    c.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    return c


def create_sessions(port: int, client_ids: list[str]) -> None:
    for cid in client_ids:
        c = client(port, cid, persistent=True)
        c.loop_start()
        c.subscribe([(name, 1) for name in collector_subscriptions()])
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    c = client(port, f"bench-pub-{uuid.uuid4().hex[:6]}", persistent=False)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def crypto_ceiling(messages: list[tuple[str, bytes]], keys: dict[str, Ed25519PublicKey]) -> float:
    items = []
    for t, token in messages:
        signing_input, _, sig = token.rpartition(b".")
        items.append((keys[t.split("/")[3]], base64.urlsafe_b64decode(sig + b"=="), signing_input))
    start = time.perf_counter()
    for key, sig, data in items:
        key.verify(sig, data)
    return len(items) / (time.perf_counter() - start)


def transport_ceiling(work: Path, messages: list[tuple[str, bytes]]) -> float:
    broker = Mosquitto(work / "raw")
    broker.start()
    try:
        sub = [
            "mosquitto_sub", "-V", "5", "-p", str(broker.port), "-i", "bench-raw", "-c",
            "-x", "3600", "-q", "1", "-t", "camwarden/v1/+/+/report",
        ]  # fmt: skip
        subprocess.run([*sub, "-W", "1"], capture_output=True, check=False)
        publish(broker.port, messages)
        start = time.perf_counter()
        subprocess.run([*sub, "-C", str(len(messages))], stdout=subprocess.DEVNULL, check=True)
        return len(messages) / (time.perf_counter() - start)
    finally:
        broker.stop()


def collectors(
    work: Path, messages: list[tuple[str, bytes]], agents: list[SimAgent], n: int, db_url: str
) -> float:
    broker = Mosquitto(work / f"broker-{n}")
    broker.start()
    repo = Repository.open(db_url)
    repo.migrate()
    now = datetime.now(UTC)
    for a in agents:
        token = repo.create_token(a.site, approved=True, ttl=timedelta(hours=1), uses=1, now=now)
        repo.enroll(
            token, agent_id=a.agent_id, site=a.site, jwk=a.jwk, kid=a.key.thumbprint(),
            hostname=None, now=now,
        )  # fmt: skip
    ids = [f"bench-collector-{i}" for i in range(n)]
    create_sessions(broker.port, ids)
    publish(broker.port, messages)
    procs = []
    for cid in ids:
        config = work / f"{cid}-{n}.toml"
        config.write_text(
            f'state_dir = "{work}"\n[database]\nurl = "{db_url}"\n'
            f'[mqtt]\nport = {broker.port}\nclient_id = "{cid}"\n'
            f"[http]\nport = {free_port()}\n[ingest]\nbatch_size = 500\n",
            encoding="utf-8",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "server", "--config", str(config), "run"],
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        while (first := repo.count(Message)) == 0:
            time.sleep(0.01)
        start = time.perf_counter()
        deadline = start + 600
        while (count := repo.count(Message)) < len(messages) and time.perf_counter() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        if count < len(messages):
            raise RuntimeError(f"only {count} of {len(messages)} stored")
        return (len(messages) - first) / elapsed
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        repo.close()
        broker.stop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    agents = [SimAgent(f"bench-{i:02d}") for i in range(AGENTS)]
    messages = [agents[i % AGENTS].report(cameras=2) for i in range(n)]
    size = sum(len(p) for _, p in messages) / n
    keys = {a.agent_id: a.key.public_key for a in agents}
    print(f"{n} reports from {AGENTS} agents, {size:.0f} bytes each")
    with tempfile.TemporaryDirectory(prefix="camwarden-bench-") as tmp:
        work = Path(tmp)
        transport = transport_ceiling(work, messages)
        print(f"(a) transport ceiling, mosquitto_sub:        {transport:8.0f} msg/s")
        crypto = crypto_ceiling(messages, keys)  # type: ignore[arg-type]
        print(f"(b) crypto ceiling, bare Ed25519 verify:     {crypto:8.0f} msg/s")
        one = collectors(work, messages, agents, 1, f"sqlite:///{work}/one.db")
        print(f"(c) one collector, SQLite:                   {one:8.0f} msg/s")
        two = collectors(work, messages, agents, 2, f"sqlite:///{work}/two.db")
        print(f"(d) two collectors, SQLite:                  {two:8.0f} msg/s")
        ratios = f"(c)/(b) = {one / crypto:.2f}   (d)/(c) = {two / one:.2f}"
        print(f"{ratios}   (c)/(a) = {one / transport:.2f}")


if __name__ == "__main__":
    main()
