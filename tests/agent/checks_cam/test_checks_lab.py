"""The adapter-based checks against the camera lab: findings per control ID equal the lab's
seeded weaknesses (``node.weaknesses``), and default-credential guessing never locks a camera.

Lockout windows are short in this lab (1 s) and the guess limits assume a 1 s window, so the
planner's real-time spacing runs in seconds. Lock safety is asserted on the lab's own state
(``camera.locked``) and on the timestamps of the failed logins the lab recorded.

One documented difference: a 1 s failure window is weaker than Decision 724's 30 s, and the lab's
truth says so (AUTH-05), but Hikvision's illegalLoginLock and Dahua's General table expose the
threshold and lock time, not the window, so the agent reads those and cannot see it
(``WINDOW_NOT_EXPOSED``). Axis's brute-force blocking names its interval: AUTH-05 fails there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from agent.audit.identify import identify, prepare
from agent.checks.accounts import AccountsCheck, ActivationCheck, LockoutPolicyCheck
from agent.checks.base import Check, CheckContext, CheckLimits, SystemClock, run_checks
from agent.checks.clock import ClockCheck
from agent.checks.cloud import RemoteServicesCheck
from agent.checks.codes import CODES
from agent.checks.credentials import DefaultCredentialCheck
from agent.checks.identity import IdentityCheck
from agent.checks.onvif_access import AnonymousOnvifCheck
from agent.checks.passwords import PasswordPolicyCheck
from agent.credentials.planner import GuessLimits
from agent.vendors.axis.adapter import AxisAdapter
from agent.vendors.base import Adapter, AdapterConfig
from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.models import Credential, Interface, Target
from lab.camera import RequestRecord
from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory
from lab.truth import weak_password
from protocol.messages import Finding
from tests.agent.support import lockout_window_only

pytestmark = pytest.mark.integration

STRONG = "Kq7!vR2#mZ9x"
LOCK = "lockout = {threshold = 5, window_s = 1, lock_s = 300}"
LAB = f"""
[[camera]]
id = "hik-clean"
persona = "hikvision"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
{LOCK}
[[camera]]
id = "hik-lock3"
persona = "hikvision"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
lockout = {{threshold = 3, window_s = 1, lock_s = 300}}
[[camera]]
id = "hik-weak"
persona = "hikvision"
not_activated = true
hidden_admin = true
p2p = true
ddns = true
manual_time = true
clock_skew_s = -900
onvif_noauth_ops = ["GetUsers"]
[[camera]]
id = "hik-weakpw"
persona = "hikvision"
users = [{{name = "admin", password = "hello123", role = "admin"}}]
{LOCK}
[[camera]]
id = "dahua-clean"
persona = "dahua"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}},
         {{name = "guard", password = "{STRONG}x", role = "user"}}]
{LOCK}
[[camera]]
id = "dahua-weak"
persona = "dahua"
hidden_admin = true
p2p = true
ddns = true
manual_time = true
clock_skew_s = 120
[[camera]]
id = "axis-clean"
persona = "axis"
users = [{{name = "root", password = "{STRONG}", role = "admin"}}]
{LOCK}
[[camera]]
id = "axis-weak"
persona = "axis"
hidden_admin = true
p2p = true
ddns = true
manual_time = true
onvif_noauth_ops = ["GetProfiles", "GetStreamUri"]
[[camera]]
id = "gen-clean"
persona = "onvif-generic"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
{LOCK}
[[camera]]
id = "gen-weak"
persona = "onvif-generic"
hidden_admin = true
ddns = true
manual_time = true
clock_skew_s = 400
onvif_noauth_ops = ["GetNetworkInterfaces"]
[[camera]]
id = "hang"
persona = "hikvision"
faults = {{hang = true}}
[[camera]]
id = "drop"
persona = "axis"
faults = {{drop = true}}
[[camera]]
id = "garbage"
persona = "dahua"
faults = {{garbage = "truncated"}}
"""
FAULTS: dict[str, type[Adapter]] = {
    "hang": HikvisionAdapter,
    "drop": AxisAdapter,
    "garbage": DahuaAdapter,
}
CONFIG = AdapterConfig(timeout_s=1.5, max_response_bytes=256 * 1024)
GUESS = GuessLimits(threshold=3, window_s=1.0, lock_s=300.0, margin_s=0.2)
ASSUMED_THRESHOLD = 3
LIMITS = CheckLimits(check_timeout_s=60.0)
# Controls these checks decide, and where a vendor exposes no reading (not_applicable), or no
# reading of a setting every camera has (the lockout policy: inconclusive, with the reason).
CONTROLS = ("AUTH-01", "AUTH-02", "AUTH-05", "AUTH-10", "AUTH-12", "SVC-06", "SVC-07", "LOG-01")
NOT_EXPOSED = {
    "Hikvision": set(),
    "Dahua": {"AUTH-02"},
    "Axis": {"AUTH-02"},
    "Generic": {"AUTH-02", "SVC-06"},
}
UNREADABLE = {"Hikvision": set(), "Dahua": set(), "Axis": set(), "Generic": {"AUTH-05"}}
FAILED_LOGIN = ("digest", "basic", "wsse-digest", "wsse-text")


class StampedLog(list[RequestRecord]):
    """The lab camera's request log, with the monotonic time each record arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: RequestRecord) -> None:
        self.times.append(time.monotonic())
        super().append(item)

    def failed_logins(self) -> list[float]:
        return [
            at
            for at, r in zip(self.times, self, strict=True)
            if r.auth in FAILED_LOGIN and r.user is None
        ]


