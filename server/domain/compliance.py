"""What the compliance page, the report upward and the API say of a part of the tree.

Pure functions over the views the scoped layer returns (typed by the attributes they read, so
that this module imports nothing of the web): the approval headline in the shape provinces report
("41/41 systems approved; 3 at level 3, 38 at level 2") and the progress of each agency.

A camera whose audit did not complete is counted apart (``not_audited``), never as compliant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class LevelRecord(Protocol):
    @property
    def level(self) -> int: ...
    @property
    def decision_number(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Approval:
    """Information systems, those with an approval decision on record, and those per level."""

    systems: int
    approved: int
    by_level: dict[int, int]  # approved systems per security level

    def levels(self) -> list[tuple[int, int]]:
        """(level, systems), the highest level first."""
        return sorted(self.by_level.items(), reverse=True)


def approval(records: Iterable[LevelRecord | None]) -> Approval:
    """One entry per information system: its record, or None when it has none."""
    systems = 0
    approved: list[int] = []
    for record in records:
        systems += 1
        if record is not None and record.decision_number:
            approved.append(record.level)
    return Approval(systems, len(approved), dict(Counter(approved)))


class NodeLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...


class CountsLike(Protocol):
    @property
    def cameras(self) -> int: ...
    @property
    def cameras_not_audited(self) -> int: ...
    @property
    def cameras_compliant(self) -> int: ...


class OrgCountsLike(Protocol):
    @property
    def node(self) -> NodeLike: ...
    @property
    def counts(self) -> CountsLike: ...


@dataclass(frozen=True, slots=True)
class Progress:
    """An agency's cameras split three ways for its bar: compliant (audited, nothing failed),
    not compliant (audited, something failed) and not audited (counted apart)."""

    org_id: int
    name: str
    cameras: int
    compliant: int
    not_audited: int

    @property
    def failing(self) -> int:
        return self.cameras - self.compliant - self.not_audited

    def share(self, part: int) -> float:
        """``part`` in percent of the agency's cameras (0 when it has none)."""
        return round(100 * part / self.cameras, 1) if self.cameras else 0.0


def progress(orgs: Sequence[OrgCountsLike], kind: str = "agency") -> list[Progress]:
    """One bar per unit of ``kind``, in tree order."""
    return [
        Progress(
            o.node.id,
            o.node.name,
            o.counts.cameras,
            o.counts.cameras_compliant,
            o.counts.cameras_not_audited,
        )
        for o in orgs
        if o.node.kind == kind
    ]


def overall(parts: Iterable[CountsLike]) -> Progress:
    """The cameras of disjoint parts of the tree added up (the user's roots, unmapped sites)."""
    counted = list(parts)
    return Progress(
        0,
        "",
        sum(c.cameras for c in counted),
        sum(c.cameras_compliant for c in counted),
        sum(c.cameras_not_audited for c in counted),
    )
