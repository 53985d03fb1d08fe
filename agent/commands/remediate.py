"""The ``settings.apply`` (remediation) and ``settings.restore`` actions.

::

    preflight     escrow key checked (``agent.commands.escrow``); the camera's adapter, found
                  with the agent's credential as the audit finds it (``identify``), with
                  ONVIF beside it, can write every setting asked for (each setting through
                  the vendor's API when it can, else ONVIF: SetDiscoveryMode, SetDynamicDNS),
                  else ``rejected: unsupported_setting``
                  with ``outcome.<setting> = unsupported`` (nothing sent to the camera)
    snapshot      the settings to change, read from the camera (a flag it does not report
                  cannot be restored: ``failed: snapshot_failed``; a text setting it does
                  not report is one it has none of, e.g. no NTP server); kept in the credential
                  store (encrypted at rest like the vault) under the camera, keyed by the
                  command id, and sealed to the escrow key
    applying      announced with ``sealed`` and ``escrow_kid`` before the first write; the
                  settings not already at the asked value, in the command's order, through
                  the vendor API (ISAPI PUT, configManager setConfig, param.cgi update)
    reading_back  every setting read again: ``applied`` (as asked), ``ignored`` (the old
                  value), ``clamped`` (another value), ``not_read`` (not reported back)
    reaudit       the checks of the affected controls run again (``Auditor.recheck``); the
                  daemon reports their findings as usual; the summary goes in the details
    rolling_back  after a failed write or read-back (or a restart in the middle): the snapshot
                  written back and read again; ``failed: rolled_back`` when the camera is back
                  at its snapshot, ``failed: rollback_failed`` (``not_restored``) otherwise

A camera that ignored or clamped a setting ends ``failed: not_applied``: the settings it did
apply stay (they close findings), the others are shown with ``asked``/``got``. The
``settings.restore`` action writes back a kept snapshot (``preflight``, ``applying``,
``reading_back``, ``reaudit``); a snapshot not kept (another camera, or dropped as older than
the last ``KEPT_SNAPSHOTS`` of the camera) is ``rejected: snapshot_unknown``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from joserfc.jwk import OKPKey

from agent.commands.context import Details, Run
from agent.commands.errors import StepFailed
from agent.commands.escrow import escrow_key, seal
from agent.commands.verify import remediate_params, restore_params
from agent.vendors.base import Adapter, AdapterConfig, CameraError
from agent.vendors.models import TEXT_SETTINGS, Setting, SettingValue
from protocol.commands import ROLLING_BACK, SETTING_CONTROLS, Outcome
from protocol.messages import Camera

log = logging.getLogger(__name__)

KEPT_SNAPSHOTS: Final = 16  # per camera, the newest; a restore of an older one is refused
_EARLY = (None, "preflight", "snapshot")
_CHANGING = ("applying", "reading_back", ROLLING_BACK)
Values = dict[Setting, SettingValue]
SECRET: Final = frozenset({Setting.SNMP_COMMUNITY})  # its value only in the sealed snapshot


def _shown(details: Details, setting: Setting, asked: SettingValue | None, got: Values) -> None:
    """``asked``/``got`` of a setting the camera did not take, unless its value is secret."""
    if setting in SECRET:
        return
    details[f"asked.{setting.value}"] = "" if asked is None else _text(asked)
    if setting in got:
        details[f"got.{setting.value}"] = _text(got[setting])


def _text(value: SettingValue) -> str:
    return value if isinstance(value, str) else str(value).lower()


def _settings(names: Iterable[str]) -> list[Setting]:
    """The adapter's settings of protocol names; ``unsupported_setting`` for names no adapter
    knows (the vocabulary is wider than what the adapters write today)."""
    known = {s.value: s for s in Setting}
    missing = [n for n in names if n not in known]
    if missing:
        raise StepFailed(
            "unsupported_setting",
            f"cannot set {', '.join(missing)}",
            status="rejected",
            details={f"outcome.{n}": "unsupported" for n in missing},
        )
    return [known[n] for n in names]


@dataclass(frozen=True, slots=True)
class _Writers:
    """The camera's adapters in order of preference (its vendor's API, then ONVIF) and which
    one writes each setting: the first that can."""

    adapters: tuple[Adapter, ...]

    def owner(self, setting: Setting) -> Adapter | None:
        return next((a for a in self.adapters if setting in a.settable), None)

    def check(self, wanted: Iterable[Setting]) -> None:
        """``unsupported_setting`` (before any write) for a setting no adapter writes."""
        missing = [s.value for s in wanted if self.owner(s) is None]
        if missing:
            names = "+".join(a.vendor for a in self.adapters)
            raise StepFailed(
                "unsupported_setting",
                f"{names} cannot set {', '.join(missing)}",
                status="rejected",
                details={f"outcome.{n}": "unsupported" for n in missing},
            )

    def _split(self, settings: Iterable[Setting]) -> dict[Adapter, list[Setting]]:
        split: dict[Adapter, list[Setting]] = {a: [] for a in self.adapters}
        for setting in settings:
            owner = self.owner(setting)
            if owner is not None:
                split[owner].append(setting)
        return {a: owned for a, owned in split.items() if owned}

    async def read(self, wanted: Iterable[Setting]) -> Values:
        """What the camera reports of ``wanted``, each from the adapter that writes it."""
        values: Values = {}
        for adapter, owned in self._split(wanted).items():
            found = (await adapter.read_settings()).values
            values.update({s: found[s] for s in owned if s in found})
        return values

    async def write(self, changes: Mapping[Setting, SettingValue]) -> None:
        """``changes`` in their order within each adapter, the vendor's API first."""
        for adapter, owned in self._split(changes).items():
            await adapter.write_settings({s: changes[s] for s in owned})

    async def close(self) -> None:
        for adapter in self.adapters:
            await adapter.close()


