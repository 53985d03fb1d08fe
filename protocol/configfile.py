"""Layered TOML configuration into typed, frozen structs, with errors that name file, line and key.

Both the agent and the collector load their config with this module so that every config error
reads the same: ``/etc/camwarden/agent.toml:12: mqtt.port: Expected `int`, got `str```. Layers are
merged in order (later files win key by key); command-line overrides win over every file.
Pure: stdlib ``tomllib`` and msgspec only.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
_PATH = re.compile(r"at `\$((?:\.[A-Za-z0-9_\-]+|\[\d+\])*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


class ConfigError(Exception):
    """A config file or override is invalid; the message names where and what."""


@dataclass(frozen=True, slots=True)
class Origin:
    source: str  # a file path or "command line"
    line: int | None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def _key_lines(text: str) -> dict[str, int]:
    """Map dotted keys to the line that sets them (tables and plain ``key = value`` lines). The
    entries of an array of tables are numbered from 0: ``camera.1.id`` is the ``id`` of the
    second ``[[camera]]``, and ``camera`` is the line of the first."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}  # array of tables (its dotted path) -> entries so far
    table = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if m := _TABLE.match(raw):
            header = m.group(1).replace('"', "").replace("'", "").replace(" ", "")
            *parents, name = header.split(".")
            table = ""
            for part in parents:  # inside an array of tables: its current (last) entry
                table = f"{table}.{part}" if table else part
                table = f"{table}.{counts[table] - 1}" if table in counts else table
            table = f"{table}.{name}" if table else name
            if raw.lstrip().startswith("[["):
                lines.setdefault(table, number)
                counts[table] = counts.get(table, 0) + 1
                table = f"{table}.{counts[table] - 1}"
            lines.setdefault(table, number)
        elif m := _KEY.match(raw):
            key = m.group(1).replace('"', "").replace("'", "")
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


def parse_toml(text: str, source: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The TOML ``text`` and the line of each of its dotted keys; ``ConfigError`` naming
    ``source`` when it is not TOML."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return data, _key_lines(text)


def nearest(dotted: str, found: Mapping[str, T]) -> T | None:
    """What ``found`` holds for ``dotted``, or for its nearest parent key that it holds."""
    parts = dotted.split(".")
    while parts:
        value = found.get(".".join(parts))
        if value:
            return value
        parts.pop()
    return None


def _merge(
    into: dict[str, Any],
    new: Mapping[str, Any],
    origins: dict[str, Origin],
    where: Origin,
    lines: Mapping[str, int],
    *,
    prefix: str = "",
) -> None:
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, origins, where, lines, prefix=f"{dotted}.")
            continue
        into[key] = dict(value) if isinstance(value, Mapping) else value
        origins[dotted] = Origin(where.source, lines.get(dotted, where.line))
        if isinstance(value, Mapping):
            _record(value, origins, where, lines, f"{dotted}.")


def _record(
    value: Mapping[str, Any],
    origins: dict[str, Origin],
    where: Origin,
    lines: Mapping[str, int],
    prefix: str,
) -> None:
    for key, sub in value.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = Origin(where.source, lines.get(dotted, where.line))
        if isinstance(sub, Mapping):
            _record(sub, origins, where, lines, f"{dotted}.")


def locate(dotted: str, origins: Mapping[str, Origin]) -> Origin | None:
    """Where ``dotted`` (or its nearest parent key) was set: file and line."""
    return nearest(dotted, origins)


def read_layers(paths: Sequence[Path]) -> tuple[dict[str, Any], dict[str, Origin]]:
    merged: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text") from exc
        data, lines = parse_toml(text, str(path))
        _merge(merged, data, origins, Origin(str(path), None), lines)
    return merged, origins


def apply_overrides(
    merged: dict[str, Any], origins: dict[str, Origin], overrides: Mapping[str, Any]
) -> None:
    """Set dotted keys (``mqtt.port``) from the command line; they win over every file."""
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = merged
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        origins[dotted] = Origin("command line", None)


def build(cls: type[T], merged: Mapping[str, Any], origins: Mapping[str, Origin]) -> T:
    try:
        return msgspec.convert(merged, cls, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = _PATH.search(message)
        dotted = (path.group(1) if path else "").lstrip(".")
        dotted = re.sub(r"\[(\d+)\]", r".\1", dotted)
        unknown = _UNKNOWN.search(message)
        if unknown:
            dotted = f"{dotted}.{unknown.group(1)}" if dotted else unknown.group(1)
            text = "unknown key"
        else:
            text = _PATH.sub("", message).rstrip(" -")
        where = locate(dotted, origins) if dotted else None
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{dotted or '(top level)'}: {text}") from exc


def load(cls: type[T], paths: Sequence[Path], overrides: Mapping[str, Any] | None = None) -> T:
    merged, origins = read_layers(paths)
    apply_overrides(merged, origins, overrides or {})
    return build(cls, merged, origins)


def layer_paths(main: Path) -> list[Path]:
    """``main`` then ``<main stem>.d/*.toml`` in name order (``agent.toml``, ``agent.d/*.toml``)."""
    paths = [main] if main.exists() else []
    drop_in = main.with_name(f"{main.stem}.d")
    if drop_in.is_dir():
        paths.extend(sorted(drop_in.glob("*.toml")))
    return paths


REDACTED = "<redacted>"
# keys whose value is itself a secret; key material is configured as file paths, which stay
_SECRET_KEY = re.compile(r"(^|_)(password|passphrase|secret|token|psk)$")
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@/\s]*@")


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced: values of keys named like a password or token
    (non-empty ones), and the password of a URL's user information."""
    if isinstance(value, Mapping):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if value and _SECRET_KEY.search(key):
            return REDACTED
        return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", value)
    return value


def scalar(value: Any) -> str:
    """A TOML value: boolean, number, string, array (list or tuple) or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # ASCII JSON strings are TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(data: Mapping[str, Any], name: str, out: list[str]) -> None:
    for key, value in data.items():
        if value is None:
            out.append(f"# {key}: not set")
        elif not isinstance(value, dict) and not _is_tables(value):
            out.append(f"{key} = {scalar(value)}")
    for key, value in data.items():
        dotted = f"{name}.{key}" if name else key
        if isinstance(value, dict):
            out.extend(["", f"[{dotted}]"])
            _table(value, dotted, out)
        elif _is_tables(value):
            for item in value:
                out.extend(["", f"[[{dotted}]]"])
                _table(item, dotted, out)


def dumps(config: Any) -> str:
    """A config struct as TOML, secrets redacted (see :func:`redact`); unset keys as comments."""
    out: list[str] = []
    _table(redact(msgspec.to_builtins(config)), "", out)
    return "\n".join(out).lstrip("\n") + "\n"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key = value`` line of a written config, after its comment lines."""

    key: str
    value: Any
    comment: str = ""


def render(header: str, tables: Sequence[tuple[str, Sequence[Entry]]]) -> str:
    """A TOML document: ``header`` as comment lines, then each table (``""`` for the top level,
    ``"[mqtt]"``, ``"[[cameras]]"``) with its entries, each after its comment."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for title, entries in tables:
        if title:
            out.extend(["", title])
        for entry in entries:
            out.extend(f"# {line}".rstrip() for line in entry.comment.splitlines())
            out.append(f"{entry.key} = {scalar(entry.value)}")
    return "\n".join(out) + "\n"
