"""Issuing messages: number, chain, sign, store durably. The only writer of seq and chain state.

Order for every message: build with the next seq and the current chain head, sign, write the
outbox entry (fsync), update the state file (fsync); publishing happens later from the outbox.
Recovery on start takes the maximum of the state file and the outbox, so a seq is never reused
and a report that reached the outbox but not the state file still becomes the chain head.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from joserfc.jwk import OKPKey
from msgspec.structs import replace

from agent.errors import OutboxFull
from agent.messaging.outbox import DROPPABLE, Kind, Outbox
from agent.state import ChainState, StateStore
from protocol.envelope import digest, sign
from protocol.messages import (
    AgentMessage,
    CommandResult,
    Heartbeat,
    Hello,
    StatusReport,
    SurveyResult,
    encode,
)
from protocol.rules import utc_now

log = logging.getLogger(__name__)

KIND_OF: Final[dict[type[AgentMessage], Kind]] = {
    Hello: "hello",
    StatusReport: "report",
    Heartbeat: "heartbeat",
    CommandResult: "cmd-result",
    SurveyResult: "survey-result",
}


@dataclass(frozen=True, slots=True)
class Header:
    """What the issuer decides for the next message; the caller adds the body."""

    agent_id: str
    site: str
    seq: int
    issued_at: datetime
    prev: str
    prev_seq: int
    outbox_dropped: int  # for status reports: heartbeats dropped since the last report

    def fields(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "site": self.site,
            "seq": self.seq,
            "issued_at": self.issued_at,
            "prev": self.prev,
            "prev_seq": self.prev_seq,
        }


@dataclass(frozen=True, slots=True)
class Issued:
    seq: int
    kind: Kind
    token: bytes


def recover(saved: ChainState, outbox: Outbox) -> ChainState:
    """The state to continue from: the saved state, advanced past anything in the outbox."""
    seq = max(saved.seq, outbox.max_seq())
    head_digest, head_seq, dropped = saved.head_digest, saved.head_seq, saved.outbox_dropped
    newest = outbox.newest("report")
    if newest is not None and newest.seq > saved.head_seq:
        token = outbox.read(newest)
        if token is not None:
            # killed after the outbox write, before the state write: that report is the head
            head_digest, head_seq, dropped = digest(token), newest.seq, 0
    if seq != saved.seq:
        log.info("recovered seq %d from the outbox (state file had %d)", seq, saved.seq)
    return ChainState(seq=seq, head_digest=head_digest, head_seq=head_seq, outbox_dropped=dropped)


class Issuer:
    def __init__(
        self,
        agent_id: str,
        site: str,
        key: OKPKey,
        store: StateStore,
        outbox: Outbox,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.agent_id = agent_id
        self.site = site
        self._key = key
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self._lock = threading.Lock()
        self._state = recover(store.load(), outbox)

    @property
    def state(self) -> ChainState:
        return self._state

    def issue(self, build: Callable[[Header], AgentMessage]) -> Issued | None:
        """Issue one message; blocking (fsync), so async callers run it in a worker thread.

        Returns None when a heartbeat had to be dropped because the outbox is full. Raises
        OutboxFull for a non-droppable message that does not fit (its seq is not consumed), and
        StorageError when the disk refuses the write.
        """
        with self._lock:
            state = self._state
            dropped = state.outbox_dropped + self._outbox.take_dropped()
            header = Header(
                agent_id=self.agent_id,
                site=self.site,
                seq=state.seq + 1,
                issued_at=self._clock(),
                prev=state.head_digest,
                prev_seq=state.head_seq,
                outbox_dropped=dropped,
            )
            message = build(header)
            kind = KIND_OF[type(message)]
            if message.seq != header.seq or message.prev != header.prev:
                raise ValueError("the message must carry the header's seq and chain fields")
            token = sign(encode(message), self._key).encode("ascii")
            try:
                self._outbox.put(header.seq, kind, token)
            except OutboxFull:
                # nothing was written, so the seq is not consumed; a heartbeat that cannot be
                # stored counts as dropped, anything else is the caller's to handle
                if kind not in DROPPABLE:
                    self._state = replace(state, outbox_dropped=dropped)
                    raise
                self._state = replace(state, outbox_dropped=dropped + 1)
                self._store.save(self._state)
                return None
            dropped = self._outbox.take_dropped() + (0 if kind == "report" else dropped)
            new = replace(state, seq=header.seq, outbox_dropped=dropped)
            if kind == "report":
                new = replace(new, head_digest=digest(token), head_seq=header.seq)
            # advance in memory first: if the state write fails, the outbox entry already
            # protects the seq (see recover) and the next successful write catches up
            self._state = new
            self._store.save(new)
            return Issued(header.seq, kind, token)