@dataclass(frozen=True, slots=True)
class Audit:
    node: CameraNode
    findings: list[Finding]
    failures: list[float]

    def by_control(self, control: str) -> list[Finding]:
        return [f for f in self.findings if control in f.controls]

    def statuses(self, control: str) -> set[str]:
        return {f.status for f in self.by_control(control)}


def failed(finding: Finding) -> bool:
    return finding.status == "fail"


def target(node: CameraNode) -> Target:
    return Target(node.id, node.host, {Interface.HTTP: node.ports["http"]})


def credential(node: CameraNode) -> Credential:
    """What the agent's vault holds: the camera's configured (first listed) account."""
    user = node.spec.users[0]
    return Credential(user.name, user.password)


def checks(fleet: Fleet, inventory: Iterable[Target]) -> list[Check]:
    approved = {node.id: [u.name for u in node.spec.users] for node in fleet.cameras.values()}
    return [
        PasswordPolicyCheck(),
        IdentityCheck(),
        ActivationCheck(),
        LockoutPolicyCheck(),
        AccountsCheck(approved),
        AnonymousOnvifCheck(),
        RemoteServicesCheck(),
        ClockCheck(),
        DefaultCredentialCheck(tuple(inventory), limits=GUESS),
    ]


async def context(node: CameraNode, limits: CheckLimits = LIMITS) -> CheckContext:
    if node.id in FAULTS:  # identification fails on these: audit with the vendor adapter
        adapter = FAULTS[node.id](target(node), CONFIG, credential(node))
        return CheckContext(
            target(node), adapter, None, limits, SystemClock(), None, credential(node)
        )
    found = await identify(target(node), CONFIG, credential(node))
    return CheckContext(
        target(node), found.adapter, found.identity, limits, SystemClock(), None, credential(node)
    )


async def audit(node: CameraNode, suite: list[Check]) -> Audit:
    log = StampedLog()
    node.camera.log = log
    ctx = await context(node)
    try:
        findings = await run_checks(suite, ctx)
    finally:
        if ctx.adapter is not None:
            await ctx.adapter.close()
    return Audit(node, findings, log.failed_logins())


async def test_audit_of_the_lab(lab_fleet: LabFactory) -> None:
    """One audit of the whole lab (cameras in parallel, each camera's checks in sequence)."""
    fleet = await lab_fleet(LAB)
    inventory = [target(node) for node in fleet.cameras.values()]
    suite = checks(fleet, inventory)
    await prepare()  # as the audit does: the ONVIF documents before any camera is timed
    done = await asyncio.gather(*(audit(node, suite) for node in fleet.cameras.values()))
    audits = {a.node.id: a for a in done}
    findings_match_the_seeded_weaknesses(audits)
    default_credentials_on_every_interface(audits)
    guessing_never_locks_a_camera(audits)
    identity_and_password_policy(audits)
    discovery_mode_reads_the_lab(audits)
    fault_cameras_are_never_judged(audits)


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)),
        default=0,
    )


def findings_match_the_seeded_weaknesses(audits: dict[str, Audit]) -> None:
    for cam, result in audits.items():
        for finding in result.findings:
            CODES[finding.code].format(**finding.evidence)  # every placeholder has evidence
        if cam in FAULTS:
            continue
        truth = result.node.weaknesses
        gaps = NOT_EXPOSED[result.node.spec.persona.vendor]
        for control in CONTROLS:
            statuses = result.statuses(control)
            if control in gaps:
                assert statuses == {"not_applicable"}, (cam, control, statuses)
            elif control in UNREADABLE[result.node.spec.persona.vendor]:
                assert statuses == {"inconclusive"}, (cam, control, statuses)
            elif control == "AUTH-05" and lockout_window_only(
                truth.get(control, []), result.node.spec.persona.vendor
            ):
                assert statuses == {"pass"}, (cam, control, statuses)  # WINDOW_NOT_EXPOSED
            elif control in truth:
                assert "fail" in statuses, (cam, control, statuses, truth[control])
            else:
                assert statuses == {"pass"}, (cam, control, result.by_control(control))


