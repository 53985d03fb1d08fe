"""The command contract shared by the collector and the agents (pure).

The collector signs a ``protocol.Command`` with its command key, protected header ``typ`` =
``CMD_TYP``; the agent answers with ``CommandResult`` messages: ``accepted``, then
``in_progress`` with ``step`` one of ``STEPS[action]`` in order, then one of ``FINAL``.
``reason`` of a ``failed``/``rejected`` result is one of ``REASONS`` (a stable code, the key of
the message catalogue; the detail text is only for logs). The params of each action are the
fields of its class in ``PARAMS``: the collector builds them with ``to_params``, the agent reads
them with ``parse``. See ``docs/adr/0010-firmware-distribution.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Self

from protocol.errors import SchemaViolation
from protocol.messages import EvidenceValue

__all__ = [
    "ACTIONS",
    "CMD_TYP",
    "FINAL",
    "FIRMWARE_APPLY",
    "PARAMS",
    "PASSWORD_ROTATE",
    "REASONS",
    "STEPS",
    "BadParams",
    "FirmwareParams",
    "Params",
    "RotateParams",
]

CMD_TYP: Final = "camwarden-cmd+jws"
FIRMWARE_APPLY: Final = "firmware.apply"
PASSWORD_ROTATE: Final = "password.rotate"  # noqa: S105  # an action name, not a secret
ACTIONS: Final = (FIRMWARE_APPLY, PASSWORD_ROTATE)
STEPS: Final[dict[str, tuple[str, ...]]] = {
    FIRMWARE_APPLY: ("preflight", "downloading", "uploading", "rebooting", "verifying"),
    # "recorder": only for a camera whose recorder logs in with the rotated account
    PASSWORD_ROTATE: ("preflight", "generating", "applying", "verifying", "recorder", "sealing"),
}
FINAL: Final = frozenset({"succeeded", "failed", "rejected"})
_MAX_TEXT = 4096  # the longest string param

Params = dict[str, EvidenceValue]


class BadParams(SchemaViolation):
    """A command's params are missing or of the wrong type for its action."""

    reason = "bad_params"


