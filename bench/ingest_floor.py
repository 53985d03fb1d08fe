"""What the libraries the collector must use cost per message, with none of our code around them.

The ingest targets (bench/ingest.py): one collector process stores at least 0.7 x (b), the bare
Ed25519 verification rate of one Python thread, and two processes sharing the subscription at
least 1.5 x one. Together: two processes store at least 1.05 x (b) messages per second, so on
this machine everything one message costs, on every core (collector and broker), must fit in

    budget = cores / (1.05 x (b))

This bench measures, on the same 2 KB reports as bench/ingest.py, the floor each mandated
library puts under that, each alone in a tight loop:

* Ed25519 verification (cryptography), the (b) of bench/ingest.py;
* joserfc: ``jws.deserialize_compact`` with the agent's key, minus the Ed25519 call inside it
  (the protocol requires a well-kept JOSE library; our code calls exactly this);
* msgspec: decoding the payload JSON into plain objects (the cheapest decode there is);
* paho-mqtt 2.x, MQTT v5, QoS 1: a bare subscriber process (auto-acknowledge, a callback that
  only counts) draining a preloaded persistent session, and the broker's CPU for the same;
* SQLAlchemy 2 Core: one executemany of the ``messages`` rows per batch of 500 into the
  collector's own SQLite database (WAL, synchronous=FULL, as ``Repository.open`` sets it),
  the one row any design must write per message.

It prints each floor in CPU microseconds per message, their sum and the budget. Each floor is the
library used through its documented API; the collector goes below two of them by lower-level
use (ADR 0008: paho's socket reads and acknowledgements batched, joserfc's header parsed once
per header), so the sum is an estimate of what any straightforward collector needs, not a proof.
What is left between the budget and Ed25519 plus the broker is what everything else a message
needs (receive, parse, checks, storage, acknowledgement) must fit in.

    python bench/ingest_floor.py [N] [--repeat R]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from joserfc import jws
from joserfc.jwk import OKPKey
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import (
    AGENTS,
    CORES,
    Messages,
    broker,
    client,
    create_sessions,
    crypto_ceiling,
    load1,
    process_cpu,
    publish,
)
from protocol.envelope import _REGISTRY  # the registry our verify passes to joserfc
from server.storage import Repository
from server.storage.models import Message
from tests.support.agents import SimAgent

BATCH = 500


def per_message_us(cpu_s: float, n: int) -> float:
    return 1e6 * cpu_s / n


def joserfc_us(messages: Messages, keys: dict[str, OKPKey]) -> float:
    """CPU per message of joserfc's compact verification, Ed25519 included."""
    items = [(token, keys[topic.split("/")[3]]) for topic, token in messages]
    start = time.process_time()
    for token, key in items:
        jws.deserialize_compact(token, key, algorithms=["EdDSA"], registry=_REGISTRY)
    return per_message_us(time.process_time() - start, len(items))


def msgspec_us(messages: Messages) -> float:
    payloads = [base64.urlsafe_b64decode(token.split(b".")[1] + b"==") for _, token in messages]
    decoder = msgspec.json.Decoder()
    start = time.process_time()
    for payload in payloads:
        decoder.decode(payload)
    return per_message_us(time.process_time() - start, len(payloads))


def sqlalchemy_us(messages: Messages, work: Path) -> float:
    """CPU per message of inserting the ``messages`` rows, BATCH per transaction."""
    repo = Repository.open(f"sqlite:///{work / f'floor-{time.monotonic_ns()}.db'}")
    repo.migrate()
    now = datetime.now(UTC)
    rows = [
        {
            "agent_id": topic.split("/")[3],
            "seq": n,
            "type": "report",
            "issued_at": now,
            "received_at": now,
            "digest": "0" * 64,
            "prev": "0" * 64,
            "prev_seq": n - 1,
            "jws": token.decode("ascii"),
        }
        for n, (topic, token) in enumerate(messages, 1)
    ]
    statement = insert(Message)
    try:
        start = time.process_time()
        for first in range(0, len(rows), BATCH):
            with repo.engine.begin() as conn:
                conn.execute(statement, rows[first : first + BATCH])
        return per_message_us(time.process_time() - start, len(rows))
    finally:
        repo.close()


