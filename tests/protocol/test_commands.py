"""Command params: what the collector builds is what the agent reads, and nothing else is read."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.commands import (
    ACTIONS,
    OUTCOMES,
    PARAMS,
    REASONS,
    SAFE_VALUES,
    SETTING_CONTROLS,
    SETTING_KINDS,
    SETTINGS,
    STEPS,
    BadParams,
    FirmwareParams,
    RemediateParams,
    RestoreParams,
    RotateParams,
)
from protocol.messages import EvidenceValue

FIRMWARE = FirmwareParams(
    target="hik/DS-2CD2043G2/V5.7.3.bin",
    version="V5.7.3",
    sha256="0" * 64,
    length=1024,
    rollout_id=7,
)
ROTATE = RotateParams(
    escrow_kid="k" * 43, escrow_jwk='{"kty":"OKP"}', username="admin", min_length=20
)


def test_every_action_has_its_params() -> None:
    assert set(PARAMS) == set(ACTIONS)


@pytest.mark.parametrize(
    "params", [FIRMWARE, dataclasses.replace(FIRMWARE, downgrade_approved_by="admin"), ROTATE]
)
def test_what_the_collector_builds_the_agent_reads_back(
    params: FirmwareParams | RotateParams,
) -> None:
    assert type(params).parse(params.to_params()) == params


def test_a_downgrade_approval_travels_only_when_given() -> None:
    assert "downgrade_approved_by" not in FIRMWARE.to_params()
    approved = dataclasses.replace(FIRMWARE, downgrade_approved_by="admin").to_params()
    assert approved["downgrade_approved_by"] == "admin"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"target": "/etc/passwd"}, "relative target path"),
        ({"target": "a/../../b"}, "relative target path"),
        ({"version": ""}, "'version' must be a non-empty string"),
        ({"version": "x" * 4097}, "'version' must be a non-empty string"),
        ({"sha256": None}, "'sha256' must be a non-empty string"),
        ({"length": 0}, "'length' must be an integer"),
        ({"length": True}, "'length' must be an integer"),
        ({"rollout_id": 1.5}, "'rollout_id' must be an integer"),
        ({"downgrade_approved_by": 3}, "'downgrade_approved_by' must be a non-empty string"),
    ],
)
def test_firmware_params_that_do_not_fit_are_refused(
    change: dict[str, EvidenceValue], detail: str
) -> None:
    with pytest.raises(BadParams, match=detail) as caught:
        FirmwareParams.parse(FIRMWARE.to_params() | change)
    assert caught.value.reason == "bad_params"


@pytest.mark.parametrize(("min_length", "fits"), [(7, False), (8, True), (128, True), (129, False)])
def test_rotate_min_length_is_bounded(min_length: int, fits: bool) -> None:
    params = ROTATE.to_params() | {"min_length": min_length}
    if fits:
        assert RotateParams.parse(params).min_length == min_length
    else:
        with pytest.raises(BadParams, match="'min_length' must be an integer in \\[8, 128\\]"):
            RotateParams.parse(params)


REMEDIATE = RemediateParams(
    changes={"telnet": False, "ntp_server": "ntp.example.vn", "time_zone": "Asia/Ho_Chi_Minh"},
    escrow_kid="k" * 43,
    escrow_jwk='{"kty":"OKP"}',
    plan_id=12,
    controls=("COM-06", "SVC-02", "LOG-01"),
)
RESTORE = RestoreParams(original="cmd-1.a_b", plan_id=12)


@pytest.mark.parametrize("params", [REMEDIATE, RESTORE])
def test_remediation_params_travel_unchanged(params: RemediateParams | RestoreParams) -> None:
    assert type(params).parse(params.to_params()) == params


def test_the_settings_vocabulary_is_closed_and_every_setting_closes_a_control() -> None:
    assert set(SETTING_KINDS) == set(SETTING_CONTROLS) == set(SETTINGS)
    assert set(SAFE_VALUES) == {n for n, kind in SETTING_KINDS.items() if kind == "flag"}
    assert all(SETTING_CONTROLS[name] for name in SETTINGS)
    assert set(STEPS) == set(ACTIONS)


def test_changes_travel_in_order_as_set_params() -> None:
    params = REMEDIATE.to_params()
    assert [k for k in params if k.startswith("set.")] == [
        "set.telnet",
        "set.ntp_server",
        "set.time_zone",
    ]
    assert list(RemediateParams.parse(params).changes) == ["telnet", "ntp_server", "time_zone"]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"set.bluetooth": True}, "unknown setting 'bluetooth'"),
        ({"set.telnet": "off"}, "'telnet' takes true or false"),
        ({"set.telnet": 0}, "'telnet' takes true or false"),
        ({"set.ntp_server": "a b"}, "'ntp_server'.*not a valid host"),
        ({"set.ntp_server": "x" * 256}, "'ntp_server'.*not a valid host"),
        ({"set.ntp_server": "<x>"}, "'ntp_server'.*not a valid host"),
        ({"set.ntp_server": True}, "'ntp_server' takes text"),
        ({"set.snmp_community": "public"}, "'snmp_community'.*not a valid community"),
        ({"set.snmp_community": "Private"}, "'snmp_community'.*not a valid community"),
        ({"set.snmp_community": "short"}, "'snmp_community'.*not a valid community"),
        ({"set.time_zone": "../etc/passwd"}, "'time_zone'.*not a valid zone"),
        ({"set.time_zone": "UTC+7 "}, "'time_zone'.*not a valid zone"),
        ({"controls": "SVC-2"}, "'controls' must be"),
        ({"controls": 5}, "'controls' must be"),
        ({"plan_id": -1}, "'plan_id' must be an integer"),
        ({"escrow_kid": ""}, "'escrow_kid' must be a non-empty string"),
    ],
)
def test_remediation_params_that_do_not_fit_are_refused(
    change: dict[str, EvidenceValue], detail: str
) -> None:
    with pytest.raises(BadParams, match=detail) as caught:
        RemediateParams.parse(REMEDIATE.to_params() | change)
    assert caught.value.reason == "bad_params"


def test_a_remediation_changes_at_least_one_setting() -> None:
    params = {k: v for k, v in REMEDIATE.to_params().items() if not k.startswith("set.")}
    with pytest.raises(BadParams, match="no setting to change"):
        RemediateParams.parse(params)


@pytest.mark.parametrize("original", ["", "../x", "a" * 65, "-x"])
def test_a_restore_names_a_command_id(original: str) -> None:
    with pytest.raises(BadParams):
        RestoreParams.parse({"original": original, "plan_id": 1})


def test_remediation_reasons_and_outcomes_are_codes() -> None:
    new = {"unsupported_setting", "snapshot_failed", "snapshot_unknown", "not_applied"}
    assert new | {"rolled_back", "rollback_failed"} <= REASONS
    assert {"applied", "clamped", "ignored", "rolled_back", "unsupported"} <= OUTCOMES