def default_credentials_on_every_interface(audits: dict[str, Audit]) -> None:
    hits = {
        cam: sorted(
            str(f.evidence["interface"]) for f in a.by_control("AUTH-01") if f.status == "fail"
        )
        for cam, a in audits.items()
    }
    assert {cam: ifaces for cam, ifaces in hits.items() if ifaces} == {
        "hik-weak": ["http", "onvif"],
        "dahua-weak": ["http", "onvif"],
        "axis-weak": ["http", "onvif"],
        "gen-weak": ["onvif"],
        # truncated bodies, but its digest login is real: the lab seeds AUTH-01 on it too (its
        # ONVIF clock answer does not parse, so ONVIF is not tried there)
        "garbage": ["http"],
    }
    entries = {
        cam: {str(f.evidence["entry"]) for f in a.by_control("AUTH-01") if f.status == "fail"}
        for cam, a in audits.items()
    }
    assert entries["hik-weak"] == {"dc-004"}
    assert entries["dahua-weak"] == {"dc-005"}
    dahua = next(f for f in audits["dahua-weak"].by_control("AUTH-01"))
    assert dahua.evidence["account"] == "dc-005"  # admin/admin: the username is withheld
    assert audits["axis-weak"].by_control("AUTH-01")[0].evidence["account"] == "root"


def guessing_never_locks_a_camera(audits: dict[str, Audit]) -> None:
    for cam, result in audits.items():
        camera = result.node.camera
        assert not any(camera.locked(name) for name in camera.users), cam
        lockout = result.node.spec.lockout
        threshold = lockout.threshold if lockout else ASSUMED_THRESHOLD
        window = lockout.window_s if lockout else GUESS.window_s
        worst = max_in_window(result.failures, window)
        assert worst <= threshold - 2, (cam, worst, threshold)
        stated = [
            f.evidence["attempts"] for f in result.by_control("AUTH-01") if "attempts" in f.evidence
        ]
        assert all(isinstance(n, int) and n <= 12 + 2 for n in stated), (cam, stated)
    # the clean lockout personas were fully tried, so the limits were really exercised
    assert len(audits["hik-clean"].failures) >= 6
    assert audits["hik-clean"].statuses("AUTH-01") == {"pass"}
    assert max_in_window(audits["hik-lock3"].failures, 1.0) <= 1


def identity_and_password_policy(audits: dict[str, Audit]) -> None:
    for cam, result in audits.items():
        [inv] = result.by_control("INV-01")
        node = result.node
        if cam in FAULTS:
            assert inv.status == "inconclusive"
            continue
        if node.spec.persona.vendor == "Generic":
            # a no-name camera answers the placeholder Manufacturer "IPCAM", as recorded from
            # real ones: its vendor stays unknown, said as such, never a vendor called "ipcam"
            assert inv.status == "inconclusive", cam
            assert inv.evidence["vendor"] is None
            assert inv.reason == "identification left vendor unknown"
        else:
            assert inv.status == "pass", (cam, inv.reason, inv.evidence)
        assert inv.evidence["model"] == node.spec.model
        assert inv.evidence["serial"] == node.camera.serial
        [auth04] = result.by_control("AUTH-04")
        assert (auth04.status == "fail") is weak_password(node.spec.users[0].password), cam


def discovery_mode_reads_the_lab(audits: dict[str, Audit]) -> None:
    """Lab gap: every lab camera answers GetDiscoveryMode 'Discoverable' and the lab has no knob
    (SVC-08 is never in ``node.weaknesses``), so the check reports it everywhere, low."""
    for cam, result in audits.items():
        if cam in FAULTS:
            continue
        [svc08] = result.by_control("SVC-08")
        assert (svc08.status, svc08.severity) == ("fail", "low"), cam


def fault_cameras_are_never_judged(audits: dict[str, Audit]) -> None:
    for cam in FAULTS:
        # AUTH-04 judges the vault's password, not the camera: it needs no answer; AUTH-01 is
        # decided by a real login, which the garbage camera still answers (see above)
        judged = [f for f in audits[cam].findings if f.controls not in (["AUTH-04"], ["AUTH-01"])]
        statuses = {f.status for f in judged}
        assert statuses <= {"inconclusive", "not_applicable"}, (cam, audits[cam].findings)
        assert "inconclusive" in statuses


async def test_guessing_only_in_the_inventory(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB.split('[[camera]]\nid = "hik-lock3"', maxsplit=1)[0])
    node = fleet["hik-clean"]
    result = await audit(node, [DefaultCredentialCheck((), limits=GUESS)])
    [finding] = result.findings
    assert (finding.code, finding.status) == ("auth.guessing_not_authorised", "not_applicable")
    assert result.failures == []


async def test_guessing_keeps_to_the_time_limit(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB.split('[[camera]]\nid = "hik-lock3"', maxsplit=1)[0])
    node = fleet["hik-clean"]
    node.camera.log = log = StampedLog()
    ctx = await context(node, CheckLimits(check_timeout_s=4.0))
    try:
        [finding] = await run_checks([DefaultCredentialCheck([ctx.target], limits=GUESS)], ctx)
    finally:
        if ctx.adapter is not None:
            await ctx.adapter.close()
    assert (finding.code, finding.status) == ("auth.guessing_stopped", "inconclusive")
    assert finding.evidence["stop_reason"] == "time"
    assert 0 < len(log.failed_logins()) < 12
