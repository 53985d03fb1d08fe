"""AUTH-01: vendor default credentials, tried without ever locking the camera.

Only cameras of the configured inventory are tried (baseline AUTH-01 needs the owner's written
authorisation; §5 limits scanning to enrolled cameras): the check is built with the inventory's
``Target`` list and refuses any other target. Then:

1. the lockout policy is read where the vendor exposes it (never probed);
2. the interfaces are found: the identified adapter's own (vendor API over HTTP, or HTTPS on a
   hardened camera, or ONVIF), ONVIF beside a vendor API when its pre-auth clock answers
   (``agent.checks.interfaces``), and RTSP when the target has an RTSP port and a stream path
   there asks for credentials (401): Digest when offered, else Basic (only catalogue
   passwords, which are public, are ever sent with it);
3. ``GuessPlan`` (``agent.credentials.planner``) decides every step: the vendor's own defaults
   first, then generic ones; one attempt per credential per interface; failures counted across
   interfaces and never more than ``threshold - 2`` inside a lockout window (spacing beyond the
   window plus a margin); a lock signal or two errors in a row end it; a per-run budget caps it.
   The vendor API, ONVIF and RTSP share one plan: each candidate goes to every interface before
   the next candidate, so a default kept on RTSP alone is found, and RTSP failures count toward
   the camera's lockout like any other;
4. an accepted login is confirmed by a real authenticated call before it counts as a hit:
   ``identify()`` with it on a fresh adapter, or on RTSP a second authenticated DESCRIBE whose
   SDP describes media (an ``m=`` line); then the same interface must refuse a wrong password
   (one more paced attempt). An interface that takes the wrong password too checks no login:
   ``auth.login_not_enforced``, never a default password (AUTH-10 / AUTH-08 report it);
5. after a hit, the same credential is tried once on each other interface, so a camera on a
   default password is reported on every interface it answers.

The check keeps to its time limit (``CheckLimits.guess_timeout_s``, else ``check_timeout_s``):
an attempt that could not start in time is not made, and the finding says testing stopped. The
clock and sleep are injectable; spacing uses the monotonic clock, so the window semantics are
those of real time.

RTSP has no standard lock signal: after an authenticated DESCRIBE, 401 is a rejection, a 5xx
an error (a 503 is sent again once: the credential passed, the stream was not ready), and any
other refusal (403, ...) is taken as the first sign of a lock, which ends the guessing. The
vendor SDK ports (Hikvision 8000, Dahua 37777) speak proprietary binary protocols and are not
tried.

Findings: ``auth.default_credential`` fail, critical, one per interface that accepted a default;
``auth.no_default_credential`` pass naming only the interfaces where every candidate was sent
(or only generic ones were cut by the budget); ``auth.guessing_stopped`` inconclusive naming
the interfaces that were not tested and why: no interface passes with zero attempts. Evidence
names the catalogue entry, the interface and the account; the account is the entry id when the
username equals the password (admin/admin), and passwords never appear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.checks.base import Check, CheckContext, CheckLimits
from agent.checks.interfaces import ONVIF, adapter_of, login_interface, onvif_adapter
from agent.checks.rtsp import first_stream, stream_paths
from agent.credentials.catalogue import DefaultCredential, candidates, load_catalogue
from agent.credentials.planner import (
    CONTROL_ID,
    Attempt,
    Confirm,
    Done,
    GuessLimits,
    GuessPlan,
    Outcome,
)
from agent.probes import rtsp
from agent.vendors.base import Adapter, AuthFailed, CameraError, LockedOut, Timeout
from agent.vendors.models import Capability, Credential, Interface, LockoutPolicy, Target
from protocol.messages import EvidenceValue, Finding

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]

DEFAULT_BUDGET = 12
_DEADLINE_SLACK_S = 1.0  # kept free at the end of the time limit, beside one adapter timeout
_RTSP_RETRY_S = 0.5  # pause before the one repeat of an RTSP exchange answered 503


class _Login(Protocol):
    """One interface of the camera on which credentials are tried."""

    async def attempt(self, step: Attempt) -> Outcome: ...

    async def confirm(self, credential: DefaultCredential) -> bool: ...


@dataclass(frozen=True, slots=True)
class _AdapterLogin:
    """A vendor API or ONVIF: ``try_login``, confirmed by ``identify()`` on a fresh adapter."""

    adapter: Adapter

    async def attempt(self, step: Attempt) -> Outcome:
        try:
            accepted = await self.adapter.try_login(step.interface, step.username, step.password)
        except LockedOut:
            return Outcome.LOCKED
        except CameraError:
            return Outcome.ERROR
        return Outcome.ACCEPTED if accepted else Outcome.REJECTED

    async def confirm(self, credential: DefaultCredential) -> bool:
        adapter = self.adapter
        login = Credential(credential.username, credential.password)
        async with type(adapter)(adapter.target, adapter.config, login) as confirming:
            try:
                await confirming.identify()
            except CameraError:
                return False
        return True


@dataclass(frozen=True, slots=True)
class _RtspLogin:
    """A DESCRIBE of a protected stream path with the credential (Digest, or Basic when the
    camera offers nothing else); confirmed by a second one that returns the stream's SDP."""

    host: str
    port: int
    path: str
    basic: bool
    timeout_s: float

    async def _describe(self, username: str, password: str) -> rtsp.RtspReply:
        """The exchange, sent again once after a 503: the server accepted the credential (a
        wrong one gets 401 first) but could not prepare the stream yet (seen on busy
        gst-rtsp-server), so the repeat adds no failed login."""
        credential = Credential(username, password)
        for pause in (_RTSP_RETRY_S, None):
            reply = await rtsp.describe(
                self.host,
                self.port,
                self.path,
                timeout_s=self.timeout_s,
                credential=credential,
                basic=self.basic,
            )
            if reply.status != 503 or pause is None:
                break
            await asyncio.sleep(pause)
        return reply

    async def attempt(self, step: Attempt) -> Outcome:
        try:
            reply = await self._describe(step.username, step.password)
        except CameraError:
            return Outcome.ERROR
        if not reply.authenticated:  # the path stopped asking for credentials: no answer
            return Outcome.ERROR
        if reply.status == 200:
            return Outcome.ACCEPTED
        if reply.status == 401:
            return Outcome.REJECTED
        if reply.status >= 500:  # the server, not the credential: counted as an error
            return Outcome.ERROR
        return Outcome.LOCKED  # another refusal after the credential: stop (module doc)

    async def confirm(self, credential: DefaultCredential) -> bool:
        try:
            reply = await self._describe(credential.username, credential.password)
        except CameraError:
            return False
        return reply.authenticated and reply.status == 200 and reply.describes_media


