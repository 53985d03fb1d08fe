"""The pacer: units leave at the rate at most, in the order asked, whatever the number of tasks,
and a pause does not release a burst afterwards."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.survey.rate import Pacer, Rate


async def test_many_tasks_get_their_units_at_the_rate() -> None:
    pacer = Pacer(200.0)
    stamps: list[float] = []

    async def one() -> None:
        await pacer.take()
        stamps.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(60)))
    assert pacer.sent == 60
    assert stamps[-1] - began >= 59 / 200 - 0.01
    assert stamps == sorted(stamps)


async def test_an_idle_pacer_releases_no_burst() -> None:
    rate = Rate.of(1000.0, 100.0)
    await rate.connect()
    await asyncio.sleep(0.2)  # idle: no credit is saved up
    began = time.monotonic()
    for _ in range(11):
        await rate.connect(requests=1)
    assert time.monotonic() - began >= 10 / 100 - 0.01
    assert (rate.connections.sent, rate.packets.sent) == (12, 1 + 11 * 2)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0.0)
