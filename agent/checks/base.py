"""The check framework: what a check is, what it sees, how its findings are built and run.

A check has a stable ``id``, the ``controls`` it answers (baseline.md §1), and the adapter
capabilities it ``requires``. ``run(ctx)`` returns findings; it does not raise for a camera's
misbehaviour. The runner still guards every check, so that nothing escapes::

    missing capability            -> not_applicable  check.capability_missing / check.no_adapter
    CameraError                   -> inconclusive    check.camera_error (evidence: error code)
    no result within the limit    -> inconclusive    check.timeout
    any other exception, or a     -> inconclusive    check.internal_error (logged with traceback)
    finding that breaks the rules

Evidence never holds a secret. ``finding()`` refuses evidence keys that name one (password,
secret, token, ...) and any value equal to, or containing, a secret the context knows (the
camera's password, passwords a check tested). The runner checks returned findings again, so a
check that builds ``Finding`` by hand cannot leak either. Consequence for the default-credential
check: when a tried username equals its password (``admin``/``admin``), report the catalogue
entry id, not the username.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Protocol

from agent.checks.codes import CODES
from agent.vendors.base import Adapter, CameraError
from agent.vendors.models import Capability, Credential, DeviceIdentity, Target
from protocol.messages import EvidenceValue, Finding, Severity, Status
from protocol.text import clean_text

if TYPE_CHECKING:
    from agent.advisories.feed import AdvisoryFeed
    from agent.credentials.passwords import SiteKey
    from agent.probes.ports import PortState

logger = logging.getLogger(__name__)

_SECRET_WORDS = frozenset(
    {"pass", "passwd", "pwd", "passphrase", "pin", "psk", "cookie", "credential", "credentials"}
)
_SECRET_PARTS = ("password", "secret", "token", "apikey", "privatekey")
_MIN_CONTAINED_SECRET = 4  # shorter secrets are refused only as whole values


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UnsafeEvidence(ValueError):
    """A finding would have carried a secret. A programming error in a check, never shipped."""


@dataclass(frozen=True, slots=True)
class CheckLimits:
    """Safety limits for checks; config builds it once and passes it down."""

    check_timeout_s: float = 60.0
    min_password_score: int = 3  # zxcvbn score 0-4 below which a password is weak
    # default-credential guessing spaces its attempts over minutes; None: check_timeout_s
    guess_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a check may use about one camera. Built by the caller per audit run."""

    target: Target
    adapter: Adapter | None
    identity: DeviceIdentity | None
    limits: CheckLimits
    clock: Clock
    advisories: AdvisoryFeed | None = None
    credential: Credential | None = None  # the agent's credential for this camera (vault)
    site_key: SiteKey | None = None  # keys password fingerprints (AUTH-03)
    # ONVIF companions of a vendor-identified camera, by credential, shared by its checks for
    # one audit and closed by whoever passed the dict (the audit); None: one per check
    companions: dict[Credential | None, Adapter] | None = None
    # TCP port states this camera's network checks saw in this audit (``NetCheck.scan``), kept
    # by the audit per camera; None: every check connects for itself
    port_states: dict[int, PortState] | None = None
    # the camera refused the agent's credential (identification failed with AuthFailed)
    login_refused: bool = False

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.adapter.capabilities if self.adapter is not None else frozenset()

    def secrets(self) -> tuple[str, ...]:
        return (self.credential.password,) if self.credential is not None else ()


class Check(ABC):
    id: ClassVar[str]
    controls: ClassVar[tuple[str, ...]]
    requires: ClassVar[frozenset[Capability]] = frozenset()

    @abstractmethod
    async def run(self, ctx: CheckContext) -> list[Finding]: ...

    def timeout_s(self, limits: CheckLimits) -> float:
        """This check's time limit; the runner enforces it."""
        return limits.check_timeout_s

    def finding(
        self,
        ctx: CheckContext,
        code: str,
        status: Status,
        severity: Severity,
        *,
        reason: str | None = None,
        evidence: Mapping[str, EvidenceValue] | None = None,
        controls: Sequence[str] | None = None,
        secrets: Iterable[str] = (),
    ) -> Finding:
        """A finding of this check; ``secrets`` adds values (tested passwords) to refuse."""
        return make_finding(
            check=self.id,
            code=code,
            status=status,
            severity=severity,
            controls=self.controls if controls is None else controls,
            reason=reason,
            evidence=evidence or {},
            secrets=(*ctx.secrets(), *secrets),
        )


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    compact = re.sub(r"[^a-z0-9]+", "", lowered)
    return bool(words & _SECRET_WORDS) or any(part in compact for part in _SECRET_PARTS)


