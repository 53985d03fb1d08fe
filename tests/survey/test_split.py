"""The pure part of a provider's survey: which prefixes are accepted, and shards that cover the
prefixes with no gap and no overlap however many agents share them."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.survey_plan import (
    MAX_SHARDS,
    Network,
    PrefixRejected,
    assign,
    check_prefix,
    eta,
    overlapping,
    silent,
    split,
)


def addresses(blocks: list[Network]) -> list[int]:
    return [int(a) for b in blocks for a in (b.network_address, b.broadcast_address)]


def covered(shards_blocks: list[Network]) -> set[tuple[int, int]]:
    return {(b.version, int(a)) for b in shards_blocks for a in b}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("198.51.100.0", "prefix_syntax"),  # an address, not a prefix
        ("198.51.100.1/24", "prefix_syntax"),  # host bits set
        ("198.51.100.0/33", "prefix_syntax"),
        ("camera.example/24", "prefix_syntax"),
        ("127.0.0.0/8", "prefix_loopback"),
        ("::1/128", "prefix_loopback"),
        ("224.0.0.0/24", "prefix_multicast"),
        ("ff02::/120", "prefix_multicast"),
        ("169.254.0.0/16", "prefix_link_local"),
        ("0.0.0.0/32", "prefix_unspecified"),
        ("240.0.0.0/24", "prefix_reserved"),
        ("14.0.0.0/8", "prefix_too_big"),
        ("2001:db8::/64", "prefix_too_big"),
    ],
)
def test_prefixes_that_cannot_be_surveyed_are_named(text: str, code: str) -> None:
    with pytest.raises(PrefixRejected) as caught:
        check_prefix(text)
    assert caught.value.code == code


def test_a_held_prefix_is_accepted_and_overlaps_are_found() -> None:
    net = check_prefix(" 198.51.100.0/24 ")
    assert str(net) == "198.51.100.0/24"
    assert str(check_prefix("2001:db8::/112")) == "2001:db8::/112"
    declared = [check_prefix(p) for p in ("198.51.0.0/16", "203.0.113.0/24", "2001:db8::/120")]
    assert overlapping(net, declared) == [declared[0]]
    assert overlapping(check_prefix("203.0.114.0/24"), declared) == []


def test_two_agents_share_one_range_with_no_gap_and_no_overlap() -> None:
    prefixes = [check_prefix("198.51.100.0/24"), check_prefix("203.0.113.0/25")]
    shards = split(prefixes, shard_max=100)
    assert [s.addresses for s in shards] == [96, 96, 96, 96]  # 384 addresses, even shards
    assert str(shards[0].blocks[0]) == "198.51.100.0/26"
    assert [str(b) for b in shards[2].blocks] == ["198.51.100.192/26", "203.0.113.0/27"]
    owners = assign([s.addresses for s in shards], ["agent-1", "agent-2"], {})
    assert owners == {0: "agent-1", 1: "agent-2", 2: "agent-1", 3: "agent-2"}
    by_agent: dict[str, list[Network]] = {}
    for s in shards:
        by_agent.setdefault(owners[s.position], []).extend(s.blocks)
    one, two = covered(by_agent["agent-1"]), covered(by_agent["agent-2"])
    assert not one & two
    assert one | two == covered(prefixes)


def test_assignment_fills_the_least_loaded_agent_first() -> None:
    assert assign([10, 10], ["a", "b"], {"a": 15}) == {0: "b", 1: "b"}
    with pytest.raises(ValueError, match="no survey agent"):
        assign([10], [], {})


_V4 = st.builds(
    lambda base, length: ipaddress.ip_network((base >> (32 - length) << (32 - length), length)),
    st.integers(0x0B000000, 0xDF000000),  # 11.0.0.0 .. 223.0.0.0
    st.integers(20, 32),
)


@settings(max_examples=60, deadline=None)
@given(prefixes=st.lists(_V4, min_size=1, max_size=4), shard_max=st.integers(1, 5000))
def test_shards_cover_every_address_exactly_once(prefixes: list[Network], shard_max: int) -> None:
    shards = split(prefixes, shard_max)
    wanted = covered(prefixes)
    seen: list[tuple[int, int]] = [(b.version, int(a)) for s in shards for b in s.blocks for a in b]
    assert len(seen) == len(set(seen)) == len(wanted)  # no overlap
    assert set(seen) == wanted  # no gap
    assert len(shards) <= MAX_SHARDS
    sizes = [s.addresses for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert all(s.addresses == sum(b.num_addresses for b in s.blocks) for s in shards)
    if len(wanted) <= shard_max * MAX_SHARDS:
        assert max(sizes) <= shard_max


def test_silence_and_time_left() -> None:
    now = datetime(2026, 12, 7, 10, tzinfo=UTC)
    assert silent(None, now, timedelta(minutes=15))
    assert silent(now - timedelta(minutes=15), now, timedelta(minutes=15))
    assert not silent(now - timedelta(minutes=14), now, timedelta(minutes=15))
    started = now - timedelta(minutes=10)
    assert eta(0, 100, started, now) is None
    assert eta(25, 100, started, now) == timedelta(minutes=30)
    assert eta(100, 100, started, now) == timedelta(0)
