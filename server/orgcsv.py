"""The organisation tree from a CSV file: province, agencies, information systems and sites.

One row per unit, parents before children::

    kind,name,parent,site
    province,Tỉnh X,,
    agency,Sở Y,Tỉnh X,
    system,Camera trụ sở,Tỉnh X/Sở Y,
    site,Trụ sở chính,Tỉnh X/Sở Y/Camera trụ sở,hq

``parent`` is the full path of names from the top (empty for a province or ministry); ``site``
is the agents' site name, on ``site`` rows only. :func:`parse` checks the file (every error with
its line number, all of them at once) without touching the database; :func:`plan` compares it
with the tree already stored, so that importing the same file again adds nothing; the caller
applies the plan through the domain layer (``Orgs.create_org`` and ``Orgs.map_site``), which
checks and audits each unit like the dashboard does. Names compare without case, in NFC.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.storage.org_models import KINDS, PARENT_KINDS

__all__ = ["MAX_BYTES", "MAX_ROWS", "OrgCsvError", "Row", "Step", "Stored", "parse", "plan"]

MAX_BYTES = 1024 * 1024
MAX_ROWS = 10_000
MAX_NAME = 200
COLUMNS = ("kind", "name", "parent", "site")
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a topic level (protocol Name)


class OrgCsvError(ValueError):
    """The file is refused; ``errors`` lists each problem as ``line N: ...``."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    kind: str
    name: str
    parent: tuple[str, ...]
    site: str | None

    @property
    def path(self) -> tuple[str, ...]:
        return (*self.parent, self.name)


@dataclass(frozen=True, slots=True)
class Step:
    """A row and whether it is new (``add``) or already in the tree (``exists``)."""

    row: Row
    action: str  # "add" or "exists"

    def text(self) -> str:
        site = f" (site {self.row.site})" if self.row.site else ""
        mark = "+" if self.action == "add" else "="
        return f"{mark} {self.row.kind:<8} {'/'.join(self.row.path)}{site}"


def fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip().casefold()


def _key(path: Sequence[str]) -> tuple[str, ...]:
    return tuple(fold(part) for part in path)


def parse(data: bytes) -> list[Row]:
    """The rows of a CSV file (UTF-8, with or without a byte-order mark), or every error."""
    if len(data) > MAX_BYTES:
        raise OrgCsvError([f"the file is larger than {MAX_BYTES} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OrgCsvError([f"not UTF-8 text (byte {exc.start})"]) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if tuple(header) != COLUMNS:
        raise OrgCsvError([f"line 1: the header must be {','.join(COLUMNS)}"])
    rows: list[Row] = []
    errors: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    kinds: dict[tuple[str, ...], str] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) + len(errors) >= MAX_ROWS:
                errors.append(f"line {line}: more than {MAX_ROWS} rows")
                break
            row, problem = _row(line, cells)
            if row is not None:
                problem = problem or _placement(row, seen, kinds)
            if problem:
                errors.append(f"line {line}: {problem}")
            elif row is not None:
                rows.append(row)
                seen[_key(row.path)] = line
                kinds[_key(row.path)] = row.kind
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    if errors:
        raise OrgCsvError(errors)
    return rows


def _row(line: int, cells: list[str]) -> tuple[Row | None, str | None]:
    if len(cells) != len(COLUMNS):
        return None, f"{len(cells)} columns, expected {len(COLUMNS)} ({','.join(COLUMNS)})"
    kind, name, parent, site = (cell.strip() for cell in cells)
    kind = kind.lower()
    if kind not in KINDS:
        return None, f"unknown kind {kind!r}: one of {', '.join(KINDS)}"
    name = unicodedata.normalize("NFC", name)
    if not name or len(name) > MAX_NAME or "/" in name:
        return None, f"a name is 1 to {MAX_NAME} characters without '/'"
    parts = tuple(unicodedata.normalize("NFC", p.strip()) for p in parent.split("/") if p.strip())
    if (kind == "site") != bool(site):
        return None, "the site column is the agents' site name, on site rows only"
    if site and not _SITE.match(site):
        return None, f"site {site!r}: letters, digits, '_.-', at most 64 characters"
    return Row(line, kind, name, parts, site or None), None


def _placement(
    row: Row, seen: Mapping[tuple[str, ...], int], kinds: Mapping[tuple[str, ...], str]
) -> str | None:
    """What is wrong with the row's place among the rows above it (the stored tree is checked
    by :func:`plan`)."""
    if _key(row.path) in seen:
        return f"{'/'.join(row.path)} is already on line {seen[_key(row.path)]}"
    parent_kind = kinds.get(_key(row.parent)) if row.parent else None
    if row.parent and parent_kind is None:
        return None  # maybe in the stored tree: plan() decides
    if parent_kind not in PARENT_KINDS[row.kind]:
        return f"a {row.kind} cannot be placed under {parent_kind or 'the top'}"
    return None


@dataclass(frozen=True, slots=True)
class Stored:
    """A unit of the stored tree as :func:`plan` needs it."""

    id: int
    parent_id: int | None
    kind: str
    name: str
    site: str | None


def paths(tree: Sequence[Stored]) -> dict[tuple[str, ...], Stored]:
    """Each stored unit by its folded path of names from the top."""
    by_id = {unit.id: unit for unit in tree}
    out: dict[tuple[str, ...], Stored] = {}
    for unit in tree:
        chain = [unit]
        while len(chain) <= len(by_id):  # bounded: a loop in stored parents cannot hang
            parent = by_id.get(chain[-1].parent_id or -1)
            if parent is None:
                break
            chain.append(parent)
        out[_key([u.name for u in reversed(chain)])] = unit
    return out


def plan(rows: Sequence[Row], tree: Sequence[Stored]) -> list[Step]:
    """Each row as ``add`` or ``exists`` against the stored ``tree``, or every conflict."""
    stored = paths(tree)
    sites = {unit.site: unit for unit in tree if unit.site}
    planned = {_key(row.path): row.kind for row in rows}
    steps: list[Step] = []
    errors: list[str] = []
    for row in rows:
        here = stored.get(_key(row.path))
        if here is not None:
            if here.kind != row.kind or here.site != row.site:
                errors.append(
                    f"line {row.line}: {'/'.join(row.path)} is stored as a {here.kind}"
                    + (f" (site {here.site})" if here.site else "")
                )
            steps.append(Step(row, "exists"))
            continue
        parent = stored.get(_key(row.parent)) if row.parent else None
        parent_kind = parent.kind if parent else planned.get(_key(row.parent))
        if row.parent and parent_kind is None:
            errors.append(
                f"line {row.line}: parent {'/'.join(row.parent)} is neither on a line above"
                " nor in the stored tree"
            )
        elif parent_kind not in PARENT_KINDS[row.kind]:
            errors.append(
                f"line {row.line}: a {row.kind} cannot be placed under {parent_kind or 'the top'}"
            )
        elif row.site and row.site in sites:
            errors.append(f"line {row.line}: site {row.site} is already in the stored tree")
        steps.append(Step(row, "add"))
    if errors:
        raise OrgCsvError(errors)
    return steps
