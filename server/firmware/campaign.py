"""The rollout campaign state machine: pure functions over frozen values, no I/O, time injected.

Phases::

    awaiting_approval --approve--> canary                  (a planned rollout, e.g. a remediation)
    canary --(canary targets all finished)--> awaiting_promotion --promote--> rolling
    rolling --(batch finished)--> rolling (next batch) ... --(last batch finished)--> completed
    canary | rolling --(failures since start/resume >= threshold)--> paused      (actor: system)
    awaiting_approval | canary | awaiting_promotion | rolling | paused --halt--> halted
                                                                                 (an operator)
    paused | halted --resume--> the phase they interrupted (failure count reset)

Targets go ``pending -> in_flight -> succeeded | failed`` exactly once (a timeout past the
command's deadline is a failure). A target is dispatched only while the campaign is in
``canary`` (stage 0) or ``rolling`` (the current stage), inside its site's maintenance window,
and while its site has fewer than ``max_parallel_per_site`` targets in flight. The scheduler
(``server.firmware.scheduler``) persists the values and turns dispatches into signed commands;
``tests/firmware/test_campaign.py`` checks the invariants with hypothesis.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, Literal

Phase = Literal[
    "awaiting_approval", "canary", "awaiting_promotion", "rolling", "paused", "halted", "completed"
]
TargetState = Literal["pending", "in_flight", "succeeded", "failed"]
PHASES: Final[tuple[Phase, ...]] = (
    "awaiting_approval",
    "canary",
    "awaiting_promotion",
    "rolling",
    "paused",
    "halted",
    "completed",
)
DISPATCHING: Final = frozenset({"canary", "rolling"})
FINISHED: Final = frozenset({"succeeded", "failed"})
SYSTEM: Final = "system"


class NotAllowed(Exception):
    """The operator action does not apply to the campaign's phase."""


@dataclass(frozen=True, slots=True)
class Window:
    """A daily maintenance window in the site's local time (``utc_offset_min`` from UTC).

    ``start == end`` means all day; ``start > end`` crosses midnight.
    """

    start: time
    end: time
    utc_offset_min: int = 0

    def contains(self, now: datetime) -> bool:
        local = (now.astimezone(UTC) + timedelta(minutes=self.utc_offset_min)).time()
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


_WINDOW: Final = re.compile(r"^([^=]+)=(\d\d:\d\d)-(\d\d:\d\d)(?:@([+-]?\d{1,4}))?$")


def parse_window(text: str) -> tuple[str, Window]:
    """``SITE=HH:MM-HH:MM[@offset minutes]``, local time of the site (default UTC+7): the
    command line's and the plan form's notation. ``ValueError`` if it is not one."""
    m = _WINDOW.match(text.strip())
    if not m:
        raise ValueError(f"expected SITE=HH:MM-HH:MM[@MINUTES], got {text[:80]!r}")
    start, end = time.fromisoformat(m.group(2)), time.fromisoformat(m.group(3))
    return m.group(1), Window(start, end, int(m.group(4) or 420))


@dataclass(frozen=True, slots=True)
class Policy:
    canary: int  # cameras in stage 0 (see canary_size)
    batch_size: int
    max_parallel_per_site: int
    failure_threshold: int  # failures since start or resume that pause the campaign
    command_ttl: timedelta
    windows: Mapping[str, Window] = field(default_factory=dict)  # site -> window; none: any time

    def __post_init__(self) -> None:
        for name in ("canary", "batch_size", "max_parallel_per_site", "failure_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.command_ttl <= timedelta(0):
            raise ValueError("command_ttl must be positive")

    def open(self, site: str, now: datetime) -> bool:
        window = self.windows.get(site)
        return window is None or window.contains(now)


@dataclass(frozen=True, slots=True)
class Target:
    agent_id: str
    camera_id: str
    site: str
    stage: int
    state: TargetState = "pending"
    deadline: datetime | None = None
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.agent_id, self.camera_id)