async def _writers(run: Run) -> _Writers:
    """The camera's adapter, found as the audit finds it (the configured vendor first, then
    the others; ONVIF last) with the agent's credential, and ONVIF beside a vendor's API.
    Preflight fails when none answers."""
    from agent.audit.identify import identify  # noqa: PLC0415  # the vendor APIs: when used
    from agent.vendors.onvif.adapter import OnvifAdapter  # noqa: PLC0415

    ctx = run.context
    config = AdapterConfig(timeout_s=ctx.config.firmware.camera_timeout_s)
    target, credential = ctx.config.target(run.target), run.credential()
    try:
        found = await identify(target, config, credential)
    except CameraError as exc:
        raise StepFailed("preflight_failed", f"camera: {exc.code}") from exc
    if found.adapter is None:
        raise StepFailed("preflight_failed", "no vendor API or ONVIF answered")
    if isinstance(found.adapter, OnvifAdapter):
        return _Writers((found.adapter,))
    return _Writers((found.adapter, OnvifAdapter(target, config, credential)))


# the snapshots kept on the agent: one record per camera, command id -> settings (newest last)


def _record_ref(camera_id: str) -> str:
    return f"settings-snapshots/{camera_id}"


def _kept(run: Run) -> dict[str, dict[str, SettingValue]]:
    text = run.context.credentials.record(_record_ref(run.target.id))
    kept: dict[str, dict[str, SettingValue]] = json.loads(text) if text else {}
    return kept


async def _keep(run: Run, values: Values) -> None:
    kept = _kept(run)
    kept.pop(run.command.command_id, None)
    kept[run.command.command_id] = {s.value: v for s, v in values.items()}
    newest = dict(list(kept.items())[-KEPT_SNAPSHOTS:])
    text = json.dumps(newest)
    await asyncio.to_thread(run.context.credentials.set_record, _record_ref(run.target.id), text)


def _snapshot_of(run: Run, command_id: str) -> Values | None:
    found = _kept(run).get(command_id)
    return None if found is None else {Setting(k): v for k, v in found.items()}


# the steps


def _outcomes(asked: Values, before: Values, got: Values) -> tuple[Details, bool]:
    """Per setting: outcome, and asked/got when the camera did not take it; True if all
    were taken (applied or unchanged; ``not_read`` is shown, not a failure)."""
    details: Details = {}
    taken = True
    for setting, value in asked.items():
        name = setting.value
        outcome: Outcome
        if setting not in got:
            outcome = "not_read"
        elif got[setting] == value:
            outcome = "unchanged" if before.get(setting) == value else "applied"
        else:
            outcome = "ignored" if got[setting] == before.get(setting) else "clamped"
            _shown(details, setting, value, got)
            taken = False
        details[f"outcome.{name}"] = outcome
    return details, taken


async def _reaudit(run: Run, settings: Iterable[Setting], controls: Iterable[str]) -> Details:
    """The checks of the affected controls, again; their findings reported as usual."""
    from agent.audit.auditor import Auditor  # noqa: PLC0415  # the checks: only when used

    wanted = set(controls)
    for setting in settings:
        wanted.update(SETTING_CONTROLS[setting.value])
    ctx = run.context
    ref = run.target.credentials_ref or ""
    auditor = Auditor(
        ctx.config, credentials={ref: run.credential()}, site_key=None, persist_inventory=False
    )
    camera = await auditor.recheck(run.target.id, wanted)
    if ctx.reaudited is not None:
        await ctx.reaudited(camera)
    return _summary(camera, wanted)


