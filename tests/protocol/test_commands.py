"""Command params: what the collector builds is what the agent reads, and nothing else is read."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.commands import ACTIONS, PARAMS, BadParams, FirmwareParams, RotateParams
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
