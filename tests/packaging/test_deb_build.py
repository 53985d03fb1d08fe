"""packaging/deb/build.py's per-architecture choices (ADR 0004), without building anything."""

from __future__ import annotations

import importlib.util
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


def test_armhf_depends_on_the_debian_libraries_its_extensions_link(build: ModuleType) -> None:
    server, agent = build.PARTS["server"], build.PARTS["agent"]
    armhf = build.depends(server, "armhf", "libc6 (>= 2.36)")
    assert {"libpq5", "libjpeg62-turbo", "libffi8", "libc6 (>= 2.36)"} <= set(armhf)
    assert "libffi8" in build.depends(agent, "armhf", "libc6 (>= 2.36)")
    amd64 = build.depends(server, "amd64", "libc6 (>= 2.34)")
    assert not {"libpq5", "libjpeg62-turbo", "libffi8"} & set(amd64)


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
