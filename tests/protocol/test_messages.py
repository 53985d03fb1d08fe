from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import protocol
from protocol import (
    GENESIS,
    Command,
    Heartbeat,
    SchemaViolation,
    decode_agent_message,
    encode,
)
from protocol.messages import (
    MESSAGE_TYPES,
    Ack,
    decode_collector_message,
    in_ranges,
    json_schema,
    to_ranges,
)

SCHEMAS = Path(protocol.__file__).with_name("schemas")


def hb(**changes: object) -> Heartbeat:
    fields: dict[str, object] = {
        "agent_id": "pi-1",
        "site": "site-a",
        "seq": 5,
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC),
        "prev": GENESIS,
        "prev_seq": 0,
        "uptime_s": 1.5,
        "outbox_depth": 0,
        "cameras_known": 2,
    }
    fields.update(changes)
    return Heartbeat(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_shipped_schema_matches_the_types(kind: str) -> None:
    shipped = json.loads((SCHEMAS / f"{kind}.json").read_text())
    assert shipped == json_schema(kind), "run: python -m protocol"


def test_round_trip() -> None:
    message = hb()
    assert decode_agent_message(encode(message)) == message


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(seq=0), "$.seq"),
        (lambda d: d.update(prev="x" * 64), "$.prev"),
        (lambda d: d.update(agent_id="a/b"), "$.agent_id"),
        (lambda d: d.update(issued_at="2026-01-01T00:00:00"), "$.issued_at"),
        (lambda d: d.update(type="nope"), "type"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.pop("site"), "site"),
    ],
)
def test_strict_decoding_names_the_field(mutate: object, where: str) -> None:
    data = json.loads(encode(hb()))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SchemaViolation, match=None) as info:
        decode_agent_message(json.dumps(data).encode())
    assert where in str(info.value)


def test_invalid_utf8_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolation):
        decode_agent_message(b'{"type":"heartbeat","agent_id":"\xff"}')


def test_command_is_not_an_agent_message() -> None:
    command = {
        "type": "command",
        "command_id": "c1",
        "agent_id": "pi-1",
        "site": "s",
        "action": "audit.run",
        "issued_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:10:00Z",
        "nonce": "n" * 22,
    }
    raw = json.dumps(command).encode()
    decoded = decode_collector_message(raw)
    assert isinstance(decoded, Command)
    assert decoded.action == "audit.run"
    with pytest.raises(SchemaViolation):
        decode_agent_message(raw)


def test_ack_ranges_round_trip() -> None:
    ranges = to_ranges([5, 1, 2, 3, 9, 10, 3])
    assert ranges == [(1, 3), (5, 5), (9, 10)]
    assert [s for s in range(12) if in_ranges(s, ranges)] == [1, 2, 3, 5, 9, 10]
    ack = Ack(agent_id="pi-1", site="s", ranges=ranges, issued_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert decode_collector_message(encode(ack)) == ack
    with pytest.raises(SchemaViolation):
        decode_collector_message(encode(ack).replace(b"[1,3]", b"[0,3]"))


@pytest.mark.parametrize(
    "ranges", [b"[[3,1]]", b"[[5,6],[1,2]]", b"[[1,3],[3,4]]", b"[[1,1],[1,1]]"]
)
def test_ack_ranges_must_be_inclusive_sorted_and_disjoint(ranges: bytes) -> None:
    ack = Ack(agent_id="a", site="s", ranges=[(1, 1)], issued_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(SchemaViolation, match="sorted and disjoint"):
        decode_collector_message(encode(ack).replace(b"[[1,1]]", ranges))
    with pytest.raises(ValueError, match="sorted and disjoint"):
        Ack(agent_id="a", site="s", ranges=[(3, 1)], issued_at=ack.issued_at)


def test_a_key_named_twice_is_a_schema_violation_at_any_depth() -> None:
    canonical = encode(hb())
    assert decode_agent_message(canonical) == hb()
    twice_top = canonical[:-1] + b',"seq":6}'
    with pytest.raises(SchemaViolation, match="'seq' appears twice"):
        decode_agent_message(twice_top)
    result = (
        b'{"type":"cmd-result","agent_id":"pi-1","site":"s","seq":2,'
        b'"issued_at":"2026-01-01T00:00:00Z","prev":"' + GENESIS.encode() + b'","prev_seq":0,'
        b'"command_id":"c1","status":"failed","details":{"step":"a","step":"b"}}'
    )
    with pytest.raises(SchemaViolation, match="'step' appears twice"):
        decode_agent_message(result)
    ack = encode(
        Ack(agent_id="pi-1", site="s", ranges=[(1, 2)], issued_at=datetime(2026, 1, 1, tzinfo=UTC))
    )
    with pytest.raises(SchemaViolation, match="appears twice"):
        decode_collector_message(ack[:-1] + b',"agent_id":"pi-2"}')


def test_payloads_in_another_spelling_without_a_repeated_key_still_decode() -> None:
    """Not our encoder's bytes (spacing, order, a defaulted field left out by an older peer):
    the exact check runs and lets them through."""
    fields = json.loads(encode(hb()))
    spaced = json.dumps(fields, indent=1).encode()
    reordered = json.dumps(dict(reversed(fields.items()))).encode()
    older = json.dumps({k: v for k, v in fields.items() if k != "v"}).encode()
    for payload in (spaced, reordered, older):
        assert payload != encode(hb())
        assert decode_agent_message(payload) == hb()
