"""Versioned message types of ``camwarden/v1``.

Every agent message carries ``agent_id``, ``site``, a per-agent monotonic ``seq`` shared by all its
messages, ``issued_at`` (UTC), and the report hash chain: ``prev`` is the SHA-256 (hex) of the JWS
of the agent's previous status report and ``prev_seq`` its seq (both zero before the first report).
Only status reports are links of the chain; heartbeats may be dropped by a full outbox without
breaking it. Commands travel the other way, signed by the collector's command key.

Decoding is strict (unknown fields and wrong types are schema violations, and so is an object
that names a key twice: msgspec, like most parsers, would silently keep the last, so two readers
of the same signed bytes could see different messages); the JSON Schemas in ``protocol/schemas/``
are generated from these types and checked against them by the tests.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from protocol.errors import SchemaViolation
from protocol.text import TEXT_MAX, TEXT_PATTERN, clean_text

VERSION: Final = "camwarden/v1"
GENESIS: Final = "0" * 64

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
ControlId = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2,5}-[0-9]{2}$")]
Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]{1,80}$")]
# free text (device strings, reasons): no control characters but tab, newline and carriage return
# (protocol.text); a NUL or an escape sequence is a schema violation, never stored or shown
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX, pattern=TEXT_PATTERN)]
# keys of evidence, details and command parameters
Key = Annotated[str, msgspec.Meta(max_length=64, pattern=TEXT_PATTERN)]
EvidenceValue = Annotated[str, msgspec.Meta(pattern=TEXT_PATTERN)] | int | float | bool | None

Status = Literal["pass", "fail", "not_applicable", "inconclusive"]
# How far one camera's audit got. Only "audited" may ever count a camera as clean; a camera whose
# audit stopped short (partial), whose login the camera refused (login_failed), that did not answer
# (unreachable), that no adapter could speak to (unsupported) or that was not audited yet
# (not_audited: reachability only) is shown and counted as not audited, with its reason.
AuditState = Literal[
    "audited", "partial", "login_failed", "unreachable", "unsupported", "not_audited"
]
Severity = Literal["critical", "high", "medium", "low", "info"]


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Finding(_Base, kw_only=True, frozen=True):
    """The result of one check on one subject. Evidence never holds a password or secret."""

    # stable finding code, the key of the message catalogue (e.g. "auth.default_credential")
    code: Code
    check: Code  # id of the check that produced it
    status: Status
    severity: Severity
    controls: list[ControlId]
    reason: Text | None = None  # required in spirit for inconclusive / not_applicable
    evidence: dict[Key, EvidenceValue] = {}


class Identity(_Base, kw_only=True, frozen=True):
    vendor: Text | None = None
    model: Text | None = None
    firmware: Text | None = None
    build_date: Text | None = None  # ISO date when the vendor exposes it
    serial: Text | None = None
    hardware_id: Text | None = None
    mac: Text | None = None
    source: Text | None = None  # which adapter identified it


class Camera(_Base, kw_only=True, frozen=True):
    camera_id: Name
    address: Text
    reachable: bool
    identity: Identity
    findings: list[Finding] = []
    audited_at: UtcTime | None = None
    audit: AuditState = "not_audited"
    audit_reason: Text | None = None  # why the audit did not complete (any state but "audited")


class AgentInfo(_Base, kw_only=True, frozen=True):
    version: Text
    hostname: Text
    platform: Text
    feed_version: Text | None = None


class HostHealth(_Base, kw_only=True, frozen=True):
    cpu_percent: float
    memory_percent: float
    disk_free_bytes: int
    uptime_s: float
    load1: float
    findings: list[Finding] = []


class _AgentMessage(_Base, tag_field="type", kw_only=True, frozen=True):
    agent_id: Name
    site: Name
    seq: Seq
    issued_at: UtcTime
    prev: Sha256Hex
    prev_seq: Annotated[int, msgspec.Meta(ge=0)]
    v: Literal["camwarden/v1"] = VERSION


class Hello(_AgentMessage, tag="hello", kw_only=True, frozen=True):
    agent: AgentInfo


class StatusReport(_AgentMessage, tag="report", kw_only=True, frozen=True):
    agent: AgentInfo
    host: HostHealth
    cameras: list[Camera]
    outbox_dropped: int = 0  # heartbeats dropped by a full outbox since the last report


class Heartbeat(_AgentMessage, tag="heartbeat", kw_only=True, frozen=True):
    uptime_s: float
    outbox_depth: int
    cameras_known: int


CommandStatus = Literal["accepted", "rejected", "in_progress", "succeeded", "failed"]


class CommandResult(_AgentMessage, tag="cmd-result", kw_only=True, frozen=True):
    command_id: Name
    status: CommandStatus
    step: Code | None = None
    reason: Text | None = None
    details: dict[Key, EvidenceValue] = {}


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Evidence = Annotated[dict[Key, EvidenceValue], msgspec.Meta(max_length=16)]


class SurveyExposure(_Base, kw_only=True, frozen=True):
    """One weakness a surveyed host shows without any credential (``protocol.survey.EXPOSURES``
    names the codes and what their evidence holds)."""

    code: Code
    port: Port | None = None
    evidence: Evidence = {}


class SurveyHost(_Base, kw_only=True, frozen=True):
    """One address of a survey that answered on at least one port. ``identity`` is only what
    the device shows to anyone (banners, login pages, pre-auth ONVIF, certificates, RTSP);
    ``complete`` false: the host's deadline ended the probes early (what is listed holds, what
    is missing was not checked)."""

    address: Annotated[str, msgspec.Meta(max_length=45, pattern=r"^[0-9A-Fa-f.:]{2,45}$")]
    ports: Annotated[list[Port], msgspec.Meta(max_length=64)]
    udp_ports: Annotated[list[Port], msgspec.Meta(max_length=8)] = []
    identity: Identity = Identity()
    exposures: Annotated[list[SurveyExposure], msgspec.Meta(max_length=16)] = []
    complete: bool = True


class SurveySummary(_Base, kw_only=True, frozen=True):
    """The shard as a whole, on its last part. ``addresses``: in the command's prefixes;
    ``excluded``/``opted_out``: of those, never touched; ``probed``: touched; ``answered``:
    listed hosts; ``parts``: SurveyResult parts sent for the shard (this one included);
    ``complete`` false: stopped before every address was probed (``reason`` says why: a stable
    code, ``deadline`` or ``interrupted``), the rest is not surveyed."""

    addresses: Annotated[int, msgspec.Meta(ge=0)]
    excluded: Annotated[int, msgspec.Meta(ge=0)]
    opted_out: Annotated[int, msgspec.Meta(ge=0)]
    probed: Annotated[int, msgspec.Meta(ge=0)]
    answered: Annotated[int, msgspec.Meta(ge=0)]
    parts: Annotated[int, msgspec.Meta(ge=1)]
    started_at: UtcTime
    finished_at: UtcTime
    complete: bool
    reason: Code | None = None


class SurveyResult(_AgentMessage, tag="survey-result", kw_only=True, frozen=True):
    """One part of a survey shard's findings (``protocol.survey``): sent on the ``cmd-result``
    channel while the ``survey.sweep`` command ``command_id`` runs."""

    command_id: Name
    survey_id: Name
    shard: Annotated[int, msgspec.Meta(ge=0, le=65535)]
    part: Annotated[int, msgspec.Meta(ge=1, le=100000)]
    last: bool
    hosts: Annotated[list[SurveyHost], msgspec.Meta(max_length=256)]
    summary: SurveySummary | None = None  # set on the last part only

    def __post_init__(self) -> None:
        if self.last != (self.summary is not None):
            raise ValueError("the last part, and only it, carries the summary")
        if self.summary is not None and self.summary.parts != self.part:
            raise ValueError("the last part's number is the summary's parts")


class Command(_Base, tag_field="type", tag="command", kw_only=True, frozen=True):
    """Collector to agent. Signed with the collector's command key pinned at enrollment."""

    command_id: Name
    agent_id: Name
    site: Name
    action: Code
    issued_at: UtcTime
    expires_at: UtcTime
    nonce: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
    camera_id: Name | None = None
    params: dict[Key, EvidenceValue] = {}
    v: Literal["camwarden/v1"] = VERSION


