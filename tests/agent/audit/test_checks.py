from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from datetime import UTC, date, datetime
from typing import ClassVar

import pytest

from agent.advisories.feed import AdvisoryFeed
from agent.checks import CHECKS
from agent.checks.base import (
    Check,
    CheckContext,
    CheckLimits,
    SystemClock,
    UnsafeEvidence,
    check_evidence,
    make_finding,
    run_check,
    run_checks,
)
from agent.checks.codes import CODES
from agent.checks.firmware import FirmwareCheck
from agent.checks.identity import IdentityCheck
from agent.checks.interfaces import onvif_adapter
from agent.checks.passwords import PasswordPolicyCheck
from agent.credentials.passwords import SiteKey
from agent.vendors.base import Adapter, AdapterConfig, Unreachable
from agent.vendors.models import Capability, Credential, DeviceIdentity, Target
from protocol.messages import Finding

TARGET = Target(camera_id="cam1", address="192.0.2.10")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


class IdentityOnly(Adapter):
    vendor = "fake"
    capabilities = frozenset({Capability.IDENTITY})

    async def _identify(self) -> DeviceIdentity:
        return DeviceIdentity(vendor="fake")


def ctx(
    *,
    adapter: Adapter | None = None,
    identity: DeviceIdentity | None = None,
    advisories: AdvisoryFeed | None = None,
    credential: Credential | None = None,
    site_key: SiteKey | None = None,
    limits: CheckLimits | None = None,
) -> CheckContext:
    return CheckContext(
        target=TARGET,
        adapter=adapter,
        identity=identity,
        limits=limits or CheckLimits(),
        clock=FixedClock(),
        advisories=advisories,
        credential=credential,
        site_key=site_key,
    )


class Scripted(Check):
    id = "scripted"
    controls = ("SVC-01",)
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.IDENTITY})

    def __init__(self, action: str) -> None:
        self.action = action

    async def run(self, ctx: CheckContext) -> list[Finding]:
        if self.action == "camera":
            raise Unreachable("connection refused")
        if self.action == "bug":
            raise ZeroDivisionError
        if self.action == "slow":
            await asyncio.sleep(10)
        if self.action == "leak":
            return [
                Finding(
                    code="check.camera_error",
                    check=self.id,
                    status="fail",
                    severity="low",
                    controls=["SVC-01"],
                    evidence={"note": "pw=hunter22"},
                )
            ]
        if self.action == "leak-reason":
            raise Unreachable("http://admin:hunter22@192.0.2.10/ refused")
        return [self.finding(ctx, "fw.identity_unknown", "inconclusive", "info")]


# --- runner -----------------------------------------------------------------------------------

SECRET = Credential("admin", "hunter22")


@pytest.mark.parametrize(
    ("action", "code", "status"),
    [
        ("ok", "fw.identity_unknown", "inconclusive"),
        ("camera", "check.camera_error", "inconclusive"),
        ("bug", "check.internal_error", "inconclusive"),
        ("slow", "check.timeout", "inconclusive"),
        ("leak", "check.internal_error", "inconclusive"),
        ("leak-reason", "check.camera_error", "inconclusive"),
    ],
)
async def test_runner_turns_every_outcome_into_findings(
    action: str, code: str, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    context = ctx(
        adapter=IdentityOnly(TARGET, _config()),
        credential=SECRET,
        limits=CheckLimits(check_timeout_s=0.05),
    )
    with caplog.at_level(logging.ERROR):
        [finding] = await run_check(Scripted(action), context)
    assert (finding.code, finding.status, finding.check) == (code, status, "scripted")
    assert "hunter22" not in str(finding)
    assert "hunter22" not in caplog.text
    if action == "camera":
        assert finding.evidence == {"error": "unreachable"}
    if action == "bug":
        assert "ZeroDivisionError" in caplog.text


def _config() -> AdapterConfig:
    return AdapterConfig()


async def test_missing_capability_is_not_applicable() -> None:
    class NeedsAccounts(Scripted):
        requires = frozenset({Capability.ACCOUNTS, Capability.SERVICES})

    [finding] = await run_check(NeedsAccounts("ok"), ctx(adapter=IdentityOnly(TARGET, _config())))
    assert finding.status == "not_applicable"
    assert finding.code == "check.capability_missing"
    assert finding.evidence == {"missing": "accounts,services"}
    [none] = await run_check(NeedsAccounts("ok"), ctx())
    assert none.code == "check.no_adapter"


async def test_run_checks_runs_the_registered_tuple() -> None:
    # the others are tested against the lab (tests/agent/checks_cam, tests/agent/checks_net)
    assert [type(c) for c in CHECKS[:3]] == [FirmwareCheck, PasswordPolicyCheck, IdentityCheck]
    findings = await run_checks(CHECKS[:3], ctx())
    assert [(f.check, f.status) for f in findings] == [
        ("firmware", "inconclusive"),
        ("password-policy", "not_applicable"),
        ("identity", "inconclusive"),  # no identity at all
    ]


def test_system_clock_is_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


# --- evidence guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "admin_password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "client_secret",
        "token",
        "auth-token",
        "api_key",
        "apiKey",
        "private_key",
        "cookie",
        "credential",
        "pin",
    ],
)
def test_secret_keys_are_refused(key: str) -> None:
    with pytest.raises(UnsafeEvidence, match="names a secret"):
        check_evidence({key: "x"}, ())


