"""Packages built once per test session and release, shared by the install tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.debootstrap import build_debs, skip_unless_possible

Packages = Callable[..., dict[str, Path]]


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """``packages("trixie")`` (``packages("trixie", "arm64")``): this tree's agent and
    collector packages of that release and architecture, by part name, built on first use."""
    built: dict[tuple[str, str], dict[str, Path]] = {}

    def get(release: str, arch: str = "amd64") -> dict[str, Path]:
        skip_unless_possible()
        if (release, arch) not in built:
            out = tmp_path_factory.mktemp(f"deb-{release}-{arch}")
            built[release, arch] = build_debs(out, release, arch=arch)
        return built[release, arch]

    return get
