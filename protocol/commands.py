"""The command contract shared by the collector and the agents (pure).

The collector signs a ``protocol.Command`` with its command key, protected header ``typ`` =
``CMD_TYP``; the agent answers with ``CommandResult`` messages: ``accepted``, then
``in_progress`` with ``step`` one of ``STEPS[action]`` in order, then one of ``FINAL``.
``reason`` of a ``failed``/``rejected`` result is one of ``REASONS`` (a stable code, the key of
the message catalogue; the detail text is only for logs). The params of each action are the
fields of its class in ``PARAMS``: the collector builds them with ``to_params``, the agent reads
them with ``parse``. See ``docs/adr/0010-firmware-distribution.md``; remediation
(``settings.apply``, ``settings.restore``): ``docs/adr/0033-remediation.md``; the survey action's
params and result messages are in ``protocol.survey`` (``docs/adr/0034-isp-survey.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, Self, cast

from protocol.errors import BadParams
from protocol.messages import EvidenceValue
from protocol.survey import SURVEY, SurveyParams

__all__ = [
    "ACTIONS",
    "CAMERALESS",
    "CMD_TYP",
    "FINAL",
    "FIRMWARE_APPLY",
    "OUTCOMES",
    "PARAMS",
    "PASSWORD_ROTATE",
    "REASONS",
    "ROLLING_BACK",
    "SAFE_VALUES",
    "SETTINGS",
    "SETTINGS_APPLY",
    "SETTINGS_RESTORE",
    "SETTING_CONTROLS",
    "SETTING_KINDS",
    "STEPS",
    "SURVEY",
    "BadParams",
    "FirmwareParams",
    "Outcome",
    "Params",
    "RemediateParams",
    "RestoreParams",
    "RotateParams",
    "SettingName",
    "SettingValue",
    "SurveyParams",
    "check_setting_value",
]

CMD_TYP: Final = "camwarden-cmd+jws"
FIRMWARE_APPLY: Final = "firmware.apply"
PASSWORD_ROTATE: Final = "password.rotate"  # noqa: S105  # an action name, not a secret
SETTINGS_APPLY: Final = "settings.apply"
SETTINGS_RESTORE: Final = "settings.restore"
ACTIONS: Final = (FIRMWARE_APPLY, PASSWORD_ROTATE, SETTINGS_APPLY, SETTINGS_RESTORE, SURVEY)
# actions that name no camera (``camera_id`` absent): the survey sweeps addresses, not cameras
CAMERALESS: Final = frozenset({SURVEY})
# ``rolling_back`` is the one step out of order: after a step of ``settings.apply`` failed
# (a write refused, the camera lost half-way), the agent writes the snapshot back; the final
# result is then ``failed`` with reason ``rolled_back`` (or ``rollback_failed``).
ROLLING_BACK: Final = "rolling_back"
STEPS: Final[dict[str, tuple[str, ...]]] = {
    FIRMWARE_APPLY: ("preflight", "downloading", "uploading", "rebooting", "verifying"),
    # "recorder": only for a camera whose recorder logs in with the rotated account
    PASSWORD_ROTATE: ("preflight", "generating", "applying", "verifying", "recorder", "sealing"),
    SETTINGS_APPLY: ("preflight", "snapshot", "applying", "reading_back", "reaudit"),
    SETTINGS_RESTORE: ("preflight", "applying", "reading_back", "reaudit"),
    SURVEY: ("preflight", "sweeping", "reporting"),
}
FINAL: Final = frozenset({"succeeded", "failed", "rejected"})
_MAX_TEXT = 4096  # the longest string param

Params = dict[str, EvidenceValue]


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


# The settings a remediation may change: a closed vocabulary (the collector builds plans from
# it, the agent refuses any other name). Kinds: ``flag`` true/false (for a service: true = it
# runs); ``host`` an NTP server name or address; ``community`` an SNMP v1/v2c community other
# than the well-known ones; ``zone`` an IANA time zone name ("Asia/Ho_Chi_Minh").
SettingName = Literal[
    "telnet",
    "ssh",
    "ftp",
    "upnp",
    "p2p",
    "ddns",
    "snmp",
    "snmp_community",
    "ntp",
    "ntp_server",
    "time_zone",
    "http_digest_only",
    "rtsp_auth",
    "rtsp_digest_only",
    "onvif_auth",
    "discoverable",
]
SettingValue = bool | str
SettingKind = Literal["flag", "host", "community", "zone"]
SETTING_KINDS: Final[Mapping[SettingName, SettingKind]] = {
    "telnet": "flag",  # telnet daemon
    "ssh": "flag",  # SSH daemon
    "ftp": "flag",  # FTP server on the camera
    "upnp": "flag",  # UPnP (SSDP announcements, IGD port mappings)
    "p2p": "flag",  # the vendor's P2P cloud relay (Hik-Connect/EZVIZ, Dahua P2P, AVHS)
    "ddns": "flag",  # dynamic DNS client
    "snmp": "flag",  # the SNMP v1/v2c agent (v3 is not touched)
    "snmp_community": "community",  # the v1/v2c read community
    "ntp": "flag",  # the clock follows NTP (false: set by hand)
    "ntp_server": "host",  # the first NTP server
    "time_zone": "zone",
    "http_digest_only": "flag",  # the web/API refuses Basic authentication
    "rtsp_auth": "flag",  # RTSP asks for credentials before any stream
    "rtsp_digest_only": "flag",  # RTSP refuses Basic authentication
    "onvif_auth": "flag",  # ONVIF asks for credentials (no anonymous access)
    "discoverable": "flag",  # answers WS-Discovery probes
}
SETTINGS: Final[tuple[SettingName, ...]] = tuple(SETTING_KINDS)
# The baseline controls a setting's change closes (the re-audit runs their checks again).
SETTING_CONTROLS: Final[Mapping[SettingName, tuple[str, ...]]] = {
    "telnet": ("COM-06", "SVC-02"),
    "ssh": ("SVC-03",),
    "ftp": ("COM-06",),
    "upnp": ("SVC-04",),
    "p2p": ("SVC-06",),
    "ddns": ("SVC-07",),
    "snmp": ("COM-05",),
    "snmp_community": ("COM-05",),
    "ntp": ("LOG-01",),
    "ntp_server": ("LOG-01",),
    "time_zone": ("LOG-01",),
    "http_digest_only": ("AUTH-07",),
    "rtsp_auth": ("AUTH-08",),
    "rtsp_digest_only": ("AUTH-09",),
    "onvif_auth": ("AUTH-10",),
    "discoverable": ("SVC-08",),
}
# The value that closes the control, for the flags (text settings take the site's value).
SAFE_VALUES: Final[Mapping[SettingName, bool]] = {
    "telnet": False,
    "ssh": False,
    "ftp": False,
    "upnp": False,
    "p2p": False,
    "ddns": False,
    "snmp": False,
    "ntp": True,
    "http_digest_only": True,
    "rtsp_auth": True,
    "rtsp_digest_only": True,
    "onvif_auth": True,
    "discoverable": False,
}
WEAK_COMMUNITIES: Final = frozenset({"public", "private"})
_HOST = re.compile(r"^[A-Za-z0-9_.:%-]{1,255}$")  # a DNS name, IPv4 or IPv6 address
_COMMUNITY = re.compile(r"^[A-Za-z0-9_.!@-]{8,32}$")  # safe in a query string and XML
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}$")
_CONTROL = re.compile(r"^[A-Z]{2,5}-[0-9]{2}$")
_COMMAND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # protocol.messages.Name

# What ``settings.apply`` reports per setting (details ``outcome.<setting>``):
Outcome = Literal[
    "applied",  # read back as asked
    "unchanged",  # already at the asked value: nothing written
    "clamped",  # the camera answered OK and stored another value (``got.<setting>``)
    "ignored",  # the camera answered OK and kept the old value
    "unsupported",  # this camera's APIs cannot write it (the command is then rejected)
    "not_read",  # written, but the camera does not report it back: not verified
    "rolled_back",  # written, then restored to the snapshot after a failed step
    "not_restored",  # the rollback could not restore it (``got.<setting>`` as read)
]
OUTCOMES: Final[frozenset[str]] = frozenset(
    {
        "applied",
        "unchanged",
        "clamped",
        "ignored",
        "unsupported",
        "not_read",
        "rolled_back",
        "not_restored",
    }
)


def check_setting_value(name: str, value: EvidenceValue) -> SettingValue:
    """``value`` as a value of setting ``name``; ``BadParams`` for an unknown name or value."""
    if name not in SETTING_KINDS:
        raise BadParams(f"unknown setting {name[:40]!r}")
    kind = SETTING_KINDS[cast("SettingName", name)]
    if kind == "flag":
        if not isinstance(value, bool):
            raise BadParams(f"setting {name!r} takes true or false")
        return value
    if not isinstance(value, str):
        raise BadParams(f"setting {name!r} takes text")
    valid = {
        "host": _HOST.fullmatch(value) is not None,
        "community": _COMMUNITY.fullmatch(value) is not None
        and value.lower() not in WEAK_COMMUNITIES,
        "zone": _ZONE.fullmatch(value) is not None,
    }[kind]
    if not valid:
        raise BadParams(f"setting {name!r}: {value[:40]!r} is not a valid {kind}")
    return value


def _controls(params: Mapping[str, EvidenceValue]) -> tuple[str, ...]:
    raw = params.get("controls", "")
    if not isinstance(raw, str) or len(raw) > _MAX_TEXT:
        raise BadParams("param 'controls' must be a comma-separated list of control ids")
    found = tuple(c for c in raw.split(",") if c)
    if any(_CONTROL.fullmatch(c) is None for c in found):
        raise BadParams("param 'controls' must be a comma-separated list of control ids")
    return found


@dataclass(frozen=True, slots=True)
class RemediateParams:
    """``settings.apply`` (``camera_id`` set).

    ``changes``: setting -> value, in the order the agent writes them (1 to ``len(SETTINGS)``
    of the closed vocabulary above), carried as params ``set.<setting>``; ``escrow_kid``,
    ``escrow_jwk``: the organisation's escrow key, as for ``password.rotate``, to which the
    agent seals the snapshot of the settings it touches; ``plan_id``: the collector's plan;
    ``controls``: the controls the plan means to close (comma-separated), re-audited with
    those of ``SETTING_CONTROLS``.

    Result details (``in_progress`` of step ``applying`` carries the first two already)::

        sealed              JWE (ECDH-ES+A256KW, A256GCM, cty camwarden-settings) of
                            {camera_id, command_id, taken_at, settings: {name: value}}
        escrow_kid
        outcome.<setting>   one of OUTCOMES
        asked.<setting>     for clamped/ignored/not_restored: what was asked
        got.<setting>       for clamped/ignored/not_restored: what the camera reports
                            (never for ``snmp_community``: a secret, only in ``sealed``)
        reaudit.pass        controls whose re-run checks all pass (comma-separated)
        reaudit.fail        controls a re-run check still fails
        reaudit.inconclusive  controls the re-run could not judge
    The re-audit's findings also go out as an ordinary status report."""

    changes: Mapping[SettingName, SettingValue]
    escrow_kid: str
    escrow_jwk: str
    plan_id: int
    controls: tuple[str, ...] = ()

    def to_params(self) -> Params:
        params: Params = {f"set.{name}": value for name, value in self.changes.items()}
        params |= {
            "escrow_kid": self.escrow_kid,
            "escrow_jwk": self.escrow_jwk,
            "plan_id": self.plan_id,
            "controls": ",".join(self.controls),
        }
        return params

    @classmethod
    def parse(cls, params: Mapping[str, EvidenceValue]) -> Self:
        """The params of a received command; ``BadParams`` if they do not fit."""
        changes: dict[SettingName, SettingValue] = {}
        for key, value in params.items():
            if key.startswith("set."):
                name = key.removeprefix("set.")
                changes[cast("SettingName", name)] = check_setting_value(name, value)
        if not changes:
            raise BadParams("no setting to change")
        return cls(
            changes=changes,
            escrow_kid=_str(params, "escrow_kid"),
            escrow_jwk=_str(params, "escrow_jwk"),
            plan_id=_int(params, "plan_id", 0, 2**53),
            controls=_controls(params),
        )


