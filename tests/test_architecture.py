"""Import rules of docs/adr/0000: the wire contract is pure, agent and server stay apart."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
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


# -- the agent's rooms ------------------------------------------------------------------------


def _imports_where(package: str, wrong: Callable[[Path, str], bool]) -> list[str]:
    """``path imports name`` for each import of ``package`` for which ``wrong(path, name)``."""
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules(package)
        for name in names
        if wrong(path, name)
    ]


def _room(path: Path) -> str:
    """``agent/firmware/updater.py`` -> ``agent.firmware``; top-level modules are their own."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2])


# room -> agent packages it never imports
AGENT_ROOMS_APART = {
    "agent.firmware": ("agent.commands",),  # the firmware.apply action uses firmware, not back
    "agent.vendors": ("agent.checks", "agent.commands"),
    "agent.messaging": ("agent.commands",),  # received commands go to an injected callable
    "agent.checks": ("agent.commands", "agent.messaging"),
}


@pytest.mark.parametrize("room", sorted(AGENT_ROOMS_APART))
def test_agent_rooms_stay_apart(room: str) -> None:
    banned = AGENT_ROOMS_APART[room]

    def wrong(path: Path, name: str) -> bool:
        return _room(path) == room and any(name == b or name.startswith(f"{b}.") for b in banned)

    assert _imports_where("agent", wrong) == []


# third-party library -> the only agent rooms (a module or a package) that may import it
AGENT_LIBRARY_HOMES = {
    "paho": ("agent/messaging/mqtt.py",),
    "zeep": ("agent/vendors/onvif/",),
    "onvif": ("agent/vendors/onvif/",),
    "tuf": ("agent/firmware/",),
}


@pytest.mark.parametrize("library", sorted(AGENT_LIBRARY_HOMES))
def test_agent_library_has_one_home(library: str) -> None:
    homes = AGENT_LIBRARY_HOMES[library]

    def wrong(path: Path, name: str) -> bool:
        return top(name) == library and not str(path.relative_to(ROOT)).startswith(homes)

    assert _imports_where("agent", wrong) == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected groups of two or more modules."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in order:
            visit(node)
    return found


@pytest.mark.parametrize("package", ["agent"])
def test_no_import_cycles(package: str) -> None:
    """Every import counts, at module level or in a function (a deferred import is a cycle
    still); ``from package import name`` counts as importing ``package.name`` when that is a
    module."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        graph[_module_name(path)] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = graph[_module_name(path)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        targets.intersection_update(graph)
        targets.discard(_module_name(path))
    assert _cycles(graph) == []


def test_agent_code_checks_for_real() -> None:
    """No ``assert`` in the agent: ``python -O`` drops them, so a check must be a real one."""
    bad = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "agent").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert bad == []
