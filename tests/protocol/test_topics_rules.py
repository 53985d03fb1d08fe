from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol import (
    GENESIS,
    BrokenChain,
    Freshness,
    MisaddressedMessage,
    StaleMessage,
    check_issued_at,
    check_link,
    collector_subscriptions,
    parse,
    topic,
)
from protocol.topics import Topic

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_topic_round_trip() -> None:
    name = topic("hanoi-hq", "pi-01", "report")
    assert name == "camwarden/v1/hanoi-hq/pi-01/report"
    assert parse(name) == Topic("hanoi-hq", "pi-01", "report")


@pytest.mark.parametrize(
    "name",
    [
        "camwarden/v2/s/a/report",
        "camwarden/v1/s/a/other",
        "camwarden/v1/s/+/report",
        "camwarden/v1/s/a/report/x",
        "x",
    ],
)
def test_bad_topics(name: str) -> None:
    with pytest.raises(MisaddressedMessage):
        parse(name)


@pytest.mark.parametrize("level", ["a/b", "+", "#", "$SYS", ""])
def test_topic_levels_cannot_inject_wildcards(level: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic level"):
        topic(level, "agent", "report")


def test_collector_uses_shared_subscriptions() -> None:
    subs = collector_subscriptions()
    assert "$share/collectors/camwarden/v1/+/+/report" in subs
    assert all(s.startswith("$share/collectors/") for s in subs)
    assert collector_subscriptions("ops-7f3a")[0] == "$share/ops-7f3a/camwarden/v1/+/+/report"


@pytest.mark.parametrize("group", ["a/b", "+", "#", ""])
def test_share_group_is_one_plain_topic_level(group: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic level"):
        collector_subscriptions(group)


def test_freshness_window() -> None:
    rules = Freshness(max_clock_skew=timedelta(minutes=5), max_age=timedelta(days=30))
    check_issued_at(NOW - timedelta(days=29), NOW, rules)  # buffered through an outage: fine
    check_issued_at(NOW + timedelta(minutes=4), NOW, rules)
    with pytest.raises(StaleMessage):
        check_issued_at(NOW + timedelta(minutes=6), NOW, rules)
    with pytest.raises(StaleMessage):
        check_issued_at(NOW - timedelta(days=31), NOW, rules)


def test_chain_links() -> None:
    check_link(GENESIS, 0, 1, None)
    check_link("a" * 64, 3, 7, "a" * 64)
    check_link("a" * 64, 3, 7, None)  # predecessor not arrived yet: checked when it does
    with pytest.raises(BrokenChain):
        check_link("a" * 64, 3, 7, "b" * 64)
    with pytest.raises(BrokenChain):
        check_link("a" * 64, 0, 1, None)
    with pytest.raises(BrokenChain):
        check_link(GENESIS, 5, 5, None)