@dataclass(frozen=True, slots=True)
class Campaign:
    phase: Phase
    stage: int
    targets: tuple[Target, ...]
    policy: Policy
    failures: int = 0
    resume_to: Phase | None = None

    @property
    def last_stage(self) -> int:
        return max(t.stage for t in self.targets)

    def in_flight(self) -> Counter[str]:
        return Counter(t.site for t in self.targets if t.state == "in_flight")

    def counts(self) -> Counter[str]:
        return Counter(t.state for t in self.targets)


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded step: what happened and who did or approved it."""

    action: str
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transition:
    campaign: Campaign
    dispatched: tuple[Target, ...] = ()
    events: tuple[Event, ...] = ()


def canary_size(total: int, count: int | None = None, percent: float | None = None) -> int:
    """How many cameras the canary stage holds: a count, or a percentage rounded up; >= 1."""
    if total < 1:
        raise ValueError("a campaign needs at least one target")
    if percent is not None and count is None:
        if not 0 < percent <= 100:
            raise ValueError("the canary percentage is in (0, 100]")
        wanted = math.ceil(total * percent / 100)
    elif count is not None and percent is None:
        if count < 1:
            raise ValueError("the canary holds at least one camera")
        wanted = count
    else:
        raise ValueError("give the canary as a count or as a percentage, not both")
    return min(max(wanted, 1), total)


def plan(
    cameras: Sequence[tuple[str, str, str]], policy: Policy, *, approved: bool = True
) -> Campaign:
    """Order ``(agent_id, camera_id, site)`` round-robin across sites (the canary then spans
    sites), put the first ``policy.canary`` into stage 0 and the rest in batches 1..n. A plan
    that is not ``approved`` waits in ``awaiting_approval`` and sends nothing until ``approve``."""
    if not cameras:
        raise ValueError("a campaign needs at least one target")
    by_site: dict[str, list[tuple[str, str, str]]] = {}
    for cam in sorted(set(cameras)):
        by_site.setdefault(cam[2], []).append(cam)
    ordered: list[tuple[str, str, str]] = []
    queues = [by_site[s] for s in sorted(by_site)]
    for depth in range(max(len(q) for q in queues)):
        ordered.extend(q[depth] for q in queues if depth < len(q))
    canary = min(policy.canary, len(ordered))
    targets = tuple(
        Target(a, c, s, 0 if i < canary else 1 + (i - canary) // policy.batch_size)
        for i, (a, c, s) in enumerate(ordered)
    )
    return Campaign("canary" if approved else "awaiting_approval", 0, targets, policy)


def _replace_target(c: Campaign, target: Target) -> Campaign:
    return replace(c, targets=tuple(target if t.key == target.key else t for t in c.targets))


def _evaluate(c: Campaign) -> tuple[Campaign, list[Event]]:
    """Automatic transitions: pause on too many failures, end of canary, next batch, done."""
    events: list[Event] = []
    if c.phase in DISPATCHING and c.failures >= c.policy.failure_threshold:
        events.append(Event("auto_pause", SYSTEM, {"failures": c.failures}))
        return replace(c, phase="paused", resume_to=c.phase), events
    while c.phase in DISPATCHING:
        current = [t for t in c.targets if t.stage == c.stage]
        if any(t.state not in FINISHED for t in current):
            break
        if c.phase == "canary":
            events.append(Event("canary_done", SYSTEM, dict(_tally(current))))
            c = replace(c, phase="awaiting_promotion")
        elif c.stage >= c.last_stage:
            events.append(Event("completed", SYSTEM, dict(c.counts())))
            c = replace(c, phase="completed")
        else:
            events.append(Event("batch_done", SYSTEM, {"stage": c.stage, **_tally(current)}))
            c = replace(c, stage=c.stage + 1)
    return c, events


def _tally(targets: Sequence[Target]) -> Counter[str]:
    return Counter(t.state for t in targets)


def tick(c: Campaign, now: datetime) -> Transition:
    """Time passes: expire overdue commands, advance, and dispatch what the limits allow."""
    events: list[Event] = []
    for t in c.targets:
        if t.state == "in_flight" and t.deadline is not None and t.deadline <= now:
            c = _replace_target(c, replace(t, state="failed", reason="timeout", deadline=None))
            c = replace(c, failures=c.failures + 1)
            events.append(Event("timeout", SYSTEM, {"agent_id": t.agent_id, "camera": t.camera_id}))
    c, more = _evaluate(c)
    events += more
    if c.phase not in DISPATCHING:
        return Transition(c, (), tuple(events))
    busy = c.in_flight()
    sent: list[Target] = []
    for t in c.targets:
        if t.stage != c.stage or t.state != "pending":
            continue
        if busy[t.site] >= c.policy.max_parallel_per_site or not c.policy.open(t.site, now):
            continue
        busy[t.site] += 1
        flying = replace(t, state="in_flight", deadline=now + c.policy.command_ttl)
        c = _replace_target(c, flying)
        sent.append(flying)
    return Transition(c, tuple(sent), tuple(events))


def record_result(
    c: Campaign, key: tuple[str, str], succeeded: bool, reason: str | None = None
) -> Transition:
    """A final result for a target in flight; anything else (late, duplicate) is ignored."""
    target = next((t for t in c.targets if t.key == key), None)
    if target is None or target.state != "in_flight":
        return Transition(c)
    state: TargetState = "succeeded" if succeeded else "failed"
    c = _replace_target(c, replace(target, state=state, deadline=None, reason=reason))
    if not succeeded:
        c = replace(c, failures=c.failures + 1)
    c, events = _evaluate(c)
    return Transition(c, (), tuple(events))


def approve(c: Campaign, actor: str) -> Transition:
    """The plan is approved: its canary starts at the next tick."""
    if c.phase != "awaiting_approval":
        raise NotAllowed(f"only a plan awaiting approval can be approved (it is {c.phase})")
    return Transition(replace(c, phase="canary"), (), (Event("approve", actor),))


def promote(c: Campaign, actor: str) -> Transition:
    if c.phase != "awaiting_promotion":
        raise NotAllowed(f"only a campaign awaiting promotion can be promoted (it is {c.phase})")
    c = replace(c, phase="rolling", stage=c.stage + 1)
    events = [Event("promote", actor)]
    if c.stage > c.last_stage:  # everything fitted in the canary
        events.append(Event("completed", SYSTEM, dict(c.counts())))
        return Transition(replace(c, phase="completed", stage=c.last_stage), (), tuple(events))
    c, more = _evaluate(c)
    return Transition(c, (), (*events, *more))


def halt(c: Campaign, actor: str) -> Transition:
    if c.phase in ("halted", "completed"):
        raise NotAllowed(f"the campaign is {c.phase}")
    resume_to = c.resume_to if c.phase == "paused" else c.phase
    return Transition(replace(c, phase="halted", resume_to=resume_to), (), (Event("halt", actor),))


def resume(c: Campaign, actor: str) -> Transition:
    if c.phase not in ("paused", "halted") or c.resume_to is None:
        raise NotAllowed(f"only a paused or halted campaign can be resumed (it is {c.phase})")
    c = replace(c, phase=c.resume_to, resume_to=None, failures=0)
    c, events = _evaluate(c)
    return Transition(c, (), (Event("resume", actor), *events))
