"""The ``password.rotate`` action, the escrow seal and the NVR hook (scheduled runs:
``agent.commands.schedule``).

::

    preflight   escrow key: an X25519 public JWK whose RFC 7638 thumbprint is ``escrow_kid``
                and, when ``[rotation] escrow_kid`` pins the organisation's key, that key
                (refusals before any camera contact); the current credential from the vault;
                the camera answers with it (identity through the vendor API, or ONVIF for an
                ONVIF-only camera); noted: whether the account also logs in over ONVIF
    generating  a random password (``secrets``) of ``max(min_length, [rotation] min_length)``
                meeting Decision 724 (all four classes) with zxcvbn score 4; kept in the vault
                as ``<ref>.pending`` *before* the camera is changed, so a crash never loses it
    applying    the vendor API first (ISAPI ``PUT /ISAPI/Security/users/<id>``, Dahua
                ``userManager.cgi?action=modifyPassword``, VAPIX ``pwdgrp.cgi?action=update``);
                when it is missing or refuses, ONVIF ``SetUser`` with the account's level (an
                ONVIF-only camera gets ``SetUser`` directly); ``via`` notes which one took it
    verifying   through the API that took it, and ONVIF when the account logged in there in
                preflight: the new password is accepted and the old one refused (one attempt
                each); then the vault entry is replaced and the pending one removed
    recorder    only for a camera on a configured recorder that logs in with this account
                (``agent.commands.recorder_login``; its refusals are part of preflight): the
                recorder stores the new password and lists the channel online again, or the
                camera's old password is set back
    sealing     JWE (ECDH-ES+A256KW, A256GCM) of ``{camera_id, username, password, ...}`` to
                the escrow key, returned as ``details.sealed``; then the hook, if configured,
                gets the same JSON on stdin (never in argv or the environment)

Resume: before ``applying`` the rotation starts over (the camera was not touched); at
``applying`` (and after a lost answer to the change itself) the pending password is tried,
vendor API first, then ONVIF: accepted -> continue verifying through that API; refused
everywhere -> the camera kept the old one: failed cleanly (``interrupted``); a camera that does
not answer fails the command and leaves ``<ref>.pending`` in the vault. At ``verifying`` the
checks run again; at ``sealing`` the vault holds the new password: seal it again. Passwords are
never logged (Dahua and VAPIX take them in the query string: see ``agent.vendors.http``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
from contextlib import AsyncExitStack

from joserfc.jwk import OKPKey

from agent.commands.context import Details, Run
from agent.commands.errors import StepFailed
from agent.commands.escrow import escrow_key, seal
from agent.commands.recorder_login import (
    STEP as RECORDER,
)
from agent.commands.recorder_login import (
    previous_ref,
    recorder_preflight,
    update_recorder,
)
from agent.commands.verify import rotate_params
from agent.credentials.passwords import assess_password
from agent.vendors.base import Adapter, CameraError, LockedOut, Timeout, Unreachable
from agent.vendors.models import Credential, Interface
from agent.vendors.onvif.adapter import OnvifAdapter
from agent.vendors.registry import adapter_pair

log = logging.getLogger(__name__)

# no quotes, backslash, angle brackets, ampersand or space: vendor web UIs and XML stacks of
# some cameras mangle them; 74 symbols still give > 6 bits per character
SPECIALS = "!#%+-.:=?@_~^*"
_ALPHABET = string.ascii_letters + string.digits + SPECIALS
_EARLY = (None, "preflight", "generating")


def generate_password(length: int, user_inputs: list[str]) -> str:
    """Random, all four classes (Decision 724), zxcvbn score 4."""
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        verdict = assess_password(password, user_inputs=user_inputs)
        if verdict.meets_724 and verdict.score >= 4 and verdict.length >= length:
            return password


async def run_hook(argv: tuple[str, ...], payload: dict[str, str], timeout_s: float) -> bool:
    """The site's hook gets the credential as JSON on stdin; True if it exited 0."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"},
        )
    except OSError as exc:
        log.warning("rotation hook %s cannot start: %s", argv[0], exc.strerror)
        return False
    try:
        async with asyncio.timeout(timeout_s):
            await proc.communicate(json.dumps(payload).encode() + b"\n")
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("rotation hook %s timed out after %s s", argv[0], timeout_s)
        return False
    if proc.returncode != 0:
        log.warning("rotation hook %s exited with %s", argv[0], proc.returncode)
    return proc.returncode == 0


def _channel(pair: tuple[Adapter, OnvifAdapter], via: str) -> tuple[Adapter, Interface]:
    """The adapter named by ``via`` (a vendor key) and the interface its logins go over."""
    vendor, onvif = pair
    return (onvif, Interface.ONVIF) if via == onvif.vendor else (vendor, Interface.HTTP)


