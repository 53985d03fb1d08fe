"""The ``firmware.apply`` action: preflight, downloading, uploading, rebooting, verifying.

::

    preflight    TUF refresh and target metadata (no camera contact yet): version as
                 commanded, size limit, disk space; then the camera (one identity read):
                 vendor and model listed in the signed ``models``, anti-rollback (older than
                 the camera's version only with ``downgrade_approved_by``), network settings
                 and stream URI recorded for the post-check
    downloading  ngclient download, resumed with Range across attempts and restarts;
                 length and hashes verified by ngclient over the whole file
    uploading    the verified image, streamed to the vendor API (first write to the camera)
    rebooting    wait until the camera went away and answers again (``reboot_timeout_s``)
    verifying    the camera reports the new version; the credential still works; RTSP
                 DESCRIBE with the credential answers 200; network settings unchanged

Resume after an interruption (journal step): up to ``downloading`` the action starts over
(cheap: the download continues from its partial file); at ``uploading`` the image may or may
not have reached the camera, so the agent waits for the camera and continues only if it runs
the new version, else fails cleanly (``interrupted``: the camera runs its old version); at
``rebooting``/``verifying`` it waits for the camera and verifies.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent.commands.context import Details, Run
from agent.commands.errors import StepFailed
from agent.commands.verify import FirmwareParams, firmware_params
from agent.firmware.errors import FirmwareError
from agent.firmware.manifest import ImageFacts, check_camera, check_image
from agent.firmware.updater import FirmwareUpdater, enrollment_root
from agent.probes.rtsp import describe
from agent.vendors.base import Adapter, CameraError, Unsupported
from agent.vendors.models import Credential, DeviceIdentity
from agent.vendors.onvif.adapter import OnvifAdapter
from agent.vendors.registry import adapter_pair
from agent.vendors.versions import UnparsableVersion, parse_firmware

log = logging.getLogger(__name__)

_EARLY = (None, "preflight", "downloading")


def same_version(vendor: str, reported: str | None, wanted: str) -> bool:
    if reported is None:
        return False
    try:
        return parse_firmware(vendor, reported).numbers == parse_firmware(vendor, wanted).numbers
    except UnparsableVersion:
        return reported.strip() == wanted.strip()


async def _stream(onvif: OnvifAdapter) -> str:
    try:
        streams = await onvif.streams()
    except Unsupported:
        return ""
    return streams[0].rtsp_uri if streams else ""


async def _network(onvif: OnvifAdapter) -> str:
    try:
        return "\n".join(await onvif.network_settings())
    except Unsupported:
        return ""


def _facts(data: dict[str, str]) -> ImageFacts:
    return ImageFacts(
        path=data["image_path"],
        length=int(data["image_length"]),
        sha256=data["image_sha256"],
        vendor=data["image_vendor"],
        models=tuple(data["image_models"].split("\n")),
        version=data["image_version"],
    )


async def apply_firmware(run: Run) -> Details:
    """The action; the firmware package's errors become the command's here, at one edge."""
    try:
        return await _apply(run)
    except FirmwareError as exc:
        raise StepFailed(exc.reason, exc.detail, status=exc.status) from exc


async def _apply(run: Run) -> Details:
    params = firmware_params(run.command.params)
    config, camera, entry = run.context.config, run.target, run.entry
    fw = config.firmware
    credential = run.credential()
    if config.collector_url is None:
        raise StepFailed("preflight_failed", "collector_url is not configured")
    updater = FirmwareUpdater(
        config.state_path / "firmware",
        config.collector_url,
        enrollment_root(config.state_path),
        timeout_s=fw.download_timeout_s,
    )
    async with AsyncExitStack() as stack:
        vendor, onvif = adapter_pair(config.target(camera), credential, fw.camera_timeout_s)
        stack.push_async_callback(vendor.close)
        if onvif is not vendor:
            stack.push_async_callback(onvif.close)
        resumed_at = entry.step
        if resumed_at in _EARLY:
            facts, current = await _preflight(run, params, updater, vendor, onvif)
            if facts is None:
                return {"version": params.version, "reported": current, "changed": False}
            image = await stack.enter_async_context(_sharing(updater.image_path(facts)))
            await run.step("downloading")
            async with image.download:
                await _download(run, updater, facts)
            await _upload(run, updater, facts, vendor)
            await run.step("rebooting")
            ident = await _wait_back(vendor, run, went_away=False)
        else:
            facts = _facts(entry.data)
            image = await stack.enter_async_context(_sharing(updater.image_path(facts)))
            if resumed_at == "uploading":
                ident = await _wait_back(vendor, run, went_away=True)
                if not same_version(facts.vendor, ident.firmware, facts.version):
                    raise StepFailed(
                        "interrupted",
                        f"stopped during the upload; the camera runs {ident.firmware}",
                    )
            else:
                await asyncio.sleep(min(fw.poll_interval_s, 2.0))
                ident = await _wait_back(vendor, run, went_away=True)
        await run.step("verifying")
        details = await _verify(run, (vendor, onvif), facts, ident, credential)
        if image.users == 1:  # no other camera of this agent is being given it
            updater.remove(facts)
        return details


async def _preflight(
    run: Run,
    params: FirmwareParams,
    updater: FirmwareUpdater,
    vendor: Adapter,
    onvif: OnvifAdapter,
) -> tuple[ImageFacts | None, str | None]:
    """The facts of the image to install, or (None, version) when it is installed already."""
    config, camera = run.context.config, run.target
    fw = config.firmware
    await run.step("preflight")
    async with _metadata_lock(updater.metadata_dir):
        facts = await asyncio.to_thread(updater.find, params.target)
    check_image(facts, command_version=params.version, max_bytes=fw.max_image_bytes)
    free = shutil.disk_usage(config.state_path).free
    if free - facts.length < fw.min_free_bytes:
        raise StepFailed("preflight_failed", f"{free} bytes free, image {facts.length}")
    try:
        ident = await vendor.identify()
    except CameraError as exc:
        raise StepFailed("preflight_failed", f"camera: {exc.code}: {exc}") from exc
    order = check_camera(
        facts,
        camera_vendor=camera.vendor,
        model=ident.model,
        current=ident.firmware,
        downgrade_approved_by=params.downgrade_approved_by,
    )
    if order == 0:
        log.info("camera %s already runs %s", camera.id, ident.firmware)
        return None, ident.firmware
    if order < 0:
        log.info(
            "camera %s: downgrade to %s approved by %s",
            camera.id,
            facts.version,
            params.downgrade_approved_by,
        )
    await run.note(
        previous=ident.firmware or "",
        network=await _network(onvif),
        stream=await _stream(onvif),
        image_path=facts.path,
        image_length=str(facts.length),
        image_sha256=facts.sha256,
        image_vendor=facts.vendor,
        image_models="\n".join(facts.models),
        image_version=facts.version,
    )
    return facts, ident.firmware


@dataclass(slots=True)
class _Shared:
    """An image that commands of this agent are installing, one camera each: one downloads it
    while the others wait for ``download`` and then find it verified in the cache; the last
    one to succeed removes it."""

    download: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


_IMAGES: dict[Path, _Shared] = {}  # by the image's path in the agent's cache


_METADATA: dict[Path, asyncio.Lock] = {}  # by TUF metadata directory: one per agent


@asynccontextmanager
async def _metadata_lock(directory: Path) -> AsyncIterator[None]:
    """One TUF refresh at a time per metadata directory: ngclient's concurrent refreshes race
    on its files (``root_history``: FileExistsError)."""
    async with _METADATA.setdefault(directory, asyncio.Lock()):
        yield


@asynccontextmanager
async def _sharing(path: Path) -> AsyncIterator[_Shared]:
    shared = _IMAGES.setdefault(path, _Shared())
    shared.users += 1
    try:
        yield shared
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _IMAGES[path]


async def _download(run: Run, updater: FirmwareUpdater, facts: ImageFacts) -> None:
    fw = run.context.config.firmware
    image = None
    for attempt in range(1, fw.download_attempts + 1):
        try:
            image = await asyncio.to_thread(updater.download, facts)
            break
        except FirmwareError as exc:
            if exc.reason != "download_failed" or attempt == fw.download_attempts:
                raise
            log.info("download attempt %d failed (%s); resuming", attempt, exc.detail)
            await asyncio.sleep(min(2.0**attempt, 30.0))
    if image is None:
        raise StepFailed("download_failed", "no attempt left")
    if image.resumed_from:
        log.info("download resumed from byte %d and verified", image.resumed_from)


async def _upload(run: Run, updater: FirmwareUpdater, facts: ImageFacts, vendor: Adapter) -> None:
    await run.step("uploading")
    timeout_s = run.context.config.firmware.upload_timeout_s
    try:
        await vendor.upload_firmware(updater.image_path(facts), facts.length, timeout_s=timeout_s)
    except CameraError as exc:
        # a refused image (HTTP 4xx, vendor error) leaves the camera as it was; a lost
        # connection may mean the camera took it and rebooted: the reboot wait finds out
        if exc.code not in ("unreachable", "timeout"):
            raise StepFailed("camera_refused", f"{exc.code}: {exc}") from exc
        log.warning("upload to %s interrupted (%s); waiting for it", run.target.id, exc.code)


async def _wait_back(vendor: Adapter, run: Run, *, went_away: bool) -> DeviceIdentity:
    """Poll the camera until it answers after its reboot (see module doc)."""
    fw = run.context.config.firmware
    facts = _facts(run.entry.data)
    deadline = time.monotonic() + fw.reboot_timeout_s
    while time.monotonic() < deadline:
        try:
            ident = await vendor.identify()
        except CameraError as exc:
            if exc.code not in ("unreachable", "timeout", "bad_response"):
                raise
            went_away = True
        else:
            if went_away or same_version(facts.vendor, ident.firmware, facts.version):
                return ident
        await asyncio.sleep(fw.poll_interval_s)
    raise StepFailed("timeout", f"camera not back within {fw.reboot_timeout_s} s")


async def _verify(
    run: Run,
    pair: tuple[Adapter, OnvifAdapter],
    facts: ImageFacts,
    ident: DeviceIdentity,
    credential: Credential,
) -> Details:
    data, camera = run.entry.data, run.target
    onvif = pair[1]
    if not same_version(facts.vendor, ident.firmware, facts.version):
        raise StepFailed(
            "version_mismatch", f"camera reports {ident.firmware}, expected {facts.version}"
        )
    # the identity read above used the credential: it still works
    network = await _network(onvif)
    if network != data.get("network", ""):
        raise StepFailed("verify_failed", "network settings changed by the update")
    stream = data.get("stream") or await _stream(onvif)
    if stream:
        from urllib.parse import urlsplit  # noqa: PLC0415

        uri = urlsplit(stream)
        if uri.hostname != camera.address:
            raise StepFailed("verify_failed", "the stream URI is not on the camera")
        path = uri.path + (f"?{uri.query}" if uri.query else "")
        fw = run.context.config.firmware
        deadline = time.monotonic() + fw.reboot_timeout_s
        while True:  # a camera's RTSP server may come up after its web server
            try:
                reply = await describe(
                    camera.address,
                    uri.port or 554,
                    path,
                    timeout_s=fw.camera_timeout_s,
                    credential=credential,
                )
                break
            except CameraError as exc:
                if exc.code not in ("unreachable", "timeout") or time.monotonic() > deadline:
                    raise StepFailed("verify_failed", f"RTSP: {exc.code}") from exc
            await asyncio.sleep(fw.poll_interval_s)
        if reply.status != 200:
            raise StepFailed("verify_failed", f"RTSP DESCRIBE answered {reply.status}")
    return {
        "version": facts.version,
        "reported": ident.firmware,
        "previous": data.get("previous", ""),
        "changed": True,
        "rtsp": bool(stream),
    }
