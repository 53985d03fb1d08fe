"""What refusing duplicate JSON keys costs the collector per message.

msgspec keeps the last of two equal keys; ``protocol.messages`` therefore re-encodes each decoded
message and compares the bytes (our own encoder's output is canonical, so equal bytes prove one
key per field), and only a payload in another spelling goes through the standard ``json`` module
with a hook that refuses a repeated key. This bench times, on the reports of bench/ingest.py, in
interleaved rounds on one thread (minimum over chunks of 1000 messages, CPU microseconds):

* the strict typed decode alone (what ``decode_agent_message`` did before);
* ``decode_agent_message`` with the check (canonical payloads: the fast path);
* the same payloads re-spelled (a space after each comma), which take the exact ``json`` path;
* ``Pipeline.check``-like stage 1 without storage: ``envelope.verify`` and the decode.

    python bench/duplicate_keys.py [N] [--rounds R]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joserfc.jwk import OKPKey

from protocol import decode_agent_message, verify
from protocol.messages import AgentMessage, _agent_decoder
from tests.support.agents import SimAgent

CHUNK = 1000


def _per_message(work: Callable[[bytes], object], items: Sequence[bytes]) -> float:
    """Minimum CPU microseconds per message over chunks of ``CHUNK``."""
    best = float("inf")
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        began = time.thread_time()
        for item in chunk:
            work(item)
        best = min(best, (time.thread_time() - began) / len(chunk) * 1e6)
    return best


def _typed_only(payload: bytes) -> AgentMessage:
    return _agent_decoder.decode(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="reports")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    agents = [SimAgent(f"bench-{i:02d}") for i in range(8)]
    tokens = [agents[i % len(agents)].report()[1] for i in range(args.n)]
    payloads = [base64.urlsafe_b64decode(t.split(b".")[1] + b"==") for t in tokens]
    spelled = [p.replace(b",", b", ") for p in payloads]
    keys = {a.key.thumbprint(): a.key for a in agents}

    def resolve(kid: str) -> OKPKey:
        return keys[kid]

    def stage1(token: bytes) -> AgentMessage:
        return decode_agent_message(verify(token, resolve).payload)

    cases: list[tuple[str, Callable[[bytes], object], Sequence[bytes]]] = [
        ("typed decode alone (before)", _typed_only, payloads),
        ("decode_agent_message (after)", decode_agent_message, payloads),
        ("re-spelled payloads, exact json check", decode_agent_message, spelled),
        ("verify + decode_agent_message", stage1, tokens),
    ]
    figures: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.rounds):
        for name, work, items in cases:
            figures[name].append(_per_message(work, items))
    print(f"{args.n} reports of ~{len(tokens[0])} bytes; load {os.getloadavg()[0]:.1f}")
    for name, values in figures.items():
        print(f"  {name:40s} {min(values):7.1f} us/msg (min of {args.rounds} rounds)")
    before, after = min(figures[cases[0][0]]), min(figures[cases[1][0]])
    print(f"  duplicate-key check on our own payloads: {after - before:+.1f} us/msg")


if __name__ == "__main__":
    main()
