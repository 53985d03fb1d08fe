from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.credentials.catalogue import DefaultCredential, candidates, load_catalogue
from agent.credentials.planner import (
    Attempt,
    Confirm,
    Done,
    GuessLimits,
    GuessPlan,
    Outcome,
    effective_policy,
)
from agent.vendors.models import Interface, LockoutPolicy

CREDS = [DefaultCredential(f"dc-{i:03d}", "admin", f"pw{i}", ("hikvision",)) for i in range(12)]
ALL = [Interface.HTTP, Interface.RTSP, Interface.ONVIF, Interface.SDK]


def _drive(
    plan: GuessPlan, outcomes: list[Outcome], delays: list[float], confirms: list[bool]
) -> Done:
    """Run the plan like a caller would, sending each attempt ``delay`` after it is allowed."""
    index = 0
    while True:
        step = plan.next_step()
        if isinstance(step, Done):
            return step
        if isinstance(step, Confirm):
            plan.confirmed(step, confirms[index % len(confirms)])
            continue
        outcome = outcomes[index % len(outcomes)]
        plan.record(step, outcome, at=step.not_before + delays[index % len(delays)])
        index += 1


def _camera_window(policy: LockoutPolicy | None, limits: GuessLimits) -> tuple[int, float]:
    if policy is not None and policy.enabled and policy.threshold is not None:
        return policy.threshold, policy.window_s or limits.window_s
    return limits.threshold, limits.window_s


policies = st.one_of(
    st.none(),
    st.builds(
        LockoutPolicy,
        enabled=st.sampled_from([True, False, None]),
        threshold=st.one_of(st.none(), st.integers(1, 10)),
        window_s=st.one_of(st.none(), st.floats(1, 600)),
        lock_s=st.one_of(st.none(), st.floats(1, 3600)),
    ),
)


@settings(max_examples=400, deadline=timedelta(seconds=2))
@given(
    policy=policies,
    interfaces=st.lists(st.sampled_from(ALL), min_size=1, max_size=6),
    count=st.integers(0, len(CREDS)),
    budget=st.integers(0, 40),
    outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=30),
    delays=st.lists(st.floats(0, 100), min_size=1, max_size=30),
    confirms=st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_no_schedule_exceeds_the_threshold_inside_a_window(  # noqa: PLR0917 (hypothesis)
    policy: LockoutPolicy | None,
    interfaces: list[Interface],
    count: int,
    budget: int,
    outcomes: list[Outcome],
    delays: list[float],
    confirms: list[bool],
) -> None:
    limits = GuessLimits()
    plan = GuessPlan(CREDS[:count], interfaces, policy, budget=budget, start=1000.0)
    done = _drive(plan, outcomes, delays, confirms)
    threshold, window = _camera_window(policy, limits)
    times = [at for at, *_ in plan.attempts]
    # every failure the camera could count, inside any closed window of its length
    for t in times:
        assert sum(1 for u in times if t <= u <= t + window) <= max(threshold - 2, 0)
    pairs = [(iface, cred) for _, iface, cred, _ in plan.attempts]
    assert len(pairs) == len(set(pairs))
    assert len(plan.attempts) <= budget
    assert times == sorted(times)
    if any(outcome is Outcome.LOCKED for *_, outcome in plan.attempts):
        assert plan.attempts[-1][3] is Outcome.LOCKED
        assert done.reason == "locked_out"
    if threshold < 3:
        assert plan.attempts == []


def test_vendor_defaults_come_first_then_generic() -> None:
    order = [c.id for c in candidates(load_catalogue(), "HIKVISION")]
    catalogue = {c.id: c for c in load_catalogue()}
    first = catalogue[order[0]]
    assert (first.username, first.password) == ("admin", "12345")
    assert all(catalogue[i].generic for i in order[1:])
    assert all("bosch" not in catalogue[i].vendors or catalogue[i].generic for i in order)


def test_unknown_vendor_gets_generic_only() -> None:
    assert all(c.generic for c in candidates(load_catalogue(), None))


def test_schedule_spaces_attempts_beyond_the_window() -> None:
    plan = GuessPlan(CREDS[:3], [Interface.HTTP], None, budget=10, start=0.0)
    first = plan.next_step()
    assert isinstance(first, Attempt)
    assert first.not_before == 0.0
    plan.record(first, Outcome.REJECTED, at=0.0)
    second = plan.next_step()
    assert isinstance(second, Attempt)
    assert second.not_before == 33.0  # assumed 3 in 30 s: one failure per 30 s + 10 % margin
    plan.record(second, Outcome.REJECTED, at=40.0)
    third = plan.next_step()
    assert isinstance(third, Attempt)
    assert third.not_before == 73.0


def test_known_policy_allows_threshold_minus_two_per_window() -> None:
    policy = LockoutPolicy(enabled=True, threshold=5, window_s=30, lock_s=300)
    assert effective_policy(policy, GuessLimits()).max_failures == 3
    plan = GuessPlan(CREDS, [Interface.HTTP], policy, budget=10, start=0.0)
    times = []
    for _ in range(4):
        step = plan.next_step()
        assert isinstance(step, Attempt)
        times.append(step.not_before)
        plan.record(step, Outcome.REJECTED, at=step.not_before)
    assert times == [0.0, 0.0, 0.0, 33.0]


