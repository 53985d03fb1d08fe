"""The ingest pipeline: bytes and topic in, an accepted message or a ProtocolError out.

Stage 1 (``Pipeline.check``, CPU only, run on several threads): size, header, signature against
the sender's key, strict decode, topic/payload consistency, issued_at window.
Stage 2 (``sequence``, pure, run inside the batch transaction against a snapshot of what is
stored): the sender's current key status, exact replay rule (same (agent_id, seq) with the same
digest is a duplicate, with another digest a replay) and the report chain, both for the incoming
report's predecessor and for stored reports that already name it as their predecessor; a report
that starts a chain (``prev_seq`` 0) must be its agent's first (``check_chain_start``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from joserfc.jwk import OKPKey

from protocol import (
    CHANNEL_OF,
    BrokenChain,
    DuplicateMessage,
    Freshness,
    MisaddressedMessage,
    ProtocolError,
    ReplayedMessage,
    RevokedKey,
    UnknownKey,
    check_chain_start,
    check_issued_at,
    check_link,
    decode_agent_message,
    parse,
    verify,
)
from server.storage.records import (
    AgentKey,
    AgentStatus,
    ChainStart,
    Checked,
    Incoming,
    Rejected,
    StoredRef,
    StoredView,
)


class RefusedByDatabase(ProtocolError):
    """The database refused to store a message that passed both stages (a value it cannot
    hold, too long for its column, a constraint): quarantined with the database's reason, never
    retried. Not part of the wire contract: only a collector's database can refuse."""

    reason = "refused"


KeyLookup = Callable[[str], AgentKey | None]


class Pipeline:
    """Stage 1. ``lookup`` maps a kid to the agent that enrolled it (any status), or None."""

    def __init__(
        self,
        lookup: KeyLookup,
        freshness: Freshness,
        max_bytes: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._lookup = lookup
        self._freshness = freshness
        self._max_bytes = max_bytes
        self._clock = clock

    def _resolve(self, kid: str) -> OKPKey:
        entry = self._lookup(kid)
        if entry is None:
            raise UnknownKey(f"no enrolled agent has key {kid}")
        if entry.status == AgentStatus.REVOKED:
            raise RevokedKey(f"the key of agent {entry.agent_id} is revoked")
        return entry.key

    def check(self, incoming: Incoming) -> Checked:
        verified = verify(incoming.payload, self._resolve, self._max_bytes)
        message = decode_agent_message(verified.payload)
        owner = self._lookup(verified.kid)
        if owner is None or owner.agent_id != message.agent_id:
            raise UnknownKey(f"key {verified.kid} is not a key of agent {message.agent_id}")
        where = parse(incoming.topic)
        channel = CHANNEL_OF[type(message).__struct_config__.tag]  # type: ignore[index]
        if (where.site, where.agent_id, where.channel) != (message.site, message.agent_id, channel):
            raise MisaddressedMessage(
                f"{channel} of {message.site}/{message.agent_id} published on {incoming.topic}"
            )
        if owner.site != message.site:
            raise MisaddressedMessage(f"agent {owner.agent_id} is enrolled for site {owner.site}")
        check_issued_at(message.issued_at, self._clock(), self._freshness)
        return Checked(incoming, message, verified.kid, verified.digest)

    def check_all(self, batch: Sequence[Incoming]) -> list[Checked | Rejected]:
        results: list[Checked | Rejected] = []
        for incoming in batch:
            try:
                results.append(self.check(incoming))
            except ProtocolError as exc:
                results.append(Rejected(incoming, exc))
        return results


def _ref(item: Checked) -> StoredRef:
    m = item.message
    return StoredRef(m.seq, item.type, item.digest, m.prev, m.prev_seq)


def _admit(item: Checked, view: StoredView) -> None:
    m = item.message
    kid, status = view.agents.get(m.agent_id, ("", None))
    if status == AgentStatus.REVOKED:
        raise RevokedKey(f"the key of agent {m.agent_id} is revoked")
    if status != AgentStatus.APPROVED or kid != item.kid:
        detail = "is pending approval" if status == AgentStatus.PENDING else "has no approved key"
        raise UnknownKey(f"agent {m.agent_id} {detail}")
    stored = view.messages.get((m.agent_id, m.seq))
    if stored is not None:
        if stored.digest == item.digest:
            raise DuplicateMessage(f"{m.agent_id} seq {m.seq} is already stored")
        raise ReplayedMessage(f"{m.agent_id} seq {m.seq} was stored with other bytes")
    if item.type != "report":
        return
    predecessor = view.messages.get((m.agent_id, m.prev_seq)) if m.prev_seq else None
    if predecessor is not None and predecessor.type != "report":
        raise BrokenChain(f"prev_seq {m.prev_seq} names a {predecessor.type}, not a report")
    check_link(m.prev, m.prev_seq, m.seq, predecessor.digest if predecessor else None)
    if not m.prev_seq:
        chain = view.chains.get(m.agent_id, ChainStart())
        check_chain_start(m.seq, chain.earliest, chain.starts)
    for successor in view.successors.get((m.agent_id, m.seq), []):
        if successor.type == "report" and successor.prev != item.digest:
            raise BrokenChain(f"stored report {successor.seq} names other bytes as report {m.seq}")


def sequence(batch: Sequence[Checked | Rejected], view: StoredView) -> list[Checked | Rejected]:
    """Stage 2 over one batch, in order; accepted messages join ``view`` for the ones after."""
    results: list[Checked | Rejected] = []
    for item in batch:
        if isinstance(item, Rejected):
            results.append(item)
            continue
        try:
            _admit(item, view)
        except ProtocolError as exc:
            results.append(Rejected(item.incoming, exc, item.message))
            continue
        m = item.message
        ref = _ref(item)
        view.messages[(m.agent_id, m.seq)] = ref
        view.successors.setdefault((m.agent_id, m.prev_seq), []).append(ref)
        chain = view.chains.get(m.agent_id) if item.type == "report" else None
        if chain is not None:
            chain.earliest = m.seq if chain.earliest is None else min(chain.earliest, m.seq)
            if not m.prev_seq:
                chain.starts.add(m.seq)
        results.append(item)
    return results


def needed_keys(
    batch: Sequence[Checked | Rejected],
) -> tuple[set[str], set[tuple[str, int]], set[str]]:
    """Agents and (agent_id, seq) pairs stage 2 must read (own seqs and report predecessors),
    and the agents with a report that starts a chain (their chains must be read)."""
    agents: set[str] = set()
    pairs: set[tuple[str, int]] = set()
    starting: set[str] = set()
    for item in batch:
        if isinstance(item, Checked):
            m = item.message
            agents.add(m.agent_id)
            pairs.add((m.agent_id, m.seq))
            if m.prev_seq:
                pairs.add((m.agent_id, m.prev_seq))
            elif item.type == "report":
                starting.add(m.agent_id)
    return agents, pairs, starting


def by_reason(results: Sequence[Checked | Rejected]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for item in results:
        key = item.error.reason if isinstance(item, Rejected) else "accepted"
        counts[key] = counts.get(key, 0) + 1
    return counts