@dataclass
class _Run:
    """One camera's guessing: the plan history shared by every interface, and the hits."""

    logins: dict[Interface, _Login]
    deadline: float
    history: list[tuple[float, Interface, str, Outcome]] = field(default_factory=list)
    hits: list[Confirm] = field(default_factory=list)
    unreliable: set[Interface] = field(default_factory=set)  # a login there did not hold
    open: set[Interface] = field(default_factory=set)  # took a wrong password: no login checked
    stopped: str | None = None  # why a plan ended early: "time", or a planner reason
    # interfaces whose first answer did not come in time: not tested, never taken as absent
    slow: list[Interface] = field(default_factory=list)


class DefaultCredentialCheck(Check):
    id = "default-credentials"
    controls = ("AUTH-01",)
    requires = frozenset({Capability.LOGIN})

    def __init__(
        self,
        inventory: Collection[Target] = (),
        *,
        enabled: bool = True,
        per_camera: Mapping[str, bool] | None = None,
        catalogue: Sequence[DefaultCredential] | None = None,
        budget: int = DEFAULT_BUDGET,
        limits: GuessLimits | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.inventory = tuple(inventory)
        self.enabled = enabled  # the site's switch (audit.guess_default_credentials)
        self.per_camera = dict(per_camera or {})  # a camera's own switch, by camera id
        self.catalogue = tuple(catalogue) if catalogue is not None else load_catalogue()
        self.budget = budget
        self.limits = limits or GuessLimits()
        self.sleep = sleep
        self.monotonic = monotonic

    async def run(self, ctx: CheckContext) -> list[Finding]:
        camera_id = ctx.target.camera_id
        if not self.per_camera.get(camera_id, self.enabled):
            where = "camera" if camera_id in self.per_camera else "site"
            return [
                self.finding(
                    ctx,
                    "auth.guessing_disabled",
                    "not_applicable",
                    "info",
                    reason=f"default-credential testing is turned off for this {where}",
                    evidence={"switch": where},
                )
            ]
        adapter = adapter_of(ctx)
        if ctx.target not in self.inventory or adapter.target != ctx.target:
            return [
                self.finding(
                    ctx,
                    "auth.guessing_not_authorised",
                    "not_applicable",
                    "info",
                    reason="the camera is not in the configured inventory",
                )
            ]
        start = self.monotonic()
        deadline = start + self.timeout_s(ctx.limits) - adapter.config.timeout_s
        policy = await _lockout_policy(adapter)
        async with onvif_adapter(ctx, None) as onvif:
            logins: dict[Interface, _Login] = {login_interface(adapter): _AdapterLogin(adapter)}
            slow = []
            if onvif is not None and Interface.ONVIF not in logins:
                answers = await _answers(onvif)
                if answers:
                    logins[Interface.ONVIF] = _AdapterLogin(onvif)
                elif answers is None:
                    slow.append(Interface.ONVIF)
            # OPTIONS, DESCRIBE and the authenticated DESCRIBE (after which the camera prepares
            # the stream for its SDP) share one exchange: one request timeout for each
            try:
                stream = await _rtsp_login(ctx, 3 * adapter.config.timeout_s)
            except Timeout:
                stream = None
                slow.append(Interface.RTSP)
            if stream is not None:
                logins[Interface.RTSP] = stream
            tried = candidates(self.catalogue, _vendor(ctx, adapter))
            run = _Run(logins, deadline - _DEADLINE_SLACK_S, slow=slow)
            # one plan, one budget and one failure count for every interface, RTSP included
            # (its account may differ from the web's, and its failures lock the same camera)
            plan = GuessPlan(tried, list(logins), policy, self.budget, start, self.limits)
            done = await self._drive(plan, run)
            if done is not None and done.hit is not None:
                await self._everywhere(done.hit, policy, run)
        return self._findings(ctx, run, done, tried, policy)

    def timeout_s(self, limits: CheckLimits) -> float:
        return limits.guess_timeout_s or limits.check_timeout_s

    async def _everywhere(self, hit: Confirm, policy: LockoutPolicy | None, run: _Run) -> None:
        """The hit's credential, once on each other interface (shared failure history)."""
        for interface in run.logins:
            if interface is hit.interface or run.stopped is not None:
                continue
            plan = GuessPlan(
                [hit.credential],
                [interface],
                policy,
                len(run.history) + 2,  # the credential and its control attempt
                self.monotonic(),
                self.limits,
                attempts=list(run.history),
            )
            await self._drive(plan, run)

    async def _drive(self, plan: GuessPlan, run: _Run) -> Done | None:
        """Follow ``plan`` to its end; None if the time limit came first."""
        try:
            while not isinstance(step := plan.next_step(), Done):
                if isinstance(step, Confirm):
                    ok = await run.logins[step.interface].confirm(step.credential)
                    plan.confirmed(step, ok)
                    continue
                if step.not_before > run.deadline:
                    run.stopped = "time"
                    return None
                while (wait := step.not_before - self.monotonic()) > 0:
                    await self.sleep(wait)  # looped: an early wake-up never sends early
                outcome = await run.logins[step.interface].attempt(step)
                # counted from when the attempt finished: the camera saw the credential at some
                # point in between (after a queued ONVIF set-up, after RTSP's OPTIONS and
                # anonymous DESCRIBE), never later, so the spacing errs on the safe side
                plan.record(step, outcome, self.monotonic())
        finally:
            run.history = list(plan.attempts)
            run.unreliable |= plan.unreliable
            run.open |= plan.open
        if step.hit is not None:
            run.hits.append(step.hit)
        if step.reason in ("locked_out", "unreachable", "threshold_too_low"):
            run.stopped = step.reason
        return step

    def _untested(
        self,
        ctx: CheckContext,
        base: Mapping[str, EvidenceValue],
        interfaces: Sequence[Interface],
        why: str,
        candidates: int,
    ) -> Finding:
        """Inconclusive: default credentials were not tested on ``interfaces`` (``why``)."""
        names = ",".join(i.value for i in interfaces)
        return self.finding(
            ctx,
            "auth.guessing_stopped",
            "inconclusive",
            "info",
            reason=f"not tested on {names}: {why}",
            evidence={
                **base,
                "stop_reason": why,
                "untested": names,
                "planned": candidates * len(interfaces),
                "untried": candidates * len(interfaces),
            },
        )

    def _findings(
        self,
        ctx: CheckContext,
        run: _Run,
        done: Done | None,
        tried: Sequence[DefaultCredential],
        policy: LockoutPolicy | None,
    ) -> list[Finding]:
        """A hit per interface that proved one; else, per interface, a pass only where the
        candidates were really sent, and inconclusive (with the reason) where they were not."""
        attempts = len(run.history)
        per_interface = {
            f"attempts_{i.value}": sum(1 for _at, j, *_ in run.history if j is i)
            for i in run.logins
        }
        base: dict[str, EvidenceValue] = {
            "attempts": attempts,
            **per_interface,
            "interfaces": ",".join(i.value for i in run.logins),
            "policy_read": policy is not None,
            "lock_threshold": policy.threshold if policy else None,
        }
        findings = [
            self.finding(
                ctx,
                "auth.login_not_enforced",
                "not_applicable",
                "info",
                reason=f"{i.value} took a wrong password: no login to guess (AUTH-10, AUTH-08)",
                evidence={**base, "interface": i.value},
            )
            for i in run.logins
            if i in run.open
        ]
        # never a pass for an interface that did not answer in time; after a hit, an interface
        # where the proven credential got no answer (neither a hit nor a refusal) says so too
        if run.hits:
            proven = {h.credential.id for h in run.hits}
            answered = {h.interface for h in run.hits} | {
                j for _at, j, e, o in run.history if e in proven and o is Outcome.REJECTED
            }
            unanswered = [i for i in run.logins if i not in answered and i not in run.open]
        else:
            unanswered = []
        for untested, why in (
            (run.slow, "no answer in time"),
            (unanswered, run.stopped or "no answer to the proven credential"),
        ):
            if untested:
                findings.append(self._untested(ctx, base, untested, why, len(tried)))
        if run.hits:
            return findings + [
                self.finding(
                    ctx,
                    "auth.default_credential",
                    "fail",
                    "critical",
                    evidence={
                        **base,
                        "entry": hit.credential.id,
                        "interface": hit.interface.value,
                        "account": _account(hit.credential),
                        "vendor_default": bool(hit.credential.vendors),
                    },
                    secrets=[hit.credential.password],
                )
                for hit in run.hits
            ]
        vendor = _vendor(ctx, ctx.adapter) if ctx.adapter is not None else None
        own = {c.id for c in tried if vendor in c.vendors}
        every = {c.id for c in tried}
        judged = [i for i in run.logins if i not in run.open]
        covered = []
        for interface in judged:
            sent = {e for _at, j, e, _o in run.history if j is interface and e != CONTROL_ID}
            # every candidate sent there, or the budget ran out after the vendor's own ones (a
            # camera of unknown vendor has none: a cut there leaves the interface untested)
            cut = done is not None and done.reason == "budget"
            enough = every <= sent or (cut and bool(own) and own <= sent)
            if sent and enough and interface not in run.unreliable:
                covered.append(interface)
        untested = [i for i in judged if i not in covered]
        if covered:
            sent_ids = {e for _at, j, e, _o in run.history if j in covered and e != CONTROL_ID}
            findings.append(
                self.finding(
                    ctx,
                    "auth.no_default_credential",
                    "pass",
                    "info",
                    evidence={
                        **base,
                        "interfaces": ",".join(i.value for i in covered),
                        "tried": len(sent_ids),
                    },
                )
            )
        if untested:
            reason = run.stopped or (done.reason if done is not None else "time")
            if run.stopped is None and done is not None and done.reason == "exhausted":
                reason = "a login there did not hold"  # unreliable: it accepted, then failed
            planned = len(tried) * len(judged)
            findings.append(
                self.finding(
                    ctx,
                    "auth.guessing_stopped",
                    "inconclusive",
                    "info",
                    reason=f"not tested on {','.join(i.value for i in untested)}: {reason}",
                    evidence={
                        **base,
                        "stop_reason": reason,
                        "untested": ",".join(i.value for i in untested),
                        "planned": planned,
                        "untried": max(planned - attempts, 0),
                    },
                )
            )
        return findings


def _vendor(ctx: CheckContext, adapter: Adapter) -> str | None:
    """The camera's canonical vendor key: the vendor adapter's own, else ONVIF's manufacturer
    (already canonical in the ONVIF identity)."""
    if adapter.vendor != ONVIF:
        return adapter.vendor
    return ctx.identity.vendor if ctx.identity is not None else None


def _account(credential: DefaultCredential) -> str:
    """The username, unless it would disclose the password (admin/admin) or is empty."""
    username, password = credential.username, credential.password
    if not username or (password and password in username):
        return credential.id
    return credential.username


async def _lockout_policy(adapter: Adapter) -> LockoutPolicy | None:
    """The camera's configured policy, or None when it cannot be read (not exposed, or a bad
    answer): the planner then assumes a strict one."""
    if not adapter.supports(Capability.LOCKOUT_POLICY):
        return None
    try:
        return await adapter.lockout_policy()
    except CameraError:
        return None


async def _answers(onvif: Adapter) -> bool | None:
    """True if the camera answers ONVIF: its pre-auth clock, or a refusal of it (AXIS OS);
    None if no answer came in time (a slow camera or a loaded agent: untested, not absent)."""
    try:
        await onvif.time()
    except AuthFailed:
        return True
    except Timeout:
        return None
    except CameraError:
        return False
    return True


async def _rtsp_login(ctx: CheckContext, timeout_s: float) -> _RtspLogin | None:
    """RTSP as a login interface: the first existing stream path, if it asks for Digest or
    Basic credentials. None without an RTSP port, with an anonymous stream (AUTH-08 judges
    that; no credential can be confirmed there) or when RTSP does not answer; ``Timeout`` when
    its answer did not come in time."""
    port = ctx.target.ports.get(Interface.RTSP)
    if port is None:
        return None
    paths, _source = await stream_paths(ctx)
    try:
        found = await first_stream(ctx.target.address, port, paths, timeout_s=timeout_s)
    except Timeout:
        raise  # no answer in time: untested (``_Run.slow``), not "no RTSP login"
    except CameraError:
        return None
    if found is None or found[1].status != 401:
        return None
    path, reply = found
    if "digest" not in reply.schemes and "basic" not in reply.schemes:
        return None
    basic = "digest" not in reply.schemes
    return _RtspLogin(ctx.target.address, port, path, basic, timeout_s)
