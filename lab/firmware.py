"""Firmware images in each persona's format, for upgrade tests and the firmware-push work.

An image is ``magic`` (per vendor), then NUL-terminated ``key=value`` fields (``version``,
``build`` as an ISO date, ``model``), an empty field, then payload bytes::

    HIKVISION\\0version=V5.7.3\\0build=2023-01-01\\0model=DS-2CD2143G2-I\\0\\0<payload>
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from lab.errors import BadImage
from lab.persona import load_persona

__all__ = ["ImageInfo", "make_image", "parse_image"]

MAX_HEADER = 512


@dataclass(frozen=True, slots=True)
class ImageInfo:
    version: str
    build: dt.date
    model: str


def make_image(
    persona: str, version: str, build: dt.date, size: int = 4096, *, model: str = ""
) -> bytes:
    """An image the persona's upgrade interfaces accept, padded to at least ``size`` bytes."""
    magic = load_persona(persona).image_magic
    fields = f"version={version}\0build={build.isoformat()}\0model={model}\0\0".encode()
    header = magic + b"\0" + fields
    seed = hashlib.sha256(header).digest()
    payload = (seed * (max(size - len(header), 0) // len(seed) + 1))[: max(size - len(header), 0)]
    return header + payload


def parse_image(persona: str, image: bytes) -> ImageInfo:
    """Check the magic and header fields; raise ``BadImage`` as the camera would reject it."""
    magic = load_persona(persona).image_magic + b"\0"
    if not image.startswith(magic):
        raise BadImage("wrong magic for this vendor")
    end = image.find(b"\0\0", len(magic) - 1, len(magic) + MAX_HEADER)
    if end < 0:
        raise BadImage("header not terminated")
    try:
        text = image[len(magic) : end].decode("ascii")
        fields = dict(item.split("=", 1) for item in text.split("\0"))
        return ImageInfo(fields["version"], dt.date.fromisoformat(fields["build"]), fields["model"])
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise BadImage(f"bad header: {exc}") from exc
