"""The records of one ingest batch, as the ingest pipeline hands them to storage: a delivery
(``Incoming``), a message that passed stage 1 (``Checked``) or a rejection (``Rejected``), and what
stage 2 reads from the database inside the batch transaction (``StoredView``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from joserfc.jwk import OKPKey

from protocol import AgentMessage, ProtocolError


class AgentStatus(StrEnum):
    """An enrolled agent's key: waiting for an administrator, approved, or revoked (final)."""

    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AgentKey:
    agent_id: str
    site: str
    status: AgentStatus
    key: OKPKey


@dataclass(frozen=True, slots=True)
class Checked:
    """Passed stage 1: the signature holds and the payload is a well-formed, fresh message."""

    incoming: Incoming
    message: AgentMessage
    kid: str
    digest: str

    @property
    def type(self) -> str:
        return type(self.message).__struct_config__.tag  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Rejected:
    incoming: Incoming
    error: ProtocolError
    message: AgentMessage | None = None  # set when stage 2 rejected a verified message


@dataclass(frozen=True, slots=True)
class StoredRef:
    seq: int
    type: str
    digest: str
    prev: str
    prev_seq: int


@dataclass(slots=True)
class ChainStart:
    """For an agent with a report starting a chain in the batch: its other known reports."""

    earliest: int | None = None  # the lowest seq of its stored (and accepted) reports
    starts: set[int] = field(default_factory=set)  # those of them with prev_seq 0


@dataclass(slots=True)
class StoredView:
    """What stage 2 needs from the database, read inside the batch transaction."""

    agents: dict[str, tuple[str, AgentStatus]] = field(default_factory=dict)  # id -> (kid, status)
    messages: dict[tuple[str, int], StoredRef] = field(default_factory=dict)
    # (agent_id, seq) -> stored reports whose prev_seq is seq
    successors: dict[tuple[str, int], list[StoredRef]] = field(default_factory=dict)
    # agent_id -> its reports, for the agents with a report in the batch that starts a chain
    chains: dict[str, ChainStart] = field(default_factory=dict)
