"""Lockout-safe default-credential guessing (AUTH-01), as a pure state machine.

The caller owns the clock and the network; the planner only says what may happen next::

    plan = GuessPlan(candidates, interfaces, policy, budget=8, start=t0)
    while not isinstance(step := plan.next_step(), Done):
        if isinstance(step, Attempt):        # wait until step.not_before, then try once
            plan.record(step, outcome, at=time_it_was_sent)
        else:                                # Confirm: a real authenticated call with it
            plan.confirmed(step, ok)

Rules (baseline §5):

* at most one attempt per credential per interface; vendor defaults first, then generic ones;
* failures are counted across all interfaces (cameras often share one counter) and never more
  than ``threshold - 2`` of them fall inside any lockout window: attempts are spaced so that the
  oldest counted failure has left the window (plus a margin) before the next one. Without a known
  policy a conservative one is assumed: 3 failures in 30 s lock for 300 s, stricter than the
  Decision 724 default of 5 in 30 s. A threshold below 3 leaves no safe attempt: nothing is tried;
* an error (timeout, unreachable) counts as a failure, two in a row end the plan;
* the first sign of a lock ends the plan for good (the caller reports ``LockedOut``);
* an accepted login is only a hit once a real authenticated call with it succeeds (``Confirm``)
  and then the same interface and operation refuses a wrong password (a control attempt, paced
  and counted like any other): some cameras answer 200 to anything on one interface, which then
  is not used again; an interface that takes the wrong password too checks no login at all
  (``open``: reported by AUTH-10 / AUTH-08, never as a default password);
* the first confirmed hit ends the plan: the finding is made, more guessing adds only risk;
* the per-run ``budget`` caps the number of attempts, control attempts included (one is kept
  free for it: at most ``budget - 1`` guesses). It is what protects cameras whose counter
  never decays (it only resets on a successful login or a reboot): keep it below their threshold.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent.credentials.catalogue import DefaultCredential
from agent.vendors.models import Interface, LockoutPolicy


class Outcome(enum.Enum):
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    LOCKED = "locked"  # the camera signalled a lock (LockedOut)
    ERROR = "error"  # timeout, unreachable, bad response


@dataclass(frozen=True, slots=True)
class GuessLimits:
    """Assumed policy when the camera's is unknown, and the spacing margin."""

    threshold: int = 3
    window_s: float = 30.0
    lock_s: float = 300.0
    margin_s: float = 2.0  # added to the window; also at least 10 % of it
    max_consecutive_errors: int = 2


CONTROL_ID = "wrong-password"  # the entry id of control attempts in ``GuessPlan.attempts``


def wrong_password(credential: DefaultCredential) -> DefaultCredential:
    """``credential``'s username with a random password no camera ships with."""
    return DefaultCredential(CONTROL_ID, credential.username, f"cw-{secrets.token_urlsafe(12)}")


@dataclass(frozen=True, slots=True)
class Attempt:
    interface: Interface
    credential: DefaultCredential
    not_before: float  # earliest time (caller's monotonic clock) the attempt may be sent
    control: bool = False  # a wrong password that must be refused for a hit to count

    @property
    def username(self) -> str:
        return self.credential.username

    @property
    def password(self) -> str:
        return self.credential.password


@dataclass(frozen=True, slots=True)
class Confirm:
    interface: Interface
    credential: DefaultCredential


DoneReason = Literal["hit", "exhausted", "budget", "locked_out", "unreachable", "threshold_too_low"]


@dataclass(frozen=True, slots=True)
class Done:
    reason: DoneReason
    hit: Confirm | None = None


Step = Attempt | Confirm | Done


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    threshold: int
    window_s: float  # spacing window: the camera's (or assumed) window plus the margin

    @property
    def max_failures(self) -> int:
        return self.threshold - 2


