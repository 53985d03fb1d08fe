"""Signed commands to agents: the action/param contract and the result steps (pure).

The wire constants (action names, steps, final statuses, ``typ``, reason codes) live in
``protocol.commands``, shared with the agent; they are re-exported here.

A command is a ``protocol.Command`` signed with the collector's command key (the key agents
pinned at enrollment as ``collector_jwk``), protected header ``typ`` = ``camwarden-cmd+jws``,
published QoS 1 on ``camwarden/v1/<site>/<agent_id>/cmd``. Agents must verify the signature,
that ``agent_id``/``site`` are their own, ``issued_at <= now < expires_at`` and that the
``nonce`` was never seen before expiry (replay), and answer with ``CommandResult`` messages on
their ``cmd-result`` channel carrying the same ``command_id``.

The params of each action are defined once, with the agent, in ``protocol.commands``
(``FirmwareParams``, ``RotateParams``): built here with ``to_params``, read there with ``parse``.

Results: ``status`` ``accepted`` (first, after the checks above), then ``in_progress`` with
``step`` one of ``STEPS[action]`` in order, then ``succeeded`` or ``failed`` (``reason`` a stable
code such as ``version_mismatch``, ``download_rejected``, ``camera_refused``, ``timeout``); or
``rejected`` (never started: bad signature, expired, replayed, unknown action, downgrade not
approved). ``firmware.apply`` succeeds with ``details.version`` = the version the camera reports
after reboot; ``password.rotate`` succeeds with ``details.sealed`` (JWE compact),
``details.escrow_kid``, ``details.via`` (the API that took the password: ``hikvision``,
``dahua``, ``axis`` or ``onvif``) and ``details.verified`` (where new-works/old-fails was
checked, comma-separated).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from joserfc.jwk import OKPKey

from protocol import Command, CommandResult, encode, sign
from protocol.commands import (
    CMD_TYP,
    FINAL,
    FIRMWARE_APPLY,
    OUTCOMES,
    PASSWORD_ROTATE,
    SETTINGS_APPLY,
    SETTINGS_RESTORE,
    STEPS,
)
from protocol.messages import EvidenceValue

__all__ = [
    "CMD_TYP",
    "FINAL",
    "FIRMWARE_APPLY",
    "PASSWORD_ROTATE",
    "SETTINGS_APPLY",
    "SETTINGS_RESTORE",
    "STEPS",
    "new_command",
    "outcome",
    "setting_results",
    "signed",
]
REAUDIT: Final = ("pass", "fail", "inconclusive")  # details ``reaudit.<verdict>``


def new_command(
    action: str,
    *,
    agent_id: str,
    site: str,
    camera_id: str | None,
    params: dict[str, EvidenceValue],
    now: datetime,
    ttl: timedelta,
) -> Command:
    return Command(
        command_id=f"cmd-{secrets.token_hex(12)}",
        agent_id=agent_id,
        site=site,
        action=action,
        issued_at=now,
        expires_at=now + ttl,
        nonce=secrets.token_urlsafe(24),
        camera_id=camera_id,
        params=params,
    )


def signed(command: Command, key: OKPKey) -> bytes:
    return sign(encode(command), key, typ=CMD_TYP).encode("ascii")


def outcome(result: CommandResult, params: dict[str, object]) -> tuple[bool, str | None] | None:
    """For a final result: (succeeded, reason). A firmware success whose reported version is
    not the expected one counts as a failure (``version_mismatch``). None while in progress."""
    if result.status not in FINAL:
        return None
    if result.status != "succeeded":
        return False, result.reason or result.status
    expected = params.get("version")
    if expected is not None and result.details.get("version") != expected:
        return False, "version_mismatch"
    return True, None


@dataclass(frozen=True, slots=True)
class SettingResults:
    """What a ``settings.apply`` or ``settings.restore`` result reports (``RemediateParams``):
    per setting ``{outcome, asked, got}``, the controls by re-audit verdict, the sealed
    snapshot (JWE compact) when it carries one."""

    settings: dict[str, dict[str, Any]]
    reaudit: dict[str, list[str]]
    sealed: str | None


def setting_results(details: Mapping[str, EvidenceValue]) -> SettingResults:
    """The settings results of a result's details; an outcome outside ``OUTCOMES`` is dropped."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in details.items():
        name = key.removeprefix("outcome.")
        if name != key and isinstance(value, str) and value in OUTCOMES:
            found[name] = {
                "outcome": value,
                "asked": details.get(f"asked.{name}"),
                "got": details.get(f"got.{name}"),
            }
    reaudit = {}
    for verdict in REAUDIT:
        controls = details.get(f"reaudit.{verdict}")
        if isinstance(controls, str) and controls:
            reaudit[verdict] = controls.split(",")
    sealed = details.get("sealed")
    return SettingResults(found, reaudit, sealed if isinstance(sealed, str) else None)
