"""Pure freshness, replay and chain rules shared by the collector and offline verification.

Replay protection is exact: a (agent_id, seq) pair is accepted once. An agent id has one report
chain: enrolling it with another key is refused and revocation is final, so there is no
re-enrollment or key rotation after which a chain could legitimately begin again (a reinstalled
agent enrolls under a new id). A report that starts a chain (``prev_seq`` 0) after other reports of
its agent would let a sender disown everything it reported before; ``check_chain_start`` refuses
it. Because several collector
processes share one subscription, messages of one agent can be stored out of order, so "fresh"
means "seq never stored" plus an issued_at window, not "seq above the last one processed";
see docs/adr/0001-envelope-format.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from protocol.errors import BrokenChain, StaleMessage
from protocol.messages import GENESIS


def utc_now() -> datetime:
    """The clock both sides default to (wire times are UTC); tests inject their own."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Freshness:
    max_clock_skew: timedelta = timedelta(minutes=5)  # how far in the future issued_at may be
    max_age: timedelta = timedelta(days=30)  # buffered reports older than this are stale


def check_issued_at(issued_at: datetime, now: datetime, rules: Freshness) -> None:
    if issued_at > now + rules.max_clock_skew:
        raise StaleMessage(f"issued_at {issued_at.isoformat()} is ahead of the collector clock")
    if issued_at < now - rules.max_age:
        raise StaleMessage(f"issued_at {issued_at.isoformat()} is older than {rules.max_age}")


def check_link(prev: str, prev_seq: int, seq: int, predecessor_digest: str | None) -> None:
    """Check one link of the report chain.

    ``predecessor_digest`` is the digest of the stored report with seq ``prev_seq``, or None if that
    report has not arrived (yet); a missing predecessor is checked when it arrives.
    """
    if prev_seq >= seq:
        raise BrokenChain(f"prev_seq {prev_seq} is not below seq {seq}")
    if prev_seq == 0:
        if prev != GENESIS:
            raise BrokenChain("first report must have the genesis prev")
        return
    if predecessor_digest is not None and predecessor_digest != prev:
        raise BrokenChain(f"prev does not match the digest of report {prev_seq}")


def check_chain_start(seq: int, earliest: int | None, starts: Iterable[int]) -> None:
    """Check a report that starts a chain (``prev_seq`` 0) against the other reports known of its
    agent: ``earliest`` is the lowest seq among them (None if there are none), ``starts`` the seqs
    of those that started a chain too. Only the agent's first report may start its chain."""
    if earliest is not None and earliest < seq:
        raise BrokenChain(f"report {seq} starts a new chain after report {earliest}")
    for other in starts:
        if other != seq:
            raise BrokenChain(f"report {seq} starts a second chain; report {other} started one")