def effective_policy(policy: LockoutPolicy | None, limits: GuessLimits) -> EffectivePolicy:
    """The policy to respect: the camera's when it states one, never laxer than the assumed
    window; a camera that says lockout is off is treated with the assumed policy anyway."""
    threshold, window = limits.threshold, limits.window_s
    if policy is not None and policy.enabled and policy.threshold is not None:
        threshold = policy.threshold
        window = max(policy.window_s or 0.0, limits.window_s)
    margin = max(limits.margin_s, 0.1 * window)
    return EffectivePolicy(threshold=threshold, window_s=window + margin)


@dataclass
class GuessPlan:
    candidates: Sequence[DefaultCredential]
    interfaces: Sequence[Interface]
    policy: LockoutPolicy | None
    budget: int
    start: float
    limits: GuessLimits = field(default_factory=GuessLimits)
    attempts: list[tuple[float, Interface, str, Outcome]] = field(default_factory=list)
    _queue: list[tuple[DefaultCredential, Interface]] = field(init=False)
    _pending: Attempt | Confirm | None = field(default=None, init=False)
    _done: Done | None = field(default=None, init=False)
    # interfaces that accepted a login which did not hold, and those that took a wrong password
    unreliable: set[Interface] = field(default_factory=set, init=False)
    open: set[Interface] = field(default_factory=set, init=False)
    _proving: Confirm | None = field(default=None, init=False)
    _errors: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.effective = effective_policy(self.policy, self.limits)
        self._queue = [(c, i) for c in self.candidates for i in dict.fromkeys(self.interfaces)]
        if self.effective.max_failures < 1:
            self._done = Done("threshold_too_low")

    def _earliest(self) -> float:
        # Every attempt counts as a failure here, accepted ones included: an acceptance that
        # fails confirmation may well have been counted by the camera.
        sent = [at for at, *_ in self.attempts]
        earliest = max([self.start, *sent])
        allowed = self.effective.max_failures
        if len(sent) >= allowed:
            earliest = max(earliest, sent[-allowed] + self.effective.window_s)
        return earliest

    def next_step(self) -> Step:
        if self._done is not None:
            return self._done
        if self._pending is not None:
            return self._pending
        self._queue = [(c, i) for c, i in self._queue if i not in self.unreliable]
        if not self._queue:
            self._done = Done("exhausted")
        elif len(self.attempts) + 1 >= self.budget:  # one kept for a hit's control attempt
            self._done = Done("budget")
        else:
            credential, interface = self._queue.pop(0)
            self._pending = Attempt(interface, credential, self._earliest())
            return self._pending
        return self._done

    def record(self, attempt: Attempt, outcome: Outcome, at: float) -> None:
        """Report what happened to ``attempt``, sent at time ``at`` (>= its ``not_before``)."""
        if attempt is not self._pending:
            raise ValueError("record() must answer the pending attempt")
        if at < attempt.not_before:
            raise ValueError("the attempt was sent before its not_before time")
        self.attempts.append((at, attempt.interface, attempt.credential.id, outcome))
        self._pending = None
        self._errors = self._errors + 1 if outcome is Outcome.ERROR else 0
        proving, self._proving = self._proving, None
        if outcome is Outcome.LOCKED:
            self._done = Done("locked_out")
        elif self._errors >= self.limits.max_consecutive_errors:
            self._done = Done("unreachable")
        elif proving is not None and outcome is Outcome.REJECTED:
            self._done = Done("hit", proving)
        elif proving is not None:  # the wrong password got in too, or no answer: no proof
            self.unreliable.add(attempt.interface)
            if outcome is Outcome.ACCEPTED:
                self.open.add(attempt.interface)
        elif outcome is Outcome.ACCEPTED:
            self._pending = Confirm(attempt.interface, attempt.credential)

    def confirmed(self, step: Confirm, ok: bool) -> None:
        """Report the authenticated call made for ``step``."""
        if step is not self._pending:
            raise ValueError("confirmed() must answer the pending confirmation")
        self._pending = None
        if ok:  # proven only once the same interface refuses a wrong password
            self._proving = step
            control = wrong_password(step.credential)
            self._pending = Attempt(step.interface, control, self._earliest(), control=True)
        else:
            self.unreliable.add(step.interface)