def _summary(camera: Camera, controls: Iterable[str]) -> Details:
    verdicts: dict[str, set[str]] = {c: set() for c in controls}
    for finding in camera.findings:
        for control in finding.controls:
            if control in verdicts:
                verdicts[control].add(finding.status)
    grouped: dict[str, list[str]] = {"pass": [], "fail": [], "inconclusive": []}
    for control, statuses in sorted(verdicts.items()):
        if "fail" in statuses:
            grouped["fail"].append(control)
        elif "pass" in statuses and statuses <= {"pass", "not_applicable"}:
            grouped["pass"].append(control)
        else:  # no check judged it (not run, out of scope, inconclusive): never called clean
            grouped["inconclusive"].append(control)
    return {f"reaudit.{k}": ",".join(v) for k, v in grouped.items()}


async def _roll_back(
    run: Run, camera: _Writers, snapshot: Values, touched: Iterable[Setting], why: str
) -> StepFailed:
    """Write the snapshot back and read ``touched`` again: the failure to report. A text
    setting the snapshot lacks (no NTP server configured) cannot be emptied: restored only
    if the camera reports none again."""
    await run.step(ROLLING_BACK)
    log.warning("camera %s: %s; rolling back to the snapshot", run.target.id, why)
    got: Values = {}
    try:
        await camera.write(snapshot)
        got = await camera.read(touched)
    except CameraError as exc:
        why = f"{why}; rollback: {exc.code}"
    details: Details = {}
    restored = True
    for setting in touched:
        value = snapshot.get(setting)
        if got.get(setting) == value:
            details[f"outcome.{setting.value}"] = "rolled_back"
            continue
        restored = False
        details[f"outcome.{setting.value}"] = "not_restored"
        _shown(details, setting, value, got)
    reason = "rolled_back" if restored else "rollback_failed"
    return StepFailed(reason, why, details=details)


async def apply_settings(run: Run) -> Details:
    params = remediate_params(run.command.params)
    ctx, entry = run.context, run.entry
    key = escrow_key(params.escrow_kid, params.escrow_jwk, ctx.config.rotation.escrow_kid)
    asked = dict(zip(_settings(params.changes), params.changes.values(), strict=True))
    fresh = entry.step in _EARLY
    if fresh:
        await run.step("preflight")
    camera = await _writers(run)
    try:
        if fresh:
            camera.check(asked)
            await run.step("snapshot")
            try:
                before = await camera.read(asked)
            except CameraError as exc:
                raise StepFailed("snapshot_failed", f"camera: {exc.code}") from exc
            unread = [s.value for s in asked if s not in before and s not in TEXT_SETTINGS]
            if unread:
                raise StepFailed("snapshot_failed", f"camera does not report {unread}")
            await _keep(run, before)
        else:
            kept = _snapshot_of(run, run.command.command_id)
            if kept is None:
                raise StepFailed("interrupted", "stopped before the snapshot was kept")
            before = kept
        sealed = _sealed(run, key, before)
        if fresh:
            await run.step("applying", sealed)
            try:
                await camera.write({s: v for s, v in asked.items() if before.get(s) != v})
                await run.step("reading_back")
                got = await camera.read(asked)
            except CameraError as exc:
                why = f"camera: {exc.code}"
                raise (await _roll_back(run, camera, before, asked, why)) from exc
        elif entry.step in _CHANGING:  # stopped in the middle: back to the snapshot
            why = f"interrupted at {entry.step}"
            raise await _roll_back(run, camera, before, asked, why)
        else:  # at reaudit: the read-back is done, the settings are as the camera keeps them
            got = await camera.read(asked)
        outcomes, taken = _outcomes(asked, before, got)
        await run.step("reaudit")
        details = sealed | outcomes | await _reaudit(run, asked, params.controls)
    finally:
        await camera.close()
    if not taken:
        raise StepFailed("not_applied", "the camera ignored or clamped a setting", details=details)
    return details


def _sealed(run: Run, key: OKPKey, before: Values) -> Details:
    payload = {
        "camera_id": run.target.id,
        "command_id": run.command.command_id,
        "taken_at": run.context.clock().isoformat(),
        "settings": {s.value: v for s, v in before.items()},
    }
    return {"sealed": seal(key, payload, "camwarden-settings"), "escrow_kid": key.thumbprint()}


async def restore_settings(run: Run) -> Details:
    params = restore_params(run.command.params)
    snapshot = _snapshot_of(run, params.original)
    if snapshot is None:
        raise StepFailed(
            "snapshot_unknown",
            f"no snapshot of {params.original} for camera {run.target.id}",
            status="rejected",
        )
    await run.step("preflight")
    camera = await _writers(run)
    try:
        camera.check(snapshot)
        before = await camera.read(snapshot)
        await run.step("applying")
        await camera.write({s: v for s, v in snapshot.items() if before.get(s) != v})
        await run.step("reading_back")
        got = await camera.read(snapshot)
        outcomes, taken = _outcomes(snapshot, before, got)
        await run.step("reaudit")
        details = outcomes | await _reaudit(run, snapshot, ())
    finally:
        await camera.close()
    if not taken:
        raise StepFailed("not_applied", "the camera ignored or clamped a setting", details=details)
    return details
