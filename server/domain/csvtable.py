"""Reading an imported CSV table whole, with every line's error named (the register and the
subscriber map share it).

One header row of known columns (any order; UTF-8, a byte-order mark allowed); each row gets its
line number (line 1 is the header), the cell count, required cells, lengths and control
characters checked here; what a cell means is checked by the importer's ``build``. Nothing is
half-read: a file with any error is not applied. The texts of the codes are ``register.e.<code>``
for the ones checked here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LineError:
    """What is wrong on one line of the file (line 1 is the header); the text is looked up by
    ``code`` with ``params``."""

    line: int
    code: str
    params: dict[str, str | int]


@dataclass(frozen=True, slots=True)
class Table:
    """The columns a file may have, the ones it must have, each one's length limit, and the
    size and row limits of one file."""

    limits: Mapping[str, int]
    required: Sequence[str]
    max_bytes: int
    max_rows: int


def read(
    data: bytes,
    table: Table,
    build: Callable[[int, dict[str, str]], tuple[T | None, list[LineError]]],
    identity: Callable[[T], Hashable] | None = None,
) -> tuple[list[tuple[int, T]], list[LineError]]:
    """(line, row) of every good row and the errors of every line (a caller applies the rows
    only when there is no error: it may check the good rows further first); ``build`` turns a
    row's stripped cells into a row or errors; rows of the same ``identity`` are duplicates of
    the first."""
    if len(data) > table.max_bytes:
        return [], [LineError(0, "too_big", {"limit": table.max_bytes // 1024})]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [LineError(0, "encoding", {})]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], [LineError(1, "no_header", {})]
    except csv.Error:
        return [], [LineError(1, "malformed", {})]
    errors = [
        LineError(1, "unknown_column", {"column": h}) for h in header if h not in table.limits
    ]
    errors += [
        LineError(1, "missing_column", {"column": c}) for c in table.required if c not in header
    ]
    if errors:
        return [], errors
    rows: list[tuple[int, T]] = []
    seen: dict[Hashable, int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) + len(errors) >= table.max_rows:
                errors.append(LineError(line, "too_many_rows", {"limit": table.max_rows}))
                break
            if len(cells) != len(header):
                errors.append(
                    LineError(line, "cells", {"found": len(cells), "expected": len(header)})
                )
                continue
            values = {h: cell.strip() for h, cell in zip(header, cells, strict=True)}
            problems = _checked(line, values, table)
            row, more = build(line, values)
            errors += problems + more
            if row is None or problems:
                continue
            if identity is not None and (first := seen.setdefault(identity(row), line)) != line:
                errors.append(LineError(line, "duplicate", {"first": first}))
            rows.append((line, row))
    except csv.Error:
        errors.append(LineError(reader.line_num, "malformed", {}))
    return rows, errors


def _checked(line: int, values: dict[str, str], table: Table) -> list[LineError]:
    """The errors of a row's cells every import shares: required, length, control characters."""
    problems = [LineError(line, "required", {"column": c}) for c in table.required if not values[c]]
    for column, value in values.items():
        if len(value) > table.limits[column]:
            problems.append(
                LineError(line, "too_long", {"column": column, "limit": table.limits[column]})
            )
        elif _CONTROL.search(value):
            problems.append(LineError(line, "control", {"column": column}))
    return problems