@dataclass(frozen=True, slots=True)
class RestoreParams:
    """``settings.restore`` (``camera_id`` set): write back the snapshot the agent kept for
    the ``settings.apply`` command ``original`` (its ``command_id``) on the same camera.
    ``plan_id``: the collector's plan. Details: ``outcome.<setting>`` (``applied``,
    ``unchanged``, ``clamped``, ``ignored``, ``not_read``) with ``asked``/``got`` as above and
    the ``reaudit.*`` summary."""

    original: str
    plan_id: int

    def to_params(self) -> Params:
        return {"original": self.original, "plan_id": self.plan_id}

    @classmethod
    def parse(cls, params: Mapping[str, EvidenceValue]) -> Self:
        """The params of a received command; ``BadParams`` if they do not fit."""
        original = _str(params, "original")
        if _COMMAND_ID.fullmatch(original) is None:
            raise BadParams("param 'original' is not a command id")
        return cls(original=original, plan_id=_int(params, "plan_id", 0, 2**53))


AnyParams = FirmwareParams | RotateParams | RemediateParams | RestoreParams | SurveyParams
PARAMS: Final[Mapping[str, type[AnyParams]]] = {
    FIRMWARE_APPLY: FirmwareParams,
    PASSWORD_ROTATE: RotateParams,
    SETTINGS_APPLY: RemediateParams,
    SETTINGS_RESTORE: RestoreParams,
    SURVEY: SurveyParams,
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
        "busy",  # another command is running on the same camera (or another survey runs)
        "prefix_not_allowed",  # a survey prefix lies outside the agent's configured range
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
        "deadline",  # a survey's deadline_s ended the sweep (its summary says incomplete)
        "vault_failed",  # the new credential could not be stored
        "recorder_update_failed",  # the recorder did not follow: the camera's old password back
        "recorder_out_of_sync",  # neither: the camera keeps the new password (sealed, returned)
        "internal",
        # settings.apply / settings.restore
        "unsupported_setting",  # rejected: this camera's APIs cannot write a setting asked for
        "snapshot_failed",  # failed: the settings could not be read before the change
        "snapshot_unknown",  # rejected: no snapshot kept for that command on this camera
        "not_applied",  # failed: the camera ignored or clamped a setting (others stay applied)
        "rolled_back",  # failed: a step failed; the camera was restored to its snapshot
        "rollback_failed",  # failed: a step failed and the snapshot could not be restored
    }
)
