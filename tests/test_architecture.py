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


# -- inside the server (docs/adr/0000; issue 18): storage at the bottom, the domain above it, the
# routes on top; only storage and the domain write SQL -----------------------------------------


def _server_imports(*parts: str) -> Iterator[tuple[str, str]]:
    """(module path, imported name) of every module under ``server/<parts>`` (a package or a
    module), imports inside functions included."""
    where = ROOT.joinpath("server", *parts)
    for path, names in modules("server"):
        if path == where.with_suffix(".py") or where in path.parents:
            for name in names:
                yield str(path.relative_to(ROOT)), name


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# storage calls back into ingest until ingest runs one way (issue 18 part 2)
_STORAGE_INTO_INGEST = {("server/storage/repository.py", "server.ingest.pipeline")}


def test_storage_imports_neither_ingest_nor_domain_nor_web() -> None:
    bad = [
        (path, name)
        for path, name in _server_imports("storage")
        if _under(name, "server.ingest", "server.domain", "server.web", "fastapi", "starlette")
    ]
    assert set(bad) - _STORAGE_INTO_INGEST == set()


def test_domain_never_imports_web() -> None:
    bad = [
        f"{path} imports {name}"
        for path, name in _server_imports("domain")
        if _under(name, "server.web", "server.api", "fastapi", "starlette", "jinja2")
    ]
    assert bad == []


@pytest.mark.parametrize("part", [("firmware",), ("domain", "firmware"), ("alerts",)])
def test_firmware_rollout_and_alert_code_never_imports_web(part: tuple[str, ...]) -> None:
    bad = [
        f"{path} imports {name}"
        for path, name in _server_imports(*part)
        if _under(name, "server.web")
    ]
    assert bad == []


def test_only_storage_and_the_domain_import_sqlalchemy() -> None:
    bad = [
        f"{path} imports {name}"
        for path, name in _server_imports()
        if top(name) in ("sqlalchemy", "alembic")
        and not path.startswith(("server/storage/", "server/domain/"))
    ]
    assert bad == []


def test_server_code_checks_without_assert() -> None:
    """``python -O`` drops asserts: the server checks with ``if`` and raises typed errors."""
    bad = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "server").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert bad == []
