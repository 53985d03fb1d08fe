"""The firmware catalogue of a scope: images received, checked and signed into the one TUF
repository that serves every tenant; changing it takes an administrator of the whole fleet.
Every action checks the role first and is written to the audit log with its outcome.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Final

from sqlalchemy import insert, select, update

from server.domain.scope import Area, Invalid, NotVisible, Scope
from server.firmware.tuf_repo import TargetSpec, TufRepository, valid_target_path
from server.storage import Repository
from server.storage.errors import Conflict, translate
from server.storage.firmware_models import (
    FirmwareImage,
)

CHUNK: Final = 1 << 20


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


_DIGITS = re.compile(r"\d+")


# text that may span lines: no control characters but tab, newline and carriage return (and
# never NUL, which PostgreSQL cannot store in a text column)
NOTES_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


_NOTES = re.compile(NOTES_PATTERN)


def version_key(version: str) -> tuple[int, ...]:
    """Numbers of a vendor version string in order: ``V5.7.10 build 230101`` > ``V5.7.3``."""
    return tuple(int(n) for n in _DIGITS.findall(version))


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path  # inside the repository's incoming directory
    sha256: str
    length: int


def receive(tuf: TufRepository, stream: BinaryIO, max_bytes: int) -> Upload:
    """Copy an upload into ``incoming/`` while hashing it; refuse it beyond ``max_bytes``."""
    tuf.incoming_dir.mkdir(parents=True, exist_ok=True)
    path = tuf.incoming_dir / f"upload-{os.urandom(8).hex()}"
    digest = hashlib.sha256()
    length = 0
    with open(path, "xb") as out:
        while chunk := stream.read(CHUNK):
            length += len(chunk)
            if length > max_bytes:
                out.close()
                path.unlink()
                raise Invalid(f"the image exceeds the {max_bytes} byte limit")
            digest.update(chunk)
            out.write(chunk)
    return Upload(path, digest.hexdigest(), length)


@dataclass(frozen=True, slots=True)
class ImageView:
    id: int
    target_path: str
    vendor: str
    models: list[str]
    version: str
    build_date: date | None
    sha256: str
    length: int
    vendor_sha256: str | None
    release_notes: str
    uploaded_at: datetime
    uploaded_by: str
    retired_at: datetime | None
    retired_by: str | None
    published: bool  # listed in the signed targets metadata agents can fetch now


def catalogue_targets(repo: Repository) -> list[TargetSpec]:
    """What the next signed targets metadata lists: every image not retired."""
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(FirmwareImage.__table__)
            .where(FirmwareImage.retired_at.is_(None))
            .order_by(FirmwareImage.id)
        ).all()
    return [
        TargetSpec(
            r.target_path,
            r.length,
            r.sha256,
            {
                "vendor": r.vendor,
                "models": list(r.models),
                "version": r.version,
                "build_date": r.build_date.isoformat() if r.build_date else None,
            },
        )
        for r in rows
    ]


class FirmwareImages(Area):
    """The firmware catalogue of a scope."""

    __slots__ = ("tuf",)

    def __init__(self, s: Scope, tuf: TufRepository) -> None:
        super().__init__(s)
        self.tuf = tuf

    def images(self, image_id: int | None = None) -> list[ImageView]:
        published = self.tuf.published_targets()
        q = select(FirmwareImage.__table__).order_by(FirmwareImage.id.desc())
        if image_id is not None:
            q = q.where(FirmwareImage.id == image_id)
        with self.s.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            ImageView(
                r.id, r.target_path, r.vendor, list(r.models), r.version, r.build_date,
                r.sha256, r.length, r.vendor_sha256, r.release_notes, r.uploaded_at,
                r.uploaded_by, r.retired_at, r.retired_by,
                published.get(r.target_path) is not None
                and published[r.target_path].hashes.get("sha256") == r.sha256,
            )
            for r in rows
        ]  # fmt: skip

    def image(self, image_id: int) -> ImageView:
        found = self.images(image_id)
        if not found:
            raise NotVisible(f"firmware image {image_id}")
        return found[0]

    def upload(
        self,
        upload: Upload,
        *,
        filename: str,
        vendor: str,
        models: list[str],
        version: str,
        build_date: date | None,
        vendor_sha256: str | None,
        release_notes: str,
    ) -> ImageView:
        """Add a received image; the vendor's published SHA-256, when given, must match."""
        target = f"{vendor.lower()}/{version}/{filename}"
        try:
            with self.s.action("firmware.upload", "firmware", target) as act:
                act.detail = {"sha256": upload.sha256, "length": upload.length, "models": models}
                self.s.require("admin")
                self.s.require_whole_fleet()
                if not valid_target_path(target):
                    raise Invalid(f"vendor, version and file name must be plain names: {target}")
                if not models:
                    raise Invalid("name at least one model the image fits")
                if not _NOTES.match(release_notes):
                    raise Invalid("release notes may hold no control characters but line breaks")
                if vendor_sha256 is not None:
                    expected = vendor_sha256.strip().lower()
                    if not _SHA256.match(expected) or expected != upload.sha256:
                        act.detail["vendor_sha256"] = expected
                        raise Invalid("the image's SHA-256 differs from the vendor's published one")
                stored = self.tuf.stored_path(target, upload.sha256)
                stored.parent.mkdir(parents=True, exist_ok=True)
                with self.s.engine.begin() as conn:
                    try:
                        with translate():
                            new_id = conn.execute(
                                insert(FirmwareImage)
                                .values(
                                    target_path=target,
                                    vendor=vendor,
                                    models=sorted(set(models)),
                                    version=version,
                                    build_date=build_date,
                                    sha256=upload.sha256,
                                    length=upload.length,
                                    vendor_sha256=vendor_sha256,
                                    release_notes=release_notes,
                                    uploaded_at=self.s.now,
                                    uploaded_by=self.s.p.username,
                                )
                                .returning(FirmwareImage.id)
                            ).scalar_one()
                    except Conflict as exc:
                        raise Invalid(f"{target} is already in the catalogue") from exc
                    os.replace(upload.path, stored)
        finally:
            upload.path.unlink(missing_ok=True)
        return self.image(new_id)

    def retire(self, image_id: int) -> ImageView:
        with self.s.action("firmware.retire", "firmware", image_id) as act:
            self.s.require("admin")
            self.s.require_whole_fleet()
            with self.s.engine.begin() as conn:
                done = conn.execute(
                    update(FirmwareImage)
                    .where(FirmwareImage.id == image_id, FirmwareImage.retired_at.is_(None))
                    .values(retired_at=self.s.now, retired_by=self.s.p.username)
                ).rowcount
            if not done:
                raise Invalid(f"image {image_id} is unknown or already retired")
            act.detail = {"note": "removed from the next signed targets; running campaigns halt"}
        return self.image(image_id)