class Ack(_Base, tag_field="type", tag="ack", kw_only=True, frozen=True):
    """Collector to agent: the listed seqs are stored; the agent may drop them from its outbox.

    A broker's PUBACK only says the broker took a message; some brokers lose queued messages
    (Mosquitto 2.0 drops an offline session's shared subscription on restart). So the agent
    keeps every message until the collector acknowledges it end to end, and republishes what
    stays unacknowledged. Acks are idempotent: a replayed ack only repeats a true statement.
    ``ranges`` are inclusive, sorted and disjoint.
    """

    agent_id: Name
    site: Name
    ranges: list[tuple[Seq, Seq]]
    issued_at: UtcTime
    v: Literal["camwarden/v1"] = VERSION

    def __post_init__(self) -> None:
        last = -1
        for low, high in self.ranges:
            if not last < low <= high:
                raise ValueError("ack ranges must be inclusive, sorted and disjoint")
            last = high


AgentMessage = Hello | StatusReport | Heartbeat | CommandResult | SurveyResult
CollectorMessage = Command | Ack
Message = AgentMessage | CollectorMessage

MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    "hello": Hello,
    "report": StatusReport,
    "heartbeat": Heartbeat,
    "cmd-result": CommandResult,
    "survey-result": SurveyResult,
    "command": Command,
    "ack": Ack,
}

