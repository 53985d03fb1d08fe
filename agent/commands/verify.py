"""Command verification (pure): signature with the pinned collector key, ``typ``, addressing,
freshness, action and camera, params. The order is fixed and nothing is parsed before the
signature holds (``protocol.envelope``). The replay check is the caller's next step
(``agent.commands.replay``): it needs state.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc.jwk import OKPKey

from agent.commands.errors import CommandRefused
from protocol.commands import CMD_TYP, FIRMWARE_APPLY, PASSWORD_ROTATE
from protocol.envelope import DEFAULT_MAX_BYTES, verify
from protocol.errors import ProtocolError, UnknownKey
from protocol.messages import Command, EvidenceValue, decode_collector_message

__all__ = [
    "FirmwareParams",
    "RotateParams",
    "firmware_params",
    "rotate_params",
    "verify_command",
]

MAX_COMMAND_BYTES = 64 * 1024


def verify_command(
    token: bytes,
    key: OKPKey,
    *,
    agent_id: str,
    site: str,
    cameras: Collection[str],
    now: datetime,
    max_skew: timedelta,
) -> Command:
    """The verified command, or ``CommandRefused``."""

    def resolve(kid: str) -> OKPKey:
        if kid != key.thumbprint():
            raise UnknownKey(f"key {kid} is not the pinned collector key")
        return key

    try:
        verified = verify(token, resolve, min(DEFAULT_MAX_BYTES, MAX_COMMAND_BYTES))
        if verified.typ != CMD_TYP:
            raise CommandRefused(
                "wrong_typ", f"typ {verified.typ!r} is not {CMD_TYP}", answer=False
            )
        message = decode_collector_message(verified.payload)
    except ProtocolError as exc:
        raise CommandRefused(exc.reason, exc.detail, answer=False) from exc
    if not isinstance(message, Command):
        raise CommandRefused("not_a_command", "a signed ack, not a command", answer=False)
    if (message.agent_id, message.site) != (agent_id, site):
        raise CommandRefused(
            "misaddressed", f"for {message.site}/{message.agent_id}, not this agent", answer=False
        )
    if message.issued_at > now + max_skew:
        raise CommandRefused("expired", f"issued in the future ({message.issued_at.isoformat()})")
    if now >= message.expires_at:
        raise CommandRefused("expired", f"expired at {message.expires_at.isoformat()}")
    if message.action not in (FIRMWARE_APPLY, PASSWORD_ROTATE):
        raise CommandRefused("unknown_action", f"action {message.action!r} is not supported")
    if message.camera_id is None or message.camera_id not in cameras:
        raise CommandRefused("unknown_camera", f"camera {message.camera_id!r} is not ours")
    if message.action == FIRMWARE_APPLY:
        firmware_params(message.params)
    else:
        rotate_params(message.params)
    return message


def _str(params: dict[str, EvidenceValue], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise CommandRefused("bad_params", f"param {name!r} must be a non-empty string")
    return value


def _opt(params: dict[str, EvidenceValue], name: str) -> str | None:
    return None if params.get(name) is None else _str(params, name)


def _int(params: dict[str, EvidenceValue], name: str, low: int, high: int) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandRefused("bad_params", f"param {name!r} must be an integer in [{low}, {high}]")
    return value


@dataclass(frozen=True, slots=True)
class FirmwareParams:
    target: str
    version: str
    sha256: str
    length: int
    rollout_id: int
    downgrade_approved_by: str | None


@dataclass(frozen=True, slots=True)
class RotateParams:
    escrow_kid: str
    escrow_jwk: str
    username: str
    min_length: int


def firmware_params(params: dict[str, EvidenceValue]) -> FirmwareParams:
    target = _str(params, "target")
    if target.startswith("/") or ".." in target.split("/"):
        raise CommandRefused("bad_params", "param 'target' is not a relative target path")
    return FirmwareParams(
        target=target,
        version=_str(params, "version"),
        sha256=_str(params, "sha256"),
        length=_int(params, "length", 1, 2**40),
        rollout_id=_int(params, "rollout_id", 0, 2**53),
        downgrade_approved_by=_opt(params, "downgrade_approved_by"),
    )


def rotate_params(params: dict[str, EvidenceValue]) -> RotateParams:
    return RotateParams(
        escrow_kid=_str(params, "escrow_kid"),
        escrow_jwk=_str(params, "escrow_jwk"),
        username=_str(params, "username"),
        min_length=_int(params, "min_length", 8, 128),
    )