def check_evidence(
    evidence: Mapping[str, EvidenceValue], secrets: Iterable[str]
) -> dict[str, EvidenceValue]:
    """Return ``evidence`` as a dict, or raise ``UnsafeEvidence`` naming the offending key."""
    known = [s for s in secrets if s]
    for key, value in evidence.items():
        if _secret_key(key):
            raise UnsafeEvidence(f"evidence key {key!r} names a secret")
        if isinstance(value, str) and any(
            value == s or (len(s) >= _MIN_CONTAINED_SECRET and s in value) for s in known
        ):
            raise UnsafeEvidence(f"evidence {key!r} contains a secret value")
    return dict(evidence)


def make_finding(
    *,
    check: str,
    code: str,
    status: Status,
    severity: Severity,
    controls: Sequence[str],
    reason: str | None = None,
    evidence: Mapping[str, EvidenceValue] | None = None,
    secrets: Iterable[str] = (),
) -> Finding:
    """Every finding is made here: secrets refused first, then the reason and each text of the
    evidence (which may quote a camera) cleaned of control characters and cut with a marker to
    the wire's limit, so one camera's odd answer never invalidates a report."""
    if code not in CODES:
        raise ValueError(f"finding code {code!r} is not in the catalogue")
    secrets = tuple(secrets)
    if reason is not None and any(s and s in reason for s in secrets):
        raise UnsafeEvidence("reason contains a secret value")
    return Finding(
        code=code,
        check=check,
        status=status,
        severity=severity,
        controls=list(controls),
        reason=None if reason is None else clean_text(reason),  # the wire's text limit
        evidence={
            key: clean_text(value) if isinstance(value, str) else value
            for key, value in check_evidence(evidence or {}, secrets).items()
        },
    )


def _framework(
    check: Check, ctx: CheckContext, code: str, status: Status, reason: str, **evidence: str
) -> Finding:
    if any(s and s in reason for s in ctx.secrets()):
        reason = "detail withheld: it contained a secret"
    return framework_finding(check, code, status, reason, **evidence)


def framework_finding(
    check: Check, code: str, status: Status, reason: str, **evidence: str
) -> Finding:
    """A finding the audit itself gives ``check`` (no result, not applicable), not the check's
    own; ``reason`` must hold no secret (:func:`_framework` withholds one from a camera run)."""
    return make_finding(
        check=check.id,
        code=code,
        status=status,
        severity="info",
        controls=check.controls,
        reason=reason,
        evidence=evidence,
    )


def _validated(check: Check, ctx: CheckContext, findings: list[Finding]) -> list[Finding]:
    for item in findings:
        if item.code not in CODES or item.check != check.id:
            raise ValueError(f"check {check.id} returned a foreign finding {item.code!r}")
        check_evidence(item.evidence, ctx.secrets())
        if item.reason is not None and any(s in item.reason for s in ctx.secrets() if s):
            raise UnsafeEvidence("reason contains a secret value")
    return findings


def camera_error_finding(
    check: Check, ctx: CheckContext, exc: CameraError, context: str = ""
) -> Finding:
    """``check`` could not judge the camera because of ``exc`` (inconclusive, with the reason)."""
    reason = f"{context}{exc.detail}"
    return _framework(check, ctx, "check.camera_error", "inconclusive", reason, error=exc.code)


def timeout_finding(check: Check, ctx: CheckContext, timeout_s: float, what: str) -> Finding:
    """``check`` had no result within ``timeout_s`` (``what``: which limit ran out)."""
    timeout = str(timeout_s)
    reason = f"no result within {timeout} s ({what})"
    return _framework(check, ctx, "check.timeout", "inconclusive", reason, timeout_s=timeout)


async def run_check(check: Check, ctx: CheckContext) -> list[Finding]:
    """Run one check; every outcome, including a bug in the check, becomes findings."""
    missing = check.requires - ctx.capabilities
    if missing:
        names = ",".join(sorted(c.value for c in missing))
        code = "check.no_adapter" if ctx.adapter is None else "check.capability_missing"
        reason = f"needs {names}"
        return [_framework(check, ctx, code, "not_applicable", reason, missing=names)]
    limit = check.timeout_s(ctx.limits)
    try:
        async with asyncio.timeout(limit):
            return _validated(check, ctx, await check.run(ctx))
    except CameraError as exc:
        return [camera_error_finding(check, ctx, exc)]
    except TimeoutError:
        return [timeout_finding(check, ctx, limit, "the check's time limit")]
    except Exception as exc:
        logger.exception("check %s failed on %s", check.id, ctx.target.camera_id)
        return [internal_error_finding(check, ctx, exc)]


def internal_error_finding(check: Check, ctx: CheckContext, exc: Exception) -> Finding:
    """``check`` has no result because of a bug (ours or a library's), not the camera."""
    name = type(exc).__name__
    reason = f"internal error {name}"
    return _framework(check, ctx, "check.internal_error", "inconclusive", reason, error=name)


async def run_checks(checks: Sequence[Check], ctx: CheckContext) -> list[Finding]:
    """Run ``checks`` one after another for one camera (one camera is never hit in parallel)."""
    findings: list[Finding] = []
    for check in checks:
        findings.extend(await run_check(check, ctx))
    return findings
