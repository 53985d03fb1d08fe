"""Account controls read from the camera, never probed: AUTH-02, AUTH-05, AUTH-12.

* AUTH-02 activation: ``Adapter.activated()`` (Hikvision ``/SDK/activateStatus``, pre-auth).
  Vendors that do not expose it: not_applicable. Never tested by writing (no ``CreateUsers``).
* AUTH-05 lockout policy: ``Adapter.lockout_policy()``. Fail when disabled, or weaker than the
  Decision 724 default of 5 failures in 30 s locking for 5 min (a higher threshold, a shorter
  lock, or a shorter counting window when the camera states one). A field the camera does not
  report is named in the evidence; without threshold or lock time the result is inconclusive,
  and so is a camera whose API does not expose the policy (Axis, generic ONVIF; it is a setting
  every camera has, so never "not applicable").
  Never measured by failing logins on purpose (baseline §5).
* AUTH-12 accounts: ``Adapter.accounts()`` with the configured credential, against the approved
  account list of the camera. An account not on the list fails (high when it is an
  administrator: a hidden or extra admin). Without a configured list only the agent's own
  account is approved, and only extra administrators fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence

from agent.checks.base import Check, CheckContext
from agent.checks.interfaces import adapter_of
from agent.vendors.base import Unsupported
from agent.vendors.models import Capability, LockoutPolicy
from protocol.messages import EvidenceValue, Finding

MAX_FAILURES = 5
MIN_WINDOW_S = 30.0
MIN_LOCK_S = 300.0
ADMIN_ROLES = frozenset({"administrator", "admin"})
MIN_SHOWN = 4  # the evidence guard's shortest secret refused inside a longer value


class ActivationCheck(Check):
    id = "activation"
    controls = ("AUTH-02",)
    requires = frozenset({Capability.IDENTITY})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        try:
            activated = await adapter.activated()
        except Unsupported:
            return [
                self.finding(
                    ctx,
                    "auth.activation_unknown",
                    "not_applicable",
                    "info",
                    reason="the vendor API does not report activation",
                    evidence={"vendor": adapter.vendor},
                )
            ]
        if activated:
            return [self.finding(ctx, "auth.activated", "pass", "info")]
        return [self.finding(ctx, "auth.not_activated", "fail", "critical")]


def lockout_weaknesses(policy: LockoutPolicy) -> list[str]:
    """How ``policy`` falls short of 5 failures / 30 s -> 5 min (empty: it does not)."""
    weak = []
    if policy.threshold is not None and policy.threshold > MAX_FAILURES:
        weak.append(f"locks after {policy.threshold} failures")
    if policy.lock_s is not None and policy.lock_s < MIN_LOCK_S:
        weak.append(f"locks for {policy.lock_s:.0f} s")
    if policy.window_s is not None and policy.window_s < MIN_WINDOW_S:
        weak.append(f"counts failures over {policy.window_s:.0f} s")
    return weak


class LockoutPolicyCheck(Check):
    """Every camera has a lockout policy (or none, which fails): one the API does not expose is
    *unknown*, inconclusive with the reason, never not applicable."""

    id = "lockout-policy"
    controls = ("AUTH-05",)
    requires = frozenset({Capability.IDENTITY})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        policy: LockoutPolicy | None = None
        unread = f"the {adapter.vendor} API the agent speaks exposes no lockout policy"
        if adapter.supports(Capability.LOCKOUT_POLICY):
            unread = "the firmware does not report a lockout policy"
            with contextlib.suppress(Unsupported):  # no such setting on this firmware (404)
                policy = await adapter.lockout_policy()
        if policy is None:
            return [
                self.finding(
                    ctx,
                    "auth.lockout_unknown",
                    "inconclusive",
                    "info",
                    reason=unread,
                    evidence={"vendor": adapter.vendor},
                )
            ]
        evidence: dict[str, EvidenceValue] = {
            "enabled": policy.enabled,
            "threshold": policy.threshold,
            "window_s": policy.window_s,
            "lock_s": policy.lock_s,
        }
        if policy.enabled is False or policy.threshold == 0:
            return [self.finding(ctx, "auth.lockout_disabled", "fail", "high", evidence=evidence)]
        weak = lockout_weaknesses(policy)
        if weak:
            return [
                self.finding(
                    ctx,
                    "auth.lockout_weak",
                    "fail",
                    "high",
                    evidence={**evidence, "weakness": "; ".join(weak)},
                )
            ]
        unknown = [k for k in ("enabled", "threshold", "lock_s") if evidence[k] is None]
        if unknown:
            return [
                self.finding(
                    ctx,
                    "auth.lockout_unknown",
                    "inconclusive",
                    "info",
                    reason=f"the camera does not report {','.join(unknown)}",
                    evidence={**evidence, "vendor": adapter.vendor},
                )
            ]
        return [self.finding(ctx, "auth.lockout_policy", "pass", "info", evidence=evidence)]


class AccountsCheck(Check):
    id = "accounts"
    controls = ("AUTH-12",)
    requires = frozenset({Capability.ACCOUNTS})

    def __init__(self, approved: Mapping[str, Collection[str]] | None = None) -> None:
        """``approved``: camera id -> the account names the owner approved for it."""
        self.approved = dict(approved or {})

    async def run(self, ctx: CheckContext) -> list[Finding]:
        adapter = adapter_of(ctx)
        if ctx.credential is None:
            return [
                self.finding(
                    ctx,
                    "auth.accounts_unreadable",
                    "not_applicable",
                    "info",
                    reason="reading the accounts needs the camera's configured credential",
                    evidence={"error": "no_credential"},
                )
            ]
        accounts = await adapter.accounts()
        listed = self.approved.get(ctx.target.camera_id)
        approved = {ctx.credential.username, *(listed or ())}
        extra = [a for a in accounts if a.name not in approved]
        admins = [a.name for a in extra if a.role in ADMIN_ROLES]
        secrets = ctx.secrets()
        evidence: dict[str, EvidenceValue] = {
            "count": len(accounts),
            "list_configured": listed is not None,
            "accounts": _names((a.name for a in accounts), secrets),
        }
        failing = extra if listed is not None else [a for a in extra if a.name in admins]
        if not failing:
            return [self.finding(ctx, "auth.accounts_approved", "pass", "info", evidence=evidence)]
        return [
            self.finding(
                ctx,
                "auth.accounts_unapproved",
                "fail",
                "high" if admins else "medium",
                evidence={
                    **evidence,
                    "unapproved": _names((a.name for a in failing), secrets),
                    "admins": len(admins),
                },
            )
        ]


def _names(names: Iterable[str], secrets: Sequence[str]) -> str:
    """Account names for evidence; a name that equals or holds the camera password (an account
    ``admin`` with password ``admin``) is withheld, as the evidence guard requires."""

    def shown(name: str) -> str:
        leaks = any(s and (s == name or (len(s) >= MIN_SHOWN and s in name)) for s in secrets)
        return "(withheld)" if leaks else name

    return ",".join(sorted(shown(n) for n in names))
