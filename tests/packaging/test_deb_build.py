"""packaging/deb/build.py's per-architecture choices (ADR 0004), without building anything."""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deb_build", ROOT / "packaging/deb/build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arch", ["amd64", "arm64", "armhf"])
def test_both_parts_resolve_for_every_architecture(build: ModuleType, arch: str) -> None:
    assert arch in build.MACHINE
    for part in build.PARTS.values():
        reqs = build.requirements(part, arch)
        assert reqs, part.name
        if part.name != "server":
            assert not any(req.startswith("psycopg") for req in reqs)
            assert not build.libpq(part, arch)


def test_armhf_collector_uses_debian_libpq(build: ModuleType) -> None:
    server = build.PARTS["server"]
    armhf = build.requirements(server, "armhf")
    assert "psycopg>=3.2" in armhf
    assert not any("binary" in req for req in armhf)
    assert build.libpq(server, "armhf")
    for arch in ("amd64", "arm64"):
        assert "psycopg[binary]>=3.2" in build.requirements(server, arch)
        assert not build.libpq(server, arch)


def test_cross_built_names_match_wheel_files(build: ModuleType) -> None:
    assert build.wheel_name("argon2-cffi-bindings<26") == "argon2_cffi_bindings"
    assert build.wheel_name("SQLAlchemy") == "sqlalchemy"
    for part in build.PARTS.values():
        assert "cffi" in part.cross_built  # cryptography's dependency, no armv7l wheel


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_armhf_depends_on_the_debian_libraries_its_extensions_link(
    build: ModuleType, release: str
) -> None:
    server, agent = build.PARTS["server"], build.PARTS["agent"]
    deb = build.RELEASES[release]
    armhf = build.depends(server, "armhf", deb, "libc6 (>= 2.36)")
    assert {"libpq5", "libjpeg62-turbo", "libffi8", "libc6 (>= 2.36)"} <= set(armhf)
    assert "libffi8" in build.depends(agent, "armhf", deb, "libc6 (>= 2.36)")
    amd64 = build.depends(server, "amd64", deb, "libc6 (>= 2.34)")
    assert not {"libpq5", "libjpeg62-turbo", "libffi8"} & set(amd64)


@pytest.mark.parametrize(
    ("release", "python"),
    [
        ("bookworm", ["python3 (>= 3.11~)", "python3 (<< 3.12)"]),
        ("trixie", ["python3 (>= 3.13~)", "python3 (<< 3.14)"]),
    ],
)
def test_each_release_needs_exactly_its_python(
    build: ModuleType, release: str, python: list[str]
) -> None:
    """apt refuses a package only where its wheels' ABI and .pyc files cannot load."""
    for arch in build.MACHINE:
        found = build.depends(build.PARTS["agent"], arch, build.RELEASES[release], "libc6")
        assert [dep for dep in found if dep.startswith("python3 ")] == python


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg compares Debian versions")
def test_release_suffixes_sort_upgrades_forward() -> None:
    """0.1.0-1 (bookworm only) < 0.2.0-1+deb12 < 0.2.0-1+deb13: a dist-upgrade from bookworm
    to trixie replaces the +deb12 package with the +deb13 one."""
    chain = ["0.1.0-1", "0.1.0-1+deb12", "0.1.0-1+deb13", "0.2.0-1+deb12", "0.2.0-1+deb13"]
    for older, newer in itertools.pairwise(chain):
        done = subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=False)
        assert done.returncode == 0, (older, newer)


def test_manylinux_tags_stop_at_the_release_glibc(build: ModuleType) -> None:
    bookworm = build.platforms("arm64", build.RELEASES["bookworm"])
    trixie = build.platforms("arm64", build.RELEASES["trixie"])
    assert bookworm[0] == "manylinux_2_36_aarch64"
    assert trixie[0] == "manylinux_2_41_aarch64"
    assert bookworm[-1] == trixie[-1] == "manylinux2014_aarch64"


@pytest.mark.parametrize(
    ("arch", "libdir"),
    [
        ("amd64", "/usr/lib/x86_64-linux-gnu/"),
        ("arm64", "/usr/lib/aarch64-linux-gnu/"),
        ("armhf", "/usr/lib/arm-linux-gnueabihf/"),
    ],
)
def test_broker_example_names_the_plugin_of_its_architecture(
    build: ModuleType, arch: str, libdir: str
) -> None:
    plugins = [
        line.split(maxsplit=1)[1]
        for line in build.broker_conf(arch).splitlines()
        if line.startswith("plugin ")
    ]
    assert plugins == [f"{libdir}mosquitto_dynamic_security.so"]
