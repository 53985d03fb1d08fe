"""Packages built once per test session and release, shared by the install tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.debootstrap import PARTS, SUFFIX, build_debs, skip_unless_possible

Packages = Callable[..., dict[str, Path]]


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """``packages("trixie")`` (``packages("trixie", "arm64")``): this tree's agent and
    collector packages of that release and architecture, by part name, built on first use, or
    the newest of those in $CAMWARDEN_DEB_DIR."""
    built: dict[tuple[str, str], dict[str, Path]] = {}

    def get(release: str, arch: str = "amd64") -> dict[str, Path]:
        skip_unless_possible()
        given = os.environ.get("CAMWARDEN_DEB_DIR")
        if given:  # packages built before (make deb), tested as they are
            suffix = SUFFIX[release]
            found = {
                p: sorted(Path(given).glob(f"camwarden-{p}_*{suffix}_{arch}.deb")) for p in PARTS
            }
            assert all(found.values()), f"no {release} {arch} packages in {given}"
            return {part: debs[-1] for part, debs in found.items()}
        if (release, arch) not in built:
            out = tmp_path_factory.mktemp(f"deb-{release}-{arch}")
            built[release, arch] = build_debs(out, release, arch=arch)
        return built[release, arch]

    return get
