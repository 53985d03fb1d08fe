"""Import rules of docs/adr/0000: the wire contract is pure, agent and server stay apart."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("protocol", "service", "agent", "server", "lab")


def modules(package: str) -> Iterator[tuple[Path, set[str]]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        yield path, names


def top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


FORBIDDEN = {
    "protocol": {"service", "agent", "server", "lab"},
    "service": {"protocol", "agent", "server", "lab"},
    "agent": {"server", "lab"},
    "server": {"agent", "lab"},
    "lab": {"service", "agent", "server"},
}
PURE_PROTOCOL_BANNED = {"paho", "sqlalchemy", "fastapi", "starlette", "uvicorn", "httpx", "socket"}


@pytest.mark.parametrize("package", OURS)
def test_layering(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules(package)
        for name in names
        if top(name) in FORBIDDEN[package]
    ]
    assert bad == []


def test_protocol_is_pure() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules("protocol")
        for name in names
        if top(name) in PURE_PROTOCOL_BANNED
    ]
    assert bad == []


@pytest.mark.parametrize("package", ["agent", "server"])
def test_one_module_per_side_imports_paho(package: str) -> None:
    users = [path for path, names in modules(package) if any(top(n) == "paho" for n in names)]
    assert len(users) <= 1, users


def test_checks_use_the_vendor_neutral_interface_only() -> None:
    checks = ROOT / "agent" / "checks"
    if not checks.exists():
        pytest.skip("no checks package yet")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules("agent")
        if checks in path.parents
        for name in names
        if name.startswith("agent.vendors.")
        and name.split(".")[2] not in ("base", "model", "models", "registry")
    ]
    assert bad == []
