"""Pure checks of a firmware image's signed metadata against the command and the camera.

TUF has already verified the metadata chain (root, timestamp, snapshot, targets) when these run:
``ImageFacts`` comes from the verified ``TargetFile``; its custom fields are the collector's
catalogue (``vendor``, ``models``, ``version``; docs/adr/0010).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.firmware.errors import FirmwareError
from agent.vendors.versions import UnparsableVersion, canonical_vendor, parse_firmware

__all__ = ["ImageFacts", "check_camera", "check_image", "image_facts"]


@dataclass(frozen=True, slots=True)
class ImageFacts:
    path: str
    length: int
    sha256: str
    vendor: str
    models: tuple[str, ...]
    version: str


def image_facts(path: str, length: int, hashes: Mapping[str, str], custom: object) -> ImageFacts:
    if not isinstance(custom, Mapping):
        raise FirmwareError("download_rejected", f"{path}: no custom metadata")
    vendor, models, version = custom.get("vendor"), custom.get("models"), custom.get("version")
    if (
        not isinstance(vendor, str)
        or not isinstance(version, str)
        or not isinstance(models, list)
        or not all(isinstance(m, str) for m in models)
    ):
        raise FirmwareError("download_rejected", f"{path}: no vendor/models/version metadata")
    return ImageFacts(path, length, hashes.get("sha256", ""), vendor, tuple(models), version)


def check_image(facts: ImageFacts, *, command_version: str, max_bytes: int) -> None:
    """The signed metadata says what the command says, and the image fits the limit."""
    if facts.version != command_version:
        raise FirmwareError(
            "wrong_version",
            f"signed metadata says {facts.version!r}, the command {command_version!r}",
        )
    if facts.length > max_bytes:
        raise FirmwareError(
            "download_rejected", f"image of {facts.length} bytes exceeds the {max_bytes} limit"
        )


def _numbers(vendor: str, text: str) -> tuple[int, ...]:
    try:
        return parse_firmware(vendor, text).numbers
    except UnparsableVersion as exc:
        raise FirmwareError("preflight_failed", str(exc)) from exc


def check_camera(
    facts: ImageFacts,
    *,
    camera_vendor: str | None,
    model: str | None,
    current: str | None,
    downgrade_approved_by: str | None,
) -> int:
    """Compare with what the camera reports: -1 downgrade (approved), 0 same, 1 upgrade.

    Raises ``FirmwareError``: ``wrong_model`` (vendor or model not listed in the signed metadata),
    ``preflight_failed`` (the camera does not tell its model or version), and
    ``downgrade_not_approved`` (status ``rejected``) for an older version without approval.
    """
    if camera_vendor is not None and canonical_vendor(facts.vendor) != canonical_vendor(
        camera_vendor
    ):
        raise FirmwareError("wrong_model", f"image for {facts.vendor}, camera is {camera_vendor}")
    if model is None or current is None:
        raise FirmwareError("preflight_failed", "the camera does not report its model and version")
    if model not in facts.models:
        raise FirmwareError("wrong_model", f"image for {list(facts.models)}, camera is {model}")
    width = 8
    new = _numbers(facts.vendor, facts.version) + (0,) * width
    old = _numbers(facts.vendor, current) + (0,) * width
    order = (new[:width] > old[:width]) - (new[:width] < old[:width])
    if order < 0 and not downgrade_approved_by:
        raise FirmwareError(
            "downgrade_not_approved",
            f"{facts.version} is older than the camera's {current}",
            status="rejected",
        )
    return order
