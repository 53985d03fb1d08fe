"""Packages built once per test session and release, shared by the install tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.debootstrap import build_debs, skip_unless_possible

Packages = Callable[[str], dict[str, Path]]


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """``packages("trixie")``: this tree's amd64 agent and collector packages of that release,
    by part name, built on first use."""
    built: dict[str, dict[str, Path]] = {}

    def get(release: str) -> dict[str, Path]:
        skip_unless_possible()
        if release not in built:
            built[release] = build_debs(tmp_path_factory.mktemp(f"deb-{release}"), release)
        return built[release]

    return get