def _str(params: Mapping[str, EvidenceValue], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise BadParams(f"param {name!r} must be a non-empty string")
    return value


def _opt(params: Mapping[str, EvidenceValue], name: str) -> str | None:
    return None if params.get(name) is None else _str(params, name)


def _int(params: Mapping[str, EvidenceValue], name: str, low: int, high: int) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadParams(f"param {name!r} must be an integer in [{low}, {high}]")
    return value


@dataclass(frozen=True, slots=True)
class FirmwareParams:
    """``firmware.apply`` (``camera_id`` set).

    ``target``: the TUF target path to fetch (``/tuf/metadata/``, ``/tuf/targets/``), relative;
    ``version``: the version the camera must report afterwards; ``sha256``, ``length``: what the
    signed targets metadata says (informational: TUF decides); ``rollout_id``: the campaign;
    ``downgrade_approved_by``: the administrator who approved installing an older version,
    absent otherwise (an agent refuses a downgrade without it)."""

    target: str
    version: str
    sha256: str
    length: int
    rollout_id: int
    downgrade_approved_by: str | None = None

    def to_params(self) -> Params:
        params: Params = {
            "target": self.target,
            "version": self.version,
            "sha256": self.sha256,
            "length": self.length,
            "rollout_id": self.rollout_id,
        }
        if self.downgrade_approved_by:
            params["downgrade_approved_by"] = self.downgrade_approved_by
        return params

    @classmethod
    def parse(cls, params: Mapping[str, EvidenceValue]) -> Self:
        """The params of a received command; ``BadParams`` if they do not fit."""
        target = _str(params, "target")
        if target.startswith("/") or ".." in target.split("/"):
            raise BadParams("param 'target' is not a relative target path")
        return cls(
            target=target,
            version=_str(params, "version"),
            sha256=_str(params, "sha256"),
            length=_int(params, "length", 1, 2**40),
            rollout_id=_int(params, "rollout_id", 0, 2**53),
            downgrade_approved_by=_opt(params, "downgrade_approved_by"),
        )


@dataclass(frozen=True, slots=True)
class RotateParams:
    """``password.rotate`` (``camera_id`` set).

    ``escrow_kid``: the RFC 7638 thumbprint of the escrow public key; ``escrow_jwk``: that key
    (an X25519 OKP JWK as compact JSON text), to which the agent seals the new password (JWE
    ECDH-ES), returning only the sealed text; ``username``: the camera account to rotate;
    ``min_length``: the length of the generated password."""

    escrow_kid: str
    escrow_jwk: str
    username: str
    min_length: int

    def to_params(self) -> Params:
        return {
            "escrow_kid": self.escrow_kid,
            "escrow_jwk": self.escrow_jwk,
            "username": self.username,
            "min_length": self.min_length,
        }

    @classmethod
    def parse(cls, params: Mapping[str, EvidenceValue]) -> Self:
        """The params of a received command; ``BadParams`` if they do not fit."""
        return cls(
            escrow_kid=_str(params, "escrow_kid"),
            escrow_jwk=_str(params, "escrow_jwk"),
            username=_str(params, "username"),
            min_length=_int(params, "min_length", 8, 128),
        )


PARAMS: Final[Mapping[str, type[FirmwareParams | RotateParams]]] = {
    FIRMWARE_APPLY: FirmwareParams,
    PASSWORD_ROTATE: RotateParams,
}

# Reason codes of ``rejected`` (never started) and ``failed`` (started, stopped cleanly).
REASONS: Final = frozenset(
    {
        # rejected: the command itself
        "bad_params",  # params missing or of the wrong type for the action
        "expired",  # now >= expires_at, or issued_at in the future beyond the allowed skew
        "replayed",  # the nonce (or command id) was seen before its expiry
        "unknown_action",
        "unknown_camera",  # camera_id is not in this agent's inventory
        "downgrade_not_approved",  # older than the camera's version, no downgrade_approved_by
        "escrow_key_mismatch",  # escrow_jwk's thumbprint is not escrow_kid
        "escrow_key_not_pinned",  # escrow key is not the organisation's pinned escrow key
        "busy",  # another command is running on the same camera
        # rejected (a rotation the camera's recorder would not follow; nothing changed) or
        # failed (the recorder stopped answering between preflight and its update)
        "recorder_no_credential",  # the camera's recorder is not configured or has no login
        "recorder_unreachable",  # the camera's recorder does not answer
        "recorder_refused",  # the recorder refuses to list or store its channel logins
        "recorder_channel_unknown",  # the recorder lists no channel for the camera
        # failed: the work stopped cleanly
        "metadata_rejected",  # TUF refused the repository metadata (expired, rollback, mix)
        "target_unknown",  # the signed targets metadata does not list the target
        "download_rejected",  # length or hashes differ from the signed metadata, or too large
        "download_failed",  # transport failure that resuming could not overcome
        "wrong_model",  # the signed metadata does not list the camera's model
        "wrong_version",  # the signed metadata's version is not the command's version
        "preflight_failed",  # the camera is not reachable, or its model differs, or no disk
        "camera_refused",  # the camera rejected the upload or the new password
        "camera_unreachable",
        "timeout",  # the camera did not come back within the reboot allowance
        "version_mismatch",  # the camera reports another version after the reboot
        "verify_failed",  # stream, credentials or network settings wrong after the change
        "interrupted",  # the agent stopped at a step that cannot be resumed safely
        "vault_failed",  # the new credential could not be stored
        "recorder_update_failed",  # the recorder did not follow: the camera's old password back
        "recorder_out_of_sync",  # neither: the camera keeps the new password (sealed, returned)
        "internal",
    }
)
