"""A signed firmware repository set up in one call (firmware, dashboard and bench tests).

The offline keys live next to the repository here, which only a test may do: in production the
root and targets keys never reach the collector (docs/adr/0010-firmware-distribution.md).
"""

from __future__ import annotations

import datetime as dt
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lab.firmware import make_image
from server.domain.scope import Principal, Scoped
from server.firmware.service import FirmwareScoped, ImageView, catalogue_targets, receive
from server.firmware.tuf_repo import TufRepository, generate_key, load_signer, sign_bundle
from server.storage import Repository

ADMIN = Principal(1, "alice", "admin", None, None, None)
MODEL = "DS-2CD2143G2-I"  # the model tests.support.agents.SimAgent reports for every camera


def scope(repo: Repository, p: Principal) -> Scoped:
    return Scoped(repo, p, silent_after=timedelta(minutes=15), now=datetime.now(UTC))


def published_repo(
    state: Path, repo: Repository, version: str = "V5.7.3", *, uploader: Principal = ADMIN
) -> int:
    """A TUF repository under ``state`` with one signed image; returns the image id."""
    tuf = TufRepository.under(state)
    now = datetime.now(UTC)
    keys = {n: generate_key(state / f"{n}.key") for n in ("root", "targets")}
    tuf.prepare_root([keys["root"]], 1, [keys["targets"]], 1, now)
    s = FirmwareScoped(scope(repo, uploader), tuf)
    image = make_image("hikvision", version, dt.date(2024, 5, 1), 4096, model=MODEL)
    got = s.upload(
        receive(tuf, io.BytesIO(image), 10**6),
        filename="fw.bin",
        vendor="hikvision",
        models=[MODEL],
        version=version,
        build_date=dt.date(2024, 5, 1),
        vendor_sha256=None,
        release_notes="fixes",
    )
    bundle = tuf.export_bundle(catalogue_targets(repo), now)
    for n in ("root", "targets"):
        bundle, _ = sign_bundle(bundle, load_signer(state / f"{n}.key"))
    tuf.import_signed(bundle, now)
    return got.id


def publish_image(
    state: Path,
    repo: Repository,
    image: bytes,
    *,
    version: str,
    vendor: str = "hikvision",
    models: tuple[str, ...] = (MODEL,),
    now: datetime | None = None,
    uploader: Principal = ADMIN,
) -> ImageView:
    """Add ``image`` to a repository made by ``published_repo`` and publish a new targets
    version signed with its targets key (root unchanged)."""
    tuf = TufRepository.under(state)
    when = now or datetime.now(UTC)
    got = FirmwareScoped(scope(repo, uploader), tuf).upload(
        receive(tuf, io.BytesIO(image), 2**31),
        filename=f"fw-{version}.bin",
        vendor=vendor,
        models=list(models),
        version=version,
        build_date=dt.date(2024, 5, 1),
        vendor_sha256=None,
        release_notes="",
    )
    bundle = tuf.export_bundle(catalogue_targets(repo), when)
    bundle, _ = sign_bundle(bundle, load_signer(state / "targets.key"))
    tuf.import_signed(bundle, when)
    return got
