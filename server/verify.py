"""Offline verification of a report file (one JWS per line), with one given public key.

Used by ``camwarden-server verify-report`` and ``POST /api/v1/verify-report``; it never reads the
database. The chain is walked across the file: each report's ``prev``/``prev_seq`` must name a
report in the file, except the first report, which may continue a chain that began outside it;
a report that starts a chain (``prev_seq`` 0) must be the agent's first (the collector's rule,
``check_chain_start``), so it may only be the first report of the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
from joserfc.jwk import OKPKey

from protocol import (
    CHANNEL_OF,
    DEFAULT_MAX_BYTES,
    BrokenChain,
    DuplicateMessage,
    MisaddressedMessage,
    ProtocolError,
    ReplayedMessage,
    StatusReport,
    UnknownKey,
    check_chain_start,
    check_link,
    decode_agent_message,
    topic,
    verify,
)
from protocol.envelope import unverified_payload


class InvalidReport(Exception):
    """A line of the file failed verification."""

    def __init__(self, line: int, error: ProtocolError) -> None:
        super().__init__(f"line {line}: {error.reason}: {error.detail}")
        self.line = line
        self.error = error


@dataclass(slots=True)
class Summary:
    agent_id: str | None = None
    site: str | None = None
    messages: int = 0
    reports: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"valid: {self.messages} messages ({self.reports} reports) from "
            f"{self.site}/{self.agent_id}, seq {self.first_seq}..{self.last_seq}"
        ]
        return "\n".join(lines + self.notes)


def report_lines(data: bytes) -> Iterable[tuple[int, bytes]]:
    """(line number, JWS) for every non-blank line."""
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if line:
            yield number, line


def verify_file(data: bytes, key: OKPKey, max_bytes: int = DEFAULT_MAX_BYTES) -> Summary:
    """Verify every line with ``key`` and walk the chain; raise InvalidReport at the first fault."""
    kid = key.thumbprint()

    def resolve(wanted: str) -> OKPKey:
        if wanted != kid:
            raise UnknownKey(f"signed with key {wanted}, not the given key {kid}")
        return key

    summary = Summary()
    digests: dict[int, tuple[str, str]] = {}  # seq -> (type, digest)
    first_report = True
    earliest: int | None = None  # the lowest seq of the reports before
    starts: set[int] = set()  # the reports before that started a chain
    for number, token in report_lines(data):
        try:
            verified = verify(token, resolve, max_bytes)
            message = decode_agent_message(verified.payload)
            if summary.agent_id is None:
                summary.agent_id, summary.site = message.agent_id, message.site
            elif (message.agent_id, message.site) != (summary.agent_id, summary.site):
                raise MisaddressedMessage(
                    f"{message.site}/{message.agent_id} in a file of "
                    f"{summary.site}/{summary.agent_id}"
                )
            if message.seq in digests:
                if digests[message.seq][1] == verified.digest:
                    raise DuplicateMessage(f"seq {message.seq} appears twice")
                raise ReplayedMessage(f"seq {message.seq} appears with other bytes")
            if isinstance(message, StatusReport):
                predecessor = digests.get(message.prev_seq)
                if predecessor is not None and predecessor[0] != "report":
                    raise BrokenChain(f"prev_seq {message.prev_seq} names a {predecessor[0]}")
                if predecessor is None and message.prev_seq and not first_report:
                    raise BrokenChain(f"report {message.prev_seq} is missing from the file")
                check_link(
                    message.prev,
                    message.prev_seq,
                    message.seq,
                    predecessor[1] if predecessor else None,
                )
                if not message.prev_seq:
                    check_chain_start(message.seq, earliest, starts)
                    starts.add(message.seq)
                earliest = message.seq if earliest is None else min(earliest, message.seq)
                if predecessor is None and message.prev_seq:
                    summary.notes.append(
                        f"line {number}: report {message.seq} continues report "
                        f"{message.prev_seq}, which is not in this file (not checked here)"
                    )
                first_report = False
                summary.reports += 1
        except ProtocolError as exc:
            raise InvalidReport(number, exc) from exc
        digests[message.seq] = (str(type(message).__struct_config__.tag), verified.digest)
        summary.messages += 1
        summary.first_seq = min(summary.first_seq or message.seq, message.seq)
        summary.last_seq = max(summary.last_seq or message.seq, message.seq)
    if summary.messages == 0:
        raise InvalidReport(0, ProtocolError("the file holds no messages"))
    return summary


class _Address(msgspec.Struct):
    type: str = "report"
    site: str = "unknown"
    agent_id: str = "unknown"


_address = msgspec.json.Decoder(_Address)


def topic_for(token: bytes) -> str:
    """The topic an agent would have published ``token`` on, read from its (unverified) payload.

    Only routing: the pipeline then verifies the signature and checks the payload against it.
    """
    try:
        where = _address.decode(unverified_payload(token, max(len(token), DEFAULT_MAX_BYTES)))
        return topic(where.site, where.agent_id, CHANNEL_OF.get(where.type, "report"))
    except (ProtocolError, ValueError, msgspec.MsgspecError):
        return "camwarden/v1/unknown/unknown/report"
