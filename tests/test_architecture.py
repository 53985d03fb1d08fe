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


# -- import cycles, library owners, the ingest's and the wire contract's limits ------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports: ``import a.b`` names ``a.b``; ``from a
    import b`` names ``a`` (its ``__init__`` runs first) and ``a.b`` when that is a module."""
    graph = {module_name(path): names for path, names in modules(package)}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                graph[module_name(path)].update(f"{node.module}.{a.name}" for a in node.names)
    return {name: {n for n in names if n in graph and n != name} for name, names in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, edges = work[-1]
            nxt = next((n for n in edges if n not in index or n in stack), None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                work.append((nxt, iter(sorted(graph[nxt]))))
            else:
                low[node] = min(low[node], index[nxt])
    return found


# A cycle another branch is removing (the storage package imported by its own repository): this
# list goes once it is in.
KNOWN_CYCLES = [{"server.storage", "server.storage.repository"}]


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]


@pytest.mark.parametrize("package", OURS)
def test_no_import_cycles_inside_a_package(package: str) -> None:
    assert [c for c in cycles(import_graph(package)) if c not in KNOWN_CYCLES] == []


# third-party libraries and the only modules that may import them (prefixes of module names)
LIBRARY_USERS = {
    "paho": ("agent.messaging.mqtt", "server.ingest.subscriber"),
    "zeep": ("agent.vendors.onvif.",),
    "onvif": ("agent.vendors.onvif.",),
    "tuf": ("agent.firmware.", "server.firmware.tuf_repo"),
}


@pytest.mark.parametrize("library", sorted(LIBRARY_USERS))
def test_libraries_are_imported_in_their_room_only(library: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in OURS
        for path, names in modules(package)
        for name in names
        if top(name) == library and not module_name(path).startswith(LIBRARY_USERS[library])
    ]
    assert bad == []


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or a module inside one of them."""
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def test_ingest_never_imports_the_web_or_the_database_library() -> None:
    # data goes from the subscriber to the pipeline to storage; storage maps database errors
    banned = ("server.web", "server.api", "fastapi", "starlette", "sqlalchemy")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules("server")
        if within(module_name(path), ("server.ingest",))
        for name in names
        if within(name, banned)
    ]
    assert bad == []


# calls that touch files; ``open`` and ``os.*`` are caught by name, the rest as methods of a path
FILE_CALLS = {"open", "mkdir", "read_bytes", "read_text", "rename", "rmdir", "touch", "unlink"}
FILE_CALLS |= {"write_bytes", "write_text", "glob", "exists", "is_dir", "is_file", "iterdir"}
# the config loader reads the files it is given, and ``python -m protocol`` (a developer's
# command, imported by neither side) writes the shipped JSON Schemas
PROTOCOL_FILE_USERS = {"protocol.configfile": {"read_text", "exists", "is_dir", "glob"}}
PROTOCOL_FILE_USERS["protocol.__main__"] = {"write_text"}


def test_protocol_does_no_file_io() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules("protocol")
        for name in names
        if top(name) in ("os", "shutil", "tempfile")
    ]
    for path in sorted((ROOT / "protocol").rglob("*.py")):
        allowed = PROTOCOL_FILE_USERS.get(module_name(path), set())
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FILE_CALLS and name not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert bad == []