def _checked_on(pair: tuple[Adapter, OnvifAdapter], data: dict[str, str]) -> list[str]:
    """Where the passwords are verified: the API that took the new one, and ONVIF when the
    account worked there before (``onvif`` noted in preflight)."""
    onvif = pair[1].vendor
    via = [data.get("via", onvif)]  # a journal from before vendor APIs: ONVIF took it
    return via if onvif in via or data.get("onvif") != "yes" else [*via, onvif]


async def _answers(adapter: Adapter, interface: Interface, username: str, password: str) -> bool:
    """One login; a camera that cannot be asked this way counts as a refusal."""
    try:
        return await adapter.try_login(interface, username, password)
    except (Unreachable, Timeout, LockedOut):
        raise
    except CameraError:
        return False


async def rotate_password(run: Run) -> Details:
    params = rotate_params(run.command.params)
    ctx, camera, entry = run.context, run.target, run.entry
    rot = ctx.config.rotation
    if entry.step in _EARLY:
        await run.step("preflight")
    key = escrow_key(params.escrow_kid, params.escrow_jwk, rot.escrow_kid)
    current = run.credential()
    ref = camera.credentials_ref
    if ref is None:  # run.credential() refused this already
        raise StepFailed("preflight_failed", f"camera {camera.id} has no credentials_ref")
    target_ref = ref if params.username == current.username else f"{ref}/{params.username}"
    pending_ref = f"{target_ref}.pending"
    old = ctx.credentials.credential(target_ref)
    pair = adapter_pair(ctx.config.target(camera), current, ctx.config.firmware.camera_timeout_s)
    async with AsyncExitStack() as stack:
        for adapter in dict.fromkeys(pair):  # one object for an ONVIF-only camera
            stack.push_async_callback(adapter.close)
        if entry.step in _EARLY:
            inputs = await _preflight(run, pair, params.username, old)
            await recorder_preflight(run, params.username)
            await run.step("generating")
            length = max(params.min_length, rot.min_length)
            new = await asyncio.to_thread(generate_password, length, inputs)
            if old is not None and new == old.password:  # cannot happen; checked anyway
                raise StepFailed("internal", "generated password equals the current one")
            await asyncio.to_thread(ctx.credentials.set, pending_ref, params.username, new)
            await run.step("applying")
            via = await _apply(run, pair, params.username, (new, old), pending_ref)
            await run.step("verifying", via=via)
        elif entry.step in ("applying", "verifying"):
            pending = ctx.credentials.credential(pending_ref)
            if pending is None:
                raise StepFailed("interrupted", "stopped before the camera took the password")
            new = pending.password
            if entry.step == "applying":
                via = await _taken(run, pair, params.username, pending_ref, "stopped")
                await run.step("verifying", via=via)
        if entry.step == "verifying":
            await _confirm(run, pair, params.username, (new, old), target_ref)
    if entry.step == RECORDER:

        async def roll_back(why: str) -> None:
            await _roll_back(run, params.username, target_ref, (key, params.escrow_kid), why)

        await update_recorder(run, params.username, target_ref, roll_back)
    return await _seal_and_hand_over(run, key, params.escrow_kid, target_ref)


async def _preflight(
    run: Run, pair: tuple[Adapter, OnvifAdapter], username: str, old: Credential | None
) -> list[str]:
    """The camera answers with the agent's credential; notes whether the account also works
    over ONVIF (then ONVIF is verified too). Returns the words the password must not echo."""
    vendor, onvif = pair
    try:
        ident = await vendor.identify()
    except CameraError as exc:
        raise StepFailed("preflight_failed", f"camera: {exc.code}") from exc
    on_onvif = vendor is onvif
    if not on_onvif and old is not None:
        try:
            on_onvif = await onvif.try_login(Interface.ONVIF, username, old.password)
        except LockedOut:
            raise
        except CameraError:  # no ONVIF on this camera: the vendor API alone is checked
            on_onvif = False
    await run.note(onvif="yes" if on_onvif else "")
    return [w for w in (ident.vendor, ident.model, username, run.target.id) if w]


async def _apply(
    run: Run,
    pair: tuple[Adapter, OnvifAdapter],
    username: str,
    passwords: tuple[str, Credential | None],
    pending_ref: str,
) -> str:
    """The richest API that takes the password: the vendor's, then ONVIF ``SetUser``.
    Returns the vendor key of the adapter that took it."""
    new, old = passwords
    refusals = []
    for adapter in dict.fromkeys(pair):
        try:
            await adapter.set_password(username, new, current=old.password if old else None)
        except (Unreachable, Timeout) as exc:  # the camera may have taken it: ask it
            return await _taken(run, pair, username, pending_ref, f"{adapter.vendor}: {exc.code}")
        except CameraError as exc:
            refusals.append(f"{adapter.vendor}: {exc.code}")
            log.info("camera %s: %s refused the password change", run.target.id, refusals[-1])
            if isinstance(exc, LockedOut):
                break
        else:
            return adapter.vendor
    await asyncio.to_thread(run.context.credentials.delete, pending_ref)
    raise StepFailed("camera_refused", "; ".join(refusals))