def subscriber(port: str, client_id: str, count: str) -> None:
    """Child process: drain ``count`` messages from the persistent session; print CPU s."""
    want, got = int(count), 0
    start = 0.0

    def on_message(c: object, _userdata: object, _message: object) -> None:
        nonlocal got, start
        if got == 0:
            start = time.process_time()
        got += 1
        if got == want:
            c.disconnect()  # type: ignore[attr-defined]

    c = client(int(port), client_id, persistent=True)
    c.on_message = on_message
    c.loop_forever()
    print(time.process_time() - start)


def paho_us(messages: Messages, work: Path) -> tuple[float, float]:
    """CPU per message of a bare paho subscriber process and of the broker delivering to it."""
    with broker(work / f"floor-{time.monotonic_ns()}") as b:
        assert b.proc is not None
        create_sessions(b.port, ["floor-sub"])
        publish(b.port, messages)
        broker_before = process_cpu(b.proc.pid)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(b.port), "floor-sub", str(len(messages))],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        broker_cpu = process_cpu(b.proc.pid) - broker_before
    return (
        per_message_us(float(out.stdout.split()[-1]), len(messages)),
        per_message_us(broker_cpu, len(messages)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="reports per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        subscriber(*args.child)
        return
    agents = [SimAgent(f"bench-{i:02d}") for i in range(AGENTS)]
    messages = [agents[i % AGENTS].report(cameras=2) for i in range(args.n)]
    size = sum(len(p) for _, p in messages) / args.n
    raw_keys = {a.agent_id: a.key.public_key for a in agents}
    jose_keys = {a.agent_id: OKPKey.import_key(dict(a.jwk)) for a in agents}
    print(
        f"{args.n} reports, {size:.0f} bytes each; {CORES} cores; median of {args.repeat} "
        f"runs; load {load1():.1f} at start"
    )

    def med(measure: Callable[[], float]) -> float:
        return statistics.median(measure() for _ in range(args.repeat))

    with tempfile.TemporaryDirectory(prefix="camwarden-floor-") as tmp:
        work = Path(tmp)
        crypto = med(lambda: crypto_ceiling(messages, raw_keys))  # type: ignore[arg-type]
        ed25519 = 1e6 / crypto
        jose = med(lambda: joserfc_us(messages, jose_keys)) - ed25519
        decode = med(lambda: msgspec_us(messages))
        store = med(lambda: sqlalchemy_us(messages, work))
        paho_runs = [paho_us(messages, work) for _ in range(args.repeat)]
    paho = statistics.median(p for p, _ in paho_runs)
    broker_cpu = statistics.median(b for _, b in paho_runs)
    budget = CORES * 1e6 / (1.05 * crypto)
    rows = [
        ("Ed25519 verify, cryptography (b)", ed25519),
        ("joserfc compact parse, beyond Ed25519", jose),
        ("msgspec JSON decode of the payload", decode),
        ("paho-mqtt subscriber, QoS 1, MQTT v5", paho),
        ("SQLAlchemy Core insert, SQLite, 500/tx", store),
        ("Mosquitto delivering it", broker_cpu),
    ]
    print(f"(b) bare Ed25519 verify: {crypto:.0f} msg/s")
    for label, us in rows:
        print(f"  {label:42s} {us:7.1f} us/msg")
    floor = sum(us for _, us in rows)
    print(f"  {'sum of the floors':42s} {floor:7.1f} us/msg")
    print(
        f"  {'budget: cores / (1.05 x (b))':42s} {budget:7.1f} us/msg  "
        f"(both ingest targets together)"
    )
    print(
        f"  {'left beside Ed25519 and the broker':42s} {budget - ed25519 - broker_cpu:7.1f}"
        " us/msg  for receive, parse, checks, storage and acknowledgement"
    )
    print(
        f"With nothing but these libraries, two collectors store {CORES * 1e6 / floor:.0f} msg/s"
        f" at most on this machine = {CORES * 1e6 / floor / crypto:.2f} x (b) (target 1.05)."
    )


if __name__ == "__main__":
    main()