def test_lock_stops_everything() -> None:
    plan = GuessPlan(CREDS, ALL, None, budget=50, start=0.0)
    step = plan.next_step()
    assert isinstance(step, Attempt)
    plan.record(step, Outcome.LOCKED, at=0.0)
    assert plan.next_step() == Done("locked_out")
    assert plan.next_step() == Done("locked_out")


def test_hit_needs_confirmation() -> None:
    plan = GuessPlan(CREDS[:2], [Interface.HTTP, Interface.RTSP], None, budget=50, start=0.0)
    step = plan.next_step()
    assert isinstance(step, Attempt)
    plan.record(step, Outcome.ACCEPTED, at=0.0)
    confirm = plan.next_step()
    assert confirm == Confirm(Interface.HTTP, CREDS[0])
    assert plan.next_step() is confirm  # still pending until answered
    plan.confirmed(confirm, ok=False)  # HTTP answered 200 to anything: not used again
    rest = []
    while isinstance(step := plan.next_step(), Attempt):
        rest.append((step.interface, step.credential.id))
        plan.record(step, Outcome.ACCEPTED, at=step.not_before)
        hit = plan.next_step()
        assert isinstance(hit, Confirm)
        plan.confirmed(hit, ok=True)
        control = plan.next_step()
        assert isinstance(control, Attempt)
        assert control.control
        plan.record(control, Outcome.REJECTED, at=control.not_before)
    assert rest == [(Interface.RTSP, "dc-000")]
    assert step == Done("hit", Confirm(Interface.RTSP, CREDS[0]))
    assert plan.unreliable == {Interface.HTTP}
    assert plan.open == set()


def test_a_hit_counts_only_when_a_wrong_password_is_refused() -> None:
    """The control attempt: same interface and username, a password no camera ships with,
    paced like any failure; a camera that takes it checks no login (``open``), no hit."""
    plan = GuessPlan(CREDS[:2], [Interface.ONVIF, Interface.RTSP], None, budget=50, start=0.0)
    first = plan.next_step()
    assert isinstance(first, Attempt)
    assert first.interface is Interface.ONVIF
    plan.record(first, Outcome.ACCEPTED, at=0.0)
    confirm = plan.next_step()
    assert isinstance(confirm, Confirm)
    plan.confirmed(confirm, ok=True)  # identify() answers too: an open ONVIF does
    control = plan.next_step()
    assert isinstance(control, Attempt)
    assert control.control
    assert control.interface is Interface.ONVIF
    assert control.username == CREDS[0].username
    assert control.password != CREDS[0].password
    assert control.credential.id == "wrong-password"
    assert control.not_before >= 0.0 + plan.effective.window_s  # a failure like any other
    plan.record(control, Outcome.ACCEPTED, at=control.not_before)
    assert plan.open == {Interface.ONVIF}
    step = plan.next_step()
    assert isinstance(step, Attempt)
    assert step.interface is Interface.RTSP
    plan.record(step, Outcome.REJECTED, at=step.not_before)
    while isinstance(step := plan.next_step(), Attempt):
        plan.record(step, Outcome.REJECTED, at=step.not_before)
    assert step == Done("exhausted")
    assert [e for _at, i, e, _o in plan.attempts if i is Interface.ONVIF] == [
        "dc-000",
        "wrong-password",
    ]


def test_errors_end_the_plan() -> None:
    plan = GuessPlan(CREDS, [Interface.HTTP], None, budget=50, start=0.0)
    done = _drive(plan, [Outcome.ERROR], [0.0], [True])
    assert done == Done("unreachable")
    assert len(plan.attempts) == 2


def test_budget_and_exhaustion() -> None:
    assert _drive(GuessPlan(CREDS, ALL, None, 3, 0.0), [Outcome.REJECTED], [0.0], [True]) == Done(
        "budget"
    )
    plan = GuessPlan(CREDS[:2], [Interface.HTTP, Interface.HTTP], None, 10, 0.0)
    assert _drive(plan, [Outcome.REJECTED], [0.0], [True]) == Done("exhausted")
    assert len(plan.attempts) == 2  # duplicate interfaces are tried once


def test_threshold_too_low_means_no_attempt() -> None:
    policy = LockoutPolicy(enabled=True, threshold=2)
    assert GuessPlan(CREDS, ALL, policy, 10, 0.0).next_step() == Done("threshold_too_low")


def test_protocol_misuse_is_refused() -> None:
    plan = GuessPlan(CREDS, [Interface.HTTP], None, 10, 0.0)
    step = plan.next_step()
    assert isinstance(step, Attempt)
    other = Attempt(Interface.HTTP, CREDS[5], 0.0)
    with pytest.raises(ValueError, match="pending attempt"):
        plan.record(other, Outcome.REJECTED, at=0.0)
    plan.record(step, Outcome.REJECTED, at=0.0)
    early = plan.next_step()
    assert isinstance(early, Attempt)
    with pytest.raises(ValueError, match="before its not_before"):
        plan.record(early, Outcome.REJECTED, at=early.not_before - 1)
    with pytest.raises(ValueError, match="pending confirmation"):
        plan.confirmed(Confirm(Interface.HTTP, CREDS[0]), ok=True)


def test_attempt_repr_hides_the_password() -> None:
    assert "pw1" not in repr(Attempt(Interface.HTTP, CREDS[1], 0.0))
