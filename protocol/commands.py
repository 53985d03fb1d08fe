"""The command contract shared by the collector and the agents (pure constants).

The collector signs a ``protocol.Command`` with its command key, protected header ``typ`` =
``CMD_TYP``; the agent answers with ``CommandResult`` messages: ``accepted``, then
``in_progress`` with ``step`` one of ``STEPS[action]`` in order, then one of ``FINAL``.
``reason`` of a ``failed``/``rejected`` result is one of ``REASONS`` (a stable code, the key of
the message catalogue; the detail text is only for logs). See ``server/firmware/commands.py``
for the params of each action and ``docs/adr/0010-firmware-distribution.md``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACTIONS",
    "CMD_TYP",
    "FINAL",
    "FIRMWARE_APPLY",
    "PASSWORD_ROTATE",
    "REASONS",
    "STEPS",
]

CMD_TYP: Final = "camwarden-cmd+jws"
FIRMWARE_APPLY: Final = "firmware.apply"
PASSWORD_ROTATE: Final = "password.rotate"  # noqa: S105  # an action name, not a secret
ACTIONS: Final = (FIRMWARE_APPLY, PASSWORD_ROTATE)
STEPS: Final[dict[str, tuple[str, ...]]] = {
    FIRMWARE_APPLY: ("preflight", "downloading", "uploading", "rebooting", "verifying"),
    PASSWORD_ROTATE: ("preflight", "generating", "applying", "verifying", "sealing"),
}
FINAL: Final = frozenset({"succeeded", "failed", "rejected"})

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
        "internal",
    }
)
