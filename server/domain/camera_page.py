"""What the camera page shows first: counts, failed findings by control family, a history chart.

Pure functions over ``CameraView`` (no query of their own): the camera page reads the camera
once and arranges it. Control families are the prefixes of the control ids (``AUTH-02`` is in
``AUTH``), in the order of the control catalogue; a family not listed there comes last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from server.domain.cameras import CameraView, ReportLine
from server.domain.findings import FindingRow

STATUSES: Final = ("fail", "pass", "not_applicable", "inconclusive")
FAMILIES: Final = ("INV", "AUTH", "COM", "SVC", "FW", "LOG", "NET", "DATA")
OTHER: Final = "OTHER"  # findings without a control id, or of a family not in FAMILIES


@dataclass(frozen=True, slots=True)
class Family:
    family: str  # one of FAMILIES, or OTHER
    findings: list[FindingRow]


@dataclass(frozen=True, slots=True)
class Bar:
    """One report of the history chart, oldest first; ``failing`` is None when the report did
    not mention the camera or did not audit it fully (drawn apart: not a clean report)."""

    line: ReportLine
    failing: int | None
    x: float
    height: float


@dataclass(frozen=True, slots=True)
class CameraSummary:
    counts: dict[str, int]  # per status in STATUSES
    failed: list[Family]  # by family, each by severity (the camera's own order)
    others: list[FindingRow]  # the rest: inconclusive, then not applicable, then passed
    bars: list[Bar]
    peak: int  # the chart's top value (at least 1)


def family_of(row: FindingRow) -> str:
    families = {c.split("-", 1)[0] for c in row.controls}
    return next((f for f in FAMILIES if f in families), OTHER)


def summarise(cam: CameraView, width: float = 600.0, height: float = 120.0) -> CameraSummary:
    """``cam`` arranged for its page; the chart's bars fit ``width`` x ``height`` units."""
    counts = {s: sum(r.status == s for r in cam.findings) for s in STATUSES}
    failed = [r for r in cam.findings if r.status == "fail"]
    groups = [Family(f, [r for r in failed if family_of(r) == f]) for f in (*FAMILIES, OTHER)]
    rest = ("inconclusive", "not_applicable", "pass")
    others = sorted(
        (r for r in cam.findings if r.status in rest), key=lambda r: rest.index(r.status)
    )
    lines = list(reversed(cam.history))  # oldest first
    values = [line.failing if line.present and line.audit == "audited" else None for line in lines]
    peak = max([1, *(v for v in values if v is not None)])
    step = width / max(1, len(lines))
    bars = [
        Bar(line, v, round(i * step, 1), round((v or 0) / peak * height, 1))
        for i, (line, v) in enumerate(zip(lines, values, strict=True))
    ]
    return CameraSummary(counts, [g for g in groups if g.findings], others, bars, peak)
