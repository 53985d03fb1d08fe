"""Command verification (pure): signature with the pinned collector key, ``typ``, addressing,
freshness, action and camera, params. The order is fixed and nothing is parsed before the
signature holds (``protocol.envelope``). The replay check is the caller's next step
(``agent.commands.replay``): it needs state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TypeVar

from joserfc.jwk import OKPKey

from agent.commands.errors import CommandRefused
from protocol.commands import (
    CAMERALESS,
    CMD_TYP,
    PARAMS,
    BadParams,
    FirmwareParams,
    Params,
    RemediateParams,
    RestoreParams,
    RotateParams,
    SurveyParams,
)
from protocol.envelope import DEFAULT_MAX_BYTES, verify
from protocol.errors import ProtocolError, UnknownKey
from protocol.messages import Command, decode_collector_message

__all__ = [
    "FirmwareParams",
    "RemediateParams",
    "RestoreParams",
    "RotateParams",
    "SurveyParams",
    "firmware_params",
    "remediate_params",
    "restore_params",
    "rotate_params",
    "survey_params",
    "verify_command",
]

MAX_COMMAND_BYTES = 64 * 1024
P = TypeVar("P")


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
    action = PARAMS.get(message.action)
    if action is None:
        raise CommandRefused("unknown_action", f"action {message.action!r} is not supported")
    if message.action in CAMERALESS:
        if message.camera_id is not None:
            raise CommandRefused("bad_params", f"{message.action} names no camera")
    elif message.camera_id is None or message.camera_id not in cameras:
        raise CommandRefused("unknown_camera", f"camera {message.camera_id!r} is not ours")
    _params(action.parse, message.params)
    return message


def _params(parse: Callable[[Params], P], params: Params) -> P:
    try:
        return parse(params)
    except BadParams as exc:
        raise CommandRefused(exc.reason, exc.detail) from exc


def firmware_params(params: Params) -> FirmwareParams:
    return _params(FirmwareParams.parse, params)


def rotate_params(params: Params) -> RotateParams:
    return _params(RotateParams.parse, params)


def remediate_params(params: Params) -> RemediateParams:
    return _params(RemediateParams.parse, params)


def restore_params(params: Params) -> RestoreParams:
    return _params(RestoreParams.parse, params)


def survey_params(params: Params) -> SurveyParams:
    return _params(SurveyParams.parse, params)