@pytest.mark.parametrize(
    "key", ["length", "bypass", "passed", "fingerprint", "fingerprint_key_id", "compass", "class"]
)
def test_ordinary_keys_pass(key: str) -> None:
    assert check_evidence({key: 1}, ()) == {key: 1}


@pytest.mark.parametrize("value", ["hunter22", "user hunter22 tried", "HUNTER22x"])
def test_secret_values_are_refused(value: str) -> None:
    if value == "HUNTER22x":
        assert check_evidence({"note": value}, ["hunter22"]) == {"note": value}
        return
    with pytest.raises(UnsafeEvidence, match="contains a secret"):
        check_evidence({"note": value}, ["hunter22"])


def test_short_secrets_refused_as_whole_values_only() -> None:
    assert check_evidence({"username": "admin"}, ["adm"]) == {"username": "admin"}
    with pytest.raises(UnsafeEvidence):
        check_evidence({"username": "admin"}, ["admin"])


def test_finding_refuses_unknown_codes_and_secret_reasons() -> None:
    with pytest.raises(ValueError, match="not in the catalogue"):
        make_finding(check="x", code="nope", status="pass", severity="info", controls=[])
    with pytest.raises(UnsafeEvidence, match="reason"):
        make_finding(
            check="x",
            code="check.timeout",
            status="inconclusive",
            severity="info",
            controls=[],
            reason="tried hunter22",
            secrets=["hunter22"],
        )


def test_finding_reasons_hold_no_control_characters() -> None:
    """The wire schema refuses them, and one such reason would cost the agent its whole report."""
    finding = make_finding(
        check="x",
        code="check.timeout",
        status="inconclusive",
        severity="info",
        controls=[],
        reason="camera said \x00\x1b[31mno" + "!" * 600,
    )
    assert finding.reason is not None
    assert finding.reason.startswith("camera said [31mno!")
    assert len(finding.reason) == 512


def test_catalogue_placeholders_are_evidence_keys() -> None:
    for code, text in CODES.items():
        assert re.fullmatch(r"[a-z0-9_.-]+", code)
        for name in re.findall(r"\{(\w+)\}", text):
            check_evidence({name: "x"}, ())  # never a secret-looking key


# --- firmware check ---------------------------------------------------------------------------


async def _firmware(feed: AdvisoryFeed | None, identity: DeviceIdentity | None) -> list[Finding]:
    context = ctx(adapter=IdentityOnly(TARGET, _config()), identity=identity, advisories=feed)
    return await run_check(FirmwareCheck(), context)


HIK = "HIKVISION"
HIK_OLD = DeviceIdentity(vendor=HIK, model="DS-2CD2143G2-I", firmware="V5.5.0 build 200101")
HIK_NEW = DeviceIdentity(
    vendor="HIKVISION", model="DS-2CD2143G2-I", firmware="V5.5.800 build 210628"
)


async def test_firmware_kev_is_critical_fail(advisory_feed: AdvisoryFeed) -> None:
    [finding] = await _firmware(advisory_feed, HIK_OLD)
    assert (finding.code, finding.status, finding.severity) == (
        "fw.known_exploited",
        "fail",
        "critical",
    )
    assert finding.controls == ["FW-01", "FW-02"]
    assert finding.evidence["cve"] == "CVE-2021-36260"
    assert finding.evidence["confidence"] == "probable"
    assert finding.evidence["kev_date_added"] == "2022-01-10"
    CODES[finding.code].format(**finding.evidence)


async def test_firmware_clean_is_fw01_pass_only(advisory_feed: AdvisoryFeed) -> None:
    [finding] = await _firmware(advisory_feed, HIK_NEW)
    assert finding.code == "fw.no_known_advisory"
    assert (finding.status, finding.controls) == ("pass", ["FW-01"])
    CODES[finding.code].format(**finding.evidence)


