"""The recorder side of a password rotation (``agent.commands.password_rotate``).

A camera on a recorder's channel (``[[cameras]] recorder = "<id>"``, and ``channel`` or else
the channel the recorder lists at the camera's address) is watched by that NVR/DVR with a login
of its own: when that login's password changes on the camera, the recorder loses the camera.

::

    preflight   the recorder is configured and the agent holds its credential, it answers its
                channel list, lists the camera, and can store a channel login (refused, before
                the camera is touched: ``recorder_no_credential``, ``recorder_unreachable``,
                ``recorder_refused``, ``recorder_channel_unknown``); a channel the recorder logs
                in to with another account is left alone (nothing noted)
    recorder    after the camera took the new password and it was verified: the recorder stores
                it (Hikvision ``PUT .../InputProxy/channels/<id>``, Dahua ``setConfig`` of
                ``RemoteDevice.<block>.Password``) and, when it listed the channel online in
                preflight, lists it online again within ``[rotation] recorder_wait_s``.
                Otherwise the recorder gets its old login back and the camera its old password
                (``recorder_update_failed``); a camera that cannot be set back keeps the new
                password, which is sealed and handed over as on success
                (``recorder_out_of_sync``)

The camera's old password waits in the vault as ``<ref>.previous`` from ``verifying`` until the
recorder step ends, so a resumed ``recorder`` step can still set it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

from agent.commands.context import Run
from agent.commands.errors import StepFailed
from agent.config import CameraConfig
from agent.vendors.base import Adapter, CameraError, Timeout, Unreachable
from agent.vendors.models import RecorderChannel
from agent.vendors.registry import adapter_pair

__all__ = ["STEP", "previous_ref", "recorder_preflight", "update_recorder"]

log = logging.getLogger(__name__)

STEP = "recorder"
RollBack = Callable[[str], Awaitable[None]]  # sets the camera's password back; raises


def previous_ref(target_ref: str) -> str:
    return f"{target_ref}.previous"


@asynccontextmanager
async def _recorder(
    run: Run, status: Literal["failed", "rejected"]
) -> AsyncIterator[tuple[CameraConfig, Adapter]]:
    """The recorder's configuration and its vendor adapter, logged in with its credential."""
    ctx, camera = run.context, run.target
    recorder = ctx.config.camera(camera.recorder) if camera.recorder else None
    ref = recorder.credentials_ref if recorder else None
    credential = ctx.credentials.credential(ref) if ref else None
    if recorder is None or credential is None:
        raise StepFailed(
            "recorder_no_credential",
            f"camera {camera.id} is on recorder {camera.recorder}, whose login the agent lacks",
            status=status,
        )
    pair = adapter_pair(
        ctx.config.target(recorder), credential, ctx.config.firmware.camera_timeout_s
    )
    try:
        yield recorder, pair[0]
    finally:
        for adapter in dict.fromkeys(pair):
            await adapter.close()


def _seat(channels: tuple[RecorderChannel, ...], camera: CameraConfig) -> RecorderChannel | None:
    if camera.channel is not None:
        return next((c for c in channels if c.number == camera.channel), None)
    return next((c for c in channels if c.address == camera.address), None)


async def _channel(
    run: Run, recorder: CameraConfig, adapter: Adapter, status: Literal["failed", "rejected"]
) -> RecorderChannel:
    try:
        channels = await adapter.channels()
    except (Unreachable, Timeout) as exc:
        raise StepFailed(
            "recorder_unreachable", f"{recorder.id}: {exc.code}", status=status
        ) from exc
    except CameraError as exc:
        raise StepFailed("recorder_refused", f"{recorder.id}: {exc.code}", status=status) from exc
    seat = _seat(channels, run.target)
    if seat is None:
        where = run.target.channel or run.target.address
        raise StepFailed(
            "recorder_channel_unknown", f"{recorder.id} lists no channel {where}", status=status
        )
    return seat


async def recorder_preflight(run: Run, username: str) -> None:
    """Refuses (before the camera is touched) a rotation its recorder would not follow; notes
    the recorder when it logs in to the camera with ``username``."""
    if run.target.recorder is None:
        return
    async with _recorder(run, "rejected") as (recorder, adapter):
        seat = await _channel(run, recorder, adapter, "rejected")
    if seat.username not in (None, username):
        log.info(
            "camera %s: recorder %s logs in as another account: left as it is",
            run.target.id,
            recorder.id,
        )
        return
    await run.note(recorder=recorder.id, recorder_online="yes" if seat.online else "")


async def update_recorder(run: Run, username: str, target_ref: str, roll_back: RollBack) -> None:
    """The recorder stores the camera's new password and lists the channel online again; on
    any failure both go back to the old one (``roll_back`` raises the step's failure)."""
    store = run.context.credentials
    new = store.credential(target_ref)
    previous = store.credential(previous_ref(target_ref))
    if new is None:
        raise StepFailed("vault_failed", f"{target_ref} missing at the recorder step")
    async with _recorder(run, "failed") as (recorder, adapter):
        seat: RecorderChannel | None = None
        try:
            seat = await _channel(run, recorder, adapter, "failed")
            await adapter.set_channel_login(seat, username, new.password)
            if run.entry.data.get("recorder_online") == "yes":
                await _back_online(run, recorder, adapter, seat)
        except (StepFailed, CameraError) as exc:
            why = exc.reason if isinstance(exc, StepFailed) else f"{recorder.id}: {exc.code}"
            log.warning("camera %s: recorder %s not updated: %s", run.target.id, recorder.id, why)
            if seat is not None and previous is not None:
                await _restore(adapter, seat, username, previous.password)
            await roll_back(why)
            raise
    await asyncio.to_thread(store.delete, previous_ref(target_ref))
    await run.step("sealing", recorder_channel=str(seat.number))


async def _back_online(
    run: Run, recorder: CameraConfig, adapter: Adapter, seat: RecorderChannel
) -> None:
    """Polls the channel list until the recorder lists the channel online again."""
    rot = run.context.config.rotation
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rot.recorder_wait_s
    while True:
        now = next((c for c in await adapter.channels() if c.key == seat.key), None)
        if now is not None and now.online:
            return
        if loop.time() >= deadline:
            raise StepFailed(
                "recorder_update_failed",
                f"{recorder.id} channel {seat.number} not online {rot.recorder_wait_s:g} s after",
            )
        await asyncio.sleep(rot.recorder_poll_s)


async def _restore(adapter: Adapter, seat: RecorderChannel, username: str, password: str) -> None:
    """Best effort: the recorder's old login back (the camera is being set back too)."""
    try:
        await adapter.set_channel_login(seat, username, password)
    except CameraError as exc:
        log.warning("recorder channel %s: old login not restored: %s", seat.number, exc.code)