async def _taken(
    run: Run, pair: tuple[Adapter, OnvifAdapter], username: str, pending_ref: str, why: str
) -> str:
    """After an interruption: the API whose login takes the pending password (vendor first).
    Refused everywhere: the camera kept the old one, failed cleanly. A camera that does not
    answer raises and the pending password stays in the vault."""
    pending = run.context.credentials.credential(pending_ref)
    if pending is not None:
        for adapter in dict.fromkeys(pair):
            via = adapter.vendor
            if await _answers(*_channel(pair, via), username, pending.password):
                return via
    await asyncio.to_thread(run.context.credentials.delete, pending_ref)
    raise StepFailed("interrupted", f"{why}; the camera kept the old password")


async def _seal_and_hand_over(run: Run, key: OKPKey, kid: str, target_ref: str) -> Details:
    ctx = run.context
    rot = ctx.config.rotation
    stored = ctx.credentials.credential(target_ref)
    if stored is None:
        raise StepFailed("vault_failed", f"{target_ref} missing after the rotation")
    payload = {
        "camera_id": run.target.id,
        "username": stored.username,
        "password": stored.password,
        "command_id": run.command.command_id,
        "rotated_at": ctx.clock().isoformat(),
    }
    data = run.entry.data
    details: Details = {
        "sealed": seal(key, payload, "camwarden-credential"),
        "escrow_kid": kid,
        "via": data.get("via", ""),
        "verified": data.get("verified", ""),
    }
    if data.get("recorder_channel"):  # the recorder stores the new password (and reaches it)
        details["recorder"] = data.get("recorder", "")
        details["recorder_channel"] = int(data["recorder_channel"])
    if rot.hook:
        details["hook"] = (
            "ok" if await run_hook(rot.hook, payload, rot.hook_timeout_s) else "failed"
        )
    log.info("camera %s: password of %s rotated", run.target.id, stored.username)
    return details


async def _confirm(
    run: Run,
    pair: tuple[Adapter, OnvifAdapter],
    username: str,
    passwords: tuple[str, Credential | None],
    target_ref: str,
) -> None:
    """New accepted, old refused, on every interface checked; then the vault takes the new one
    and the pending goes."""
    new, old = passwords
    store = run.context.credentials
    checked = _checked_on(pair, run.entry.data)
    for via in checked:
        channel = _channel(pair, via)
        if not await _answers(*channel, username, new):
            raise StepFailed("verify_failed", f"{via} refuses the new password")
        if old is not None and await _answers(*channel, username, old.password):
            raise StepFailed("verify_failed", f"{via} still accepts the old password")
    recorder = bool(run.entry.data.get("recorder"))
    try:
        if recorder and old is not None:  # kept until the recorder follows (or is set back)
            await asyncio.to_thread(store.set, previous_ref(target_ref), username, old.password)
        await asyncio.to_thread(store.set, target_ref, username, new)
    except Exception as exc:
        raise StepFailed("vault_failed", f"{type(exc).__name__}") from exc
    await asyncio.to_thread(store.delete, f"{target_ref}.pending")
    await run.step(RECORDER if recorder else "sealing", verified=",".join(checked))


async def _roll_back(
    run: Run, username: str, target_ref: str, escrow: tuple[OKPKey, str], why: str
) -> None:
    """The recorder did not follow: the camera gets its old password back through the API that
    took the new one, and the vault with it (``recorder_update_failed``). A camera that cannot
    be set back keeps the new password: sealed and handed over, and the failure says so
    (``recorder_out_of_sync``)."""
    ctx = run.context
    store = ctx.credentials
    new, previous = store.credential(target_ref), store.credential(previous_ref(target_ref))
    if new is None:
        raise StepFailed("vault_failed", f"{target_ref} missing at the rollback")
    agent_login = run.credential()  # after the rotation of its own account: the new password
    target = ctx.config.target(run.target)
    pair = adapter_pair(target, agent_login, ctx.config.firmware.camera_timeout_s)
    failure = "no old password in the vault"
    async with AsyncExitStack() as stack:
        for adapter in dict.fromkeys(pair):
            stack.push_async_callback(adapter.close)
        adapter, interface = _channel(pair, run.entry.data.get("via", pair[1].vendor))
        if previous is not None:
            try:
                await adapter.set_password(username, previous.password, current=new.password)
                if await _answers(adapter, interface, username, previous.password):
                    await asyncio.to_thread(store.set, target_ref, username, previous.password)
                    await asyncio.to_thread(store.delete, previous_ref(target_ref))
                    raise StepFailed(
                        "recorder_update_failed", f"{why}; the camera's old password is back"
                    )
                failure = "the camera refuses its old password after setting it back"
            except CameraError as exc:
                failure = f"the camera was not set back: {exc.code}"
    log.error("camera %s: %s; %s", run.target.id, why, failure)
    details = await _seal_and_hand_over(run, *escrow, target_ref)
    raise StepFailed("recorder_out_of_sync", f"{why}; {failure}", details=details)