async def test_firmware_non_kev_and_no_fix(advisory_feed: AdvisoryFeed) -> None:
    dahua = DeviceIdentity(
        vendor="Dahua",
        model="IPC-HFW2431S",
        firmware="2.800.0000000.25.R",
        build_date=date(2022, 3, 1),
    )
    [finding] = await _firmware(advisory_feed, dahua)
    assert (finding.code, finding.severity) == ("fw.vulnerable", "high")
    edimax = DeviceIdentity(vendor="Edimax", model="IC-7100", firmware="x")
    [finding] = await _firmware(advisory_feed, edimax)
    assert finding.evidence["no_fix"] is True
    assert finding.controls == ["FW-01"]
    assert "replace" in str(finding.evidence["remedy"])


@pytest.mark.parametrize(
    ("identity", "code"),
    [
        (None, "fw.identity_unknown"),
        (DeviceIdentity(vendor="HIKVISION"), "fw.identity_unknown"),
        (DeviceIdentity(vendor=HIK, model="DS-2CD2143G2-I", firmware="weird"), "fw.undetermined"),
        (DeviceIdentity(vendor="Amcrest", model="IP2M-841", firmware="V2.420"), "fw.kev_unscoped"),
        (
            DeviceIdentity(vendor="Dahua", model="IPC-HFW5241E", firmware="2.800.0.25.R"),
            "fw.undetermined",
        ),
    ],
)
async def test_firmware_inconclusive(
    advisory_feed: AdvisoryFeed, identity: DeviceIdentity | None, code: str
) -> None:
    findings = await _firmware(advisory_feed, identity)
    assert {f.code for f in findings} == {code}
    assert {f.status for f in findings} == {"inconclusive"}
    for finding in findings:
        CODES[finding.code].format(**finding.evidence)


async def test_firmware_unparsable_without_any_rule_decision(advisory_feed: AdvisoryFeed) -> None:
    identity = DeviceIdentity(vendor="Reolink", model="E1 Zoom", firmware="firmware-x")
    [finding] = await _firmware(advisory_feed, identity)
    assert (finding.code, finding.evidence["scheme"]) == ("fw.version_unparsed", "reolink")


async def test_firmware_without_feed() -> None:
    [finding] = await _firmware(None, HIK_OLD)
    assert (finding.code, finding.status) == ("fw.feed_unavailable", "inconclusive")


# --- password check ---------------------------------------------------------------------------

KEY = SiteKey(b"k" * 32)


@pytest.mark.parametrize(
    ("password", "code", "classes"),
    [
        ("12345", "auth.weak_password", 1),
        ("admin", "auth.weak_password", 1),
        ("Abcdef1!", "auth.weak_password", 4),  # meets 724, but zxcvbn finds it guessable
        ("Hikvision2024!", "auth.weak_password", 4),  # vendor name: user input to zxcvbn
        ("correct horse battery staple", "auth.weak_password", 2),  # strong, not 724-compliant
        ("Tr0ub4dor&3x!Zq", "auth.password_policy", 4),
        ("v9#Kp2$wQz7!mLx4", "auth.password_policy", 4),
    ],
)
async def test_password_rule_table(password: str, code: str, classes: int) -> None:
    identity = DeviceIdentity(vendor="Hikvision", model="DS-2CD2143G2-I")
    context = ctx(identity=identity, credential=Credential("admin", password), site_key=KEY)
    [finding] = await run_check(PasswordPolicyCheck(), context)
    assert finding.code == code
    assert finding.evidence["class_count"] == classes
    assert finding.evidence["length"] == len(password)
    assert password not in str(finding)
    assert finding.evidence["fingerprint_key_id"] == KEY.key_id
    CODES[finding.code].format(**finding.evidence)


async def test_password_unknown() -> None:
    [finding] = await run_check(PasswordPolicyCheck(), ctx())
    assert (finding.code, finding.status) == ("auth.password_unknown", "not_applicable")


async def test_onvif_companions_are_shared_per_camera_when_the_audit_keeps_them() -> None:
    """A vendor-identified camera's checks share one ONVIF companion per credential for the
    audit (nothing is sent here: building an adapter opens no connection)."""
    vendor, agent_account = IdentityOnly(TARGET, AdapterConfig()), Credential("admin", "pw")
    companions: dict[Credential | None, Adapter] = {}
    shared = dataclasses.replace(
        ctx(adapter=vendor, credential=agent_account), companions=companions
    )
    async with onvif_adapter(shared, agent_account) as first:
        pass
    async with onvif_adapter(shared, agent_account) as again:
        pass
    async with onvif_adapter(shared, None) as anonymous:
        pass
    assert first is again is companions[agent_account]
    assert anonymous is companions[None]
    assert anonymous is not first
    # without a dict from the caller, each block builds (and closes) its own
    alone = ctx(adapter=vendor, credential=agent_account)
    async with onvif_adapter(alone, agent_account) as one:
        pass
    async with onvif_adapter(alone, agent_account) as other:
        pass
    assert one is not other