_encoder = msgspec.json.Encoder()
_agent_decoder: msgspec.json.Decoder[AgentMessage] = msgspec.json.Decoder(AgentMessage)
_collector_decoder: msgspec.json.Decoder[CollectorMessage] = msgspec.json.Decoder(CollectorMessage)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` for the standard ``json`` module: refuse a key named twice."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for key in obj if keys.count(key) > 1)
        raise DuplicateKey(f"key {clean_text(twice, 80)!r} appears twice in one object")
    return obj


def _refuse_duplicate_keys(payload: bytes, message: Message) -> None:
    # what our own encoder writes (every agent and collector sends that) has one key per field;
    # if the payload is byte for byte the encoding of what was decoded, no key was named twice.
    # Re-encoding costs about a tenth of the decode; any other payload (an older peer that
    # leaves out a field added since, other spacing or order) gets the exact, slower check.
    if _encoder.encode(message) == payload:
        return
    try:
        json.loads(payload, object_pairs_hook=unique_object)
    except (ValueError, RecursionError) as exc:  # DuplicateKey, or a JSON limit of the stdlib
        raise SchemaViolation(str(exc)) from None


def decode_agent_message(payload: bytes) -> AgentMessage:
    """Strictly decode a verified agent payload; raise SchemaViolation with the reason."""
    try:
        message = _agent_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SchemaViolation(str(exc)) from exc
    _refuse_duplicate_keys(payload, message)
    return message


def decode_collector_message(payload: bytes) -> CollectorMessage:
    """Strictly decode a verified collector payload (command or ack)."""
    try:
        message = _collector_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SchemaViolation(str(exc)) from exc
    _refuse_duplicate_keys(payload, message)
    return message


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint, inclusive ranges covering ``seqs`` (for acks)."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def in_ranges(seq: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(low <= seq <= high for low, high in ranges)


def json_schema(kind: str) -> dict[str, object]:
    """The JSON Schema of one message type, as shipped in ``protocol/schemas/<kind>.json``.

    Descriptions come from the types' docstrings, cleaned as ``inspect.cleandoc`` does: msgspec
    0.23 started cleaning them itself, older releases kept the indentation, and the shipped
    schemas must not depend on which one is installed.
    """
    schema: dict[str, object] = msgspec.json.schema(MESSAGE_TYPES[kind])
    definitions = schema.get("$defs")
    for definition in definitions.values() if isinstance(definitions, dict) else ():
        if isinstance(definition.get("description"), str):
            definition["description"] = inspect.cleandoc(definition["description"])
    return schema
