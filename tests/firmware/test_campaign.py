"""The campaign state machine, exhaustively: hypothesis drives random operator actions, agent
results and clock moves, and every invariant of ``server.firmware.campaign`` is checked after
each step."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from server.firmware.campaign import (
    DISPATCHING,
    FINISHED,
    Campaign,
    NotAllowed,
    Policy,
    Target,
    Window,
    canary_size,
    halt,
    plan,
    promote,
    record_result,
    resume,
    tick,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
SITES = ("hn-1", "hn-2", "hcm-1", "dn-1")


def cameras(n: int, sites: int) -> list[tuple[str, str, str]]:
    return [(f"agent-{i % sites}", f"cam-{i}", SITES[i % sites]) for i in range(n)]


def policy(**kw: object) -> Policy:
    base: dict[str, object] = {
        "canary": 2,
        "batch_size": 3,
        "max_parallel_per_site": 2,
        "failure_threshold": 2,
        "command_ttl": timedelta(minutes=30),
    }
    base.update(kw)
    return Policy(**base)  # type: ignore[arg-type]


# -- examples ----------------------------------------------------------------------------------


def test_canary_size_count_and_percent() -> None:
    assert canary_size(100, count=5) == 5
    assert canary_size(100, percent=2.5) == 3
    assert canary_size(3, count=10) == 3
    assert canary_size(7, percent=1) == 1
    for bad in ({"count": 0}, {"percent": 0.0}, {"percent": 101.0}, {}, {"count": 1, "percent": 5}):
        with pytest.raises(ValueError, match="canary"):
            canary_size(10, **bad)
    with pytest.raises(ValueError, match="target"):
        canary_size(0, count=1)


def test_plan_spreads_the_canary_across_sites_then_batches() -> None:
    c = plan(cameras(10, 2), policy(canary=2, batch_size=3))
    canary = [t for t in c.targets if t.stage == 0]
    assert {t.site for t in canary} == {"hn-1", "hn-2"}
    assert [sum(1 for t in c.targets if t.stage == s) for s in range(4)] == [2, 3, 3, 2]
    with pytest.raises(ValueError, match="target"):
        plan([], policy())


def test_window_inside_outside_and_across_midnight() -> None:
    night = Window(time(22, 0), time(4, 0), utc_offset_min=420)  # 22:00-04:00 at UTC+7
    assert night.contains(datetime(2026, 3, 2, 15, 30, tzinfo=UTC))  # 22:30 local
    assert night.contains(datetime(2026, 3, 2, 20, 59, tzinfo=UTC))  # 03:59 local
    assert not night.contains(datetime(2026, 3, 2, 21, 0, tzinfo=UTC))  # 04:00 local
    assert Window(time(1, 0), time(1, 0)).contains(T0)
    assert not Window(time(1, 0), time(2, 0)).contains(T0)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        policy(batch_size=0)
    with pytest.raises(ValueError, match="command_ttl"):
        policy(command_ttl=timedelta(0))


def test_a_happy_campaign_from_canary_to_completed() -> None:
    c = plan(cameras(5, 1), policy(canary=1, batch_size=2, max_parallel_per_site=5))
    step = tick(c, T0)
    assert [t.camera_id for t in step.dispatched] == [step.dispatched[0].camera_id]
    c = record_result(step.campaign, step.dispatched[0].key, True).campaign
    assert c.phase == "awaiting_promotion"
    assert tick(c, T0).dispatched == ()
    moved = promote(c, "alice")
    assert moved.events[0].actor == "alice"
    c = moved.campaign
    while c.phase != "completed":
        step = tick(c, T0)
        c = step.campaign
        for t in step.dispatched:
            c = record_result(c, t.key, True).campaign
    assert c.counts() == {"succeeded": 5}


def test_failures_pause_and_resume_resets_the_count() -> None:
    c = plan(cameras(6, 1), policy(canary=3, failure_threshold=2, max_parallel_per_site=3))
    step = tick(c, T0)
    c = record_result(step.campaign, step.dispatched[0].key, False, "flash failed").campaign
    assert c.phase == "canary"
    step2 = record_result(c, step.dispatched[1].key, False, "flash failed")
    assert step2.campaign.phase == "paused"
    assert step2.events[-1].action == "auto_pause"
    assert step2.events[-1].actor == "system"
    c = resume(step2.campaign, "bob").campaign
    assert (c.phase, c.failures) == ("canary", 0)
    c = record_result(c, step.dispatched[2].key, True).campaign
    assert c.phase == "awaiting_promotion"


def test_timeouts_fail_targets_and_late_results_are_ignored() -> None:
    c = plan(cameras(2, 1), policy(canary=2, failure_threshold=5))
    step = tick(c, T0)
    late = tick(step.campaign, T0 + timedelta(minutes=31))
    assert late.campaign.counts() == {"failed": 2}
    assert {e.action for e in late.events} >= {"timeout", "canary_done"}
    assert record_result(late.campaign, step.dispatched[0].key, True).campaign == late.campaign


def test_operator_actions_refused_in_the_wrong_phase() -> None:
    c = plan(cameras(2, 1), policy())
    with pytest.raises(NotAllowed):
        promote(c, "a")
    with pytest.raises(NotAllowed):
        resume(c, "a")
    halted = halt(c, "a").campaign
    with pytest.raises(NotAllowed):
        halt(halted, "a")
    assert resume(halted, "a").campaign.phase == "canary"


def test_promoting_a_canary_only_campaign_completes_it() -> None:
    c = plan(cameras(1, 1), policy(canary=1))
    step = tick(c, T0)
    c = record_result(step.campaign, step.dispatched[0].key, True).campaign
    done = promote(c, "a").campaign
    assert done.phase == "completed"
    with pytest.raises(NotAllowed):
        halt(done, "a")


# -- the state machine under random operation ---------------------------------------------------


class CampaignMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c: Campaign
        self.now = T0
        self.dispatched_ever: set[tuple[str, str]] = set()
        self.promoted = False

    @initialize(
        n=st.integers(1, 25),
        sites=st.integers(1, 4),
        canary=st.integers(1, 6),
        batch=st.integers(1, 6),
        parallel=st.integers(1, 3),
        threshold=st.integers(1, 4),
        windowed=st.booleans(),
    )
    def setup(
        self,
        *,
        n: int,
        sites: int,
        canary: int,
        batch: int,
        parallel: int,
        threshold: int,
        windowed: bool,
    ) -> None:
        windows = {"hn-1": Window(time(1, 0), time(3, 0))} if windowed else {}
        self.c = plan(
            cameras(n, sites),
            policy(
                canary=canary,
                batch_size=batch,
                max_parallel_per_site=parallel,
                failure_threshold=threshold,
                windows=windows,
            ),
        )
        self.initial = self.c

    def _apply_dispatch(self, dispatched: tuple[Target, ...], before: Campaign) -> None:
        for t in dispatched:
            assert before.phase in DISPATCHING
            assert t.key not in self.dispatched_ever, "a target is dispatched once"
            assert t.stage == self.c.stage
            assert self.c.policy.open(t.site, self.now), "dispatched outside its window"
            if t.stage > 0:
                assert self.promoted, "batches only after a promotion"
            earlier = [x for x in self.c.targets if x.stage < t.stage]
            assert all(x.state in FINISHED for x in earlier), "stages run in order"
            self.dispatched_ever.add(t.key)

    @rule(minutes=st.integers(0, 90))
    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        before = self.c
        step = tick(self.c, self.now)
        self.c = step.campaign
        self._apply_dispatch(step.dispatched, before)

    @precondition(lambda self: any(t.state == "in_flight" for t in self.c.targets))
    @rule(data=st.data(), ok=st.booleans())
    def result(self, data: st.DataObject, ok: bool) -> None:
        flying = [t for t in self.c.targets if t.state == "in_flight"]
        target = data.draw(st.sampled_from(flying))
        failures = self.c.failures
        self.c = record_result(self.c, target.key, ok, None if ok else "boom").campaign
        assert self.c.failures == failures + (0 if ok else 1)

    @rule(data=st.data())
    def stray_result(self, data: st.DataObject) -> None:
        """Duplicates and results for targets not in flight change nothing."""
        idle = [t for t in self.c.targets if t.state != "in_flight"]
        if idle:
            target = data.draw(st.sampled_from(idle))
            assert record_result(self.c, target.key, False).campaign == self.c

    @rule()
    def promote(self) -> None:
        try:
            self.c = promote(self.c, "op").campaign
            self.promoted = True
        except NotAllowed:
            pass

    @rule()
    def halt(self) -> None:
        try:
            self.c = halt(self.c, "op").campaign
        except NotAllowed:
            assert self.c.phase in ("halted", "completed")

    @rule()
    def resume(self) -> None:
        try:
            self.c = resume(self.c, "op").campaign
        except NotAllowed:
            assert self.c.phase not in ("paused", "halted")

    @invariant()
    def site_caps_hold(self) -> None:
        cap = self.c.policy.max_parallel_per_site
        assert all(n <= cap for n in self.c.in_flight().values())

    @invariant()
    def targets_are_kept(self) -> None:
        assert [t.key for t in self.c.targets] == [t.key for t in self.initial.targets]
        assert [t.stage for t in self.c.targets] == [t.stage for t in self.initial.targets]

    @invariant()
    def in_flight_only_after_dispatch(self) -> None:
        started = {t.key for t in self.c.targets if t.state != "pending"}
        assert started == self.dispatched_ever

    @invariant()
    def too_many_failures_stop_dispatching(self) -> None:
        if self.c.failures >= self.c.policy.failure_threshold:
            assert self.c.phase not in DISPATCHING

    @invariant()
    def completed_means_all_finished(self) -> None:
        if self.c.phase == "completed":
            assert all(t.state in FINISHED for t in self.c.targets)

    @invariant()
    def resume_to_set_exactly_when_interrupted(self) -> None:
        assert (self.c.resume_to is not None) == (self.c.phase in ("paused", "halted"))


CampaignMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
test_campaign_machine = CampaignMachine.TestCase


@settings(max_examples=200)
@given(
    n=st.integers(1, 40),
    sites=st.integers(1, 4),
    canary=st.integers(1, 10),
    batch=st.integers(1, 10),
    parallel=st.integers(1, 4),
)
def test_liveness_all_success_with_one_promotion_completes(
    *, n: int, sites: int, canary: int, batch: int, parallel: int
) -> None:
    c = plan(
        cameras(n, sites),
        policy(canary=canary, batch_size=batch, max_parallel_per_site=parallel),
    )
    for _ in range(4 * n + 4):
        if c.phase == "awaiting_promotion":
            c = promote(c, "op").campaign
        step = tick(c, T0)
        c = step.campaign
        for t in step.dispatched:
            c = record_result(c, t.key, True).campaign
        if c.phase == "completed":
            break
    assert c.phase == "completed"
    assert c.counts() == {"succeeded": n}
