"""The per-address token bucket of the anonymous API, on an injected clock."""

from __future__ import annotations

from server.domain.throttle import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bursts_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # one every 10 s, bursts of 6
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == 10.0
    assert limiter.take("b") == 0.0  # another address: its own bucket
    clock.now = 10.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 10.0
    clock.now = 1000.0
    assert [limiter.take("a") for _ in range(7)].count(0.0) == 6  # never more than a burst


def test_tracks_a_bounded_number_of_addresses() -> None:
    clock = Clock()
    limiter = RateLimiter(1, max_sources=3, clock=clock)
    for address in ("a", "b", "c", "d"):
        assert limiter.take(address) == 0.0
    assert len(limiter._buckets) == 3  # "a", the longest idle, is forgotten
    assert limiter.take("a") == 0.0  # ... and starts again with one full burst only
    assert limiter.take("a") > 0.0
