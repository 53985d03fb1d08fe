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


# third-party library -> the only places (a module or a package) that may import it
LIBRARY_HOMES = {
    "paho": ("agent/messaging/mqtt.py", "server/ingest/subscriber.py"),
    "zeep": ("agent/vendors/onvif/",),
    "onvif": ("agent/vendors/onvif/",),
    "tuf": ("agent/firmware/", "server/firmware/tuf_repo.py"),
    "nats": ("server/ingest/jetstream.py",),  # the collector on a NATS cluster (ADR 0032)
}


@pytest.mark.parametrize("library", sorted(LIBRARY_HOMES))
def test_library_has_its_homes_only(library: str) -> None:
    homes = LIBRARY_HOMES[library]

    def wrong(path: Path, name: str) -> bool:
        return top(name) == library and not str(path.relative_to(ROOT)).startswith(homes)

    assert [bad for package in OURS for bad in _imports_where(package, wrong)] == []


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


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d", "e"]]


@pytest.mark.parametrize("package", OURS)
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


@pytest.mark.parametrize("package", ["agent", "server", "protocol", "service", "lab"])
def test_code_checks_for_real(package: str) -> None:
    """No ``assert`` outside the tests: ``python -O`` drops them, so a check must be a real one
    (an ``if`` raising a typed error)."""
    bad = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert bad == []


# -- the ingest's and the wire contract's limits ------------------------------------------


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or a module inside one of them."""
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def test_ingest_never_imports_the_web_or_the_database_library() -> None:
    # data goes from the subscriber to the pipeline to storage; storage maps database errors
    banned = ("server.web", "server.api", "fastapi", "starlette", "sqlalchemy")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in modules("server")
        if within(_module_name(path), ("server.ingest",))
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
        allowed = PROTOCOL_FILE_USERS.get(_module_name(path), set())
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FILE_CALLS and name not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert bad == []
