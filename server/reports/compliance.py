"""Aggregating a ``ReportData`` into per-organisation figures, and writing them as CSV.

(The report as a document, PDF or Word, is ``server.reports.document``.)

One row per direct child of the chosen organisation unit, then its total: information systems
in scope, approved (a decision number on record) by level, protection plans fully or partly
implemented, cameras checked in the period (only a camera whose audit completed counts as
checked), cameras that could not be fully audited (login failed, unreachable, partial,
unsupported or not audited yet: counted apart, never as checked), critical findings opened and
closed in the period (and still open at its end), cameras with a known-exploited (CISA KEV)
finding, cameras no certificate covers (QCVN 11:2026/BCA, or QCVN 135:2024/BTTTT before it) or
flagged by the authorities, and cameras sharing their password with another camera of the
subtree (AUTH-03).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from server.domain.compliance import Approval, approval
from server.domain.reports import ReportData, ReportNode
from server.storage.org_models import LEVELS
from server.web.display import shown_text
from server.web.i18n import Catalogue

Format = Literal["pdf", "docx", "csv", "csv-summary"]
FONT_DIR: Final = Path("/usr/share/fonts/truetype/dejavu")
COLUMNS: Final = (
    "systems",
    "approved",
    "levels",
    "plan_full",
    "plan_partial",
    "devices",
    "checked",
    "not_audited",
    "critical_opened",
    "critical_closed",
    "critical_open",
    "kev",
    "uncertified",
    "password_reused",
)


@dataclass(frozen=True, slots=True)
class Figures:
    org_id: int
    name: str
    kind: str
    systems: int
    approved: int
    by_level: dict[int, int]  # approved systems per security level
    plan_full: int
    plan_partial: int
    devices: int
    checked: int
    not_audited: int  # cameras whose audit did not complete, whatever else they show
    critical_opened: int
    critical_closed: int
    critical_open: int  # still open at the end of the period
    kev: int
    uncertified: int  # not INV-02 compliant: uncertified or flagged models
    flagged: int
    password_reused: int  # cameras sharing a password with another camera (AUTH-03)
    not_audited_by_state: dict[str, int]

    def levels(self) -> str:
        return ", ".join(f"L{lvl}: {n}" for lvl, n in sorted(self.by_level.items(), reverse=True))


@dataclass(frozen=True, slots=True)
class Report:
    data: ReportData
    rows: list[Figures]
    total: Figures


def _figures(data: ReportData, under: ReportNode) -> Figures:
    nodes = [n for n in data.nodes if n.path.startswith(under.path)]
    systems = [n.id for n in nodes if n.kind == "system"]
    records = [data.records[s] for s in systems if s in data.records]
    levels = approval(data.records.get(s) for s in systems)
    sites = {n.site for n in nodes if n.site}
    devices = [d for d in data.devices if d.site in sites]
    stop = datetime.combine(data.end + timedelta(days=1), datetime.min.time(), UTC)
    begin = datetime.combine(data.start, datetime.min.time(), UTC)
    episodes = [e for e in data.critical if e.site in sites]
    return Figures(
        org_id=under.id,
        name=under.name,
        kind=under.kind,
        systems=levels.systems,
        approved=levels.approved,
        by_level=levels.by_level,
        plan_full=sum(r.plan_status == "full" for r in records),
        plan_partial=sum(r.plan_status == "partial" for r in records),
        devices=len(devices),
        checked=sum(d.checked for d in devices),
        not_audited=sum(d.audit != "audited" for d in devices),
        critical_opened=sum(begin <= e.opened_at < stop for e in episodes),
        critical_closed=sum(
            e.closed_at is not None and begin <= e.closed_at < stop for e in episodes
        ),
        critical_open=sum(e.closed_at is None or e.closed_at >= stop for e in episodes),
        kev=sum(d.kev for d in devices),
        uncertified=sum(d.inv02 != "certified" for d in devices),
        flagged=sum(d.inv02 == "flagged" for d in devices),
        password_reused=sum(d.password_reused for d in devices),
        not_audited_by_state=dict(Counter(d.audit for d in devices if d.audit != "audited")),
    )


def build(data: ReportData) -> Report:
    children = [n for n in data.nodes if n.parent_id == data.org.id]
    return Report(data, [_figures(data, c) for c in children], _figures(data, data.org))


def approval_sentence(a: Approval, catalogue: Catalogue, lang: str) -> str:
    """The headline provinces report: "41/41 systems approved; 3 at level 3, 38 at level 2"."""
    levels = ", ".join(
        catalogue.t(lang, "report.at_level", n=n, level=lvl) for lvl, n in a.levels()
    )
    head = catalogue.t(lang, "report.s_approved", approved=a.approved, systems=a.systems)
    return f"{head}; {levels}" if levels else head


def summary(report: Report, catalogue: Catalogue, lang: str) -> list[str]:
    """The sentences of a progress report, e.g. "41/41 systems approved; 3 at level 3, ..."."""
    t = report.total
    return [
        approval_sentence(Approval(t.systems, t.approved, t.by_level), catalogue, lang),
        catalogue.t(
            lang, "report.s_plans", full=t.plan_full, partial=t.plan_partial, systems=t.systems
        ),
        catalogue.t(lang, "report.s_checked", checked=t.checked, devices=t.devices),
        catalogue.t(lang, "report.s_not_audited", not_audited=t.not_audited)
        + (
            ": "
            + ", ".join(
                f"{n} {catalogue.t(lang, 'audit.' + state)}"
                for state, n in sorted(t.not_audited_by_state.items())
            )
            if t.not_audited
            else ""
        ),
        catalogue.t(
            lang,
            "report.s_critical",
            opened=t.critical_opened,
            closed=t.critical_closed,
            open=t.critical_open,
        ),
        catalogue.t(lang, "report.s_kev", kev=t.kev),
        catalogue.t(lang, "report.s_uncertified", uncertified=t.uncertified, flagged=t.flagged),
        catalogue.t(lang, "report.s_password_reused", cameras=t.password_reused),
    ]


def cells(f: Figures) -> list[str]:
    return [
        shown_text(f.name),
        str(f.systems),
        str(f.approved),
        f.levels(),
        str(f.plan_full),
        str(f.plan_partial),
        str(f.devices),
        str(f.checked),
        str(f.not_audited),
        str(f.critical_opened),
        str(f.critical_closed),
        str(f.critical_open),
        str(f.kev),
        str(f.uncertified),
        str(f.password_reused),
    ]


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: what would start a formula gets a leading quote."""
    text = shown_text(value)
    return "'" + text if text[:1] in _FORMULA_START else text


class _Cells:
    """A csv writer whose every cell passes through ``_csv_cell``."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: list[str]) -> None:
        self._writer.writerow([_csv_cell(cell) for cell in row])


LEVEL_COLUMNS: Final = tuple(f"level_{lvl}" for lvl in LEVELS)
CSV_COLUMNS: Final = (
    "row",
    "org_id",
    "org_name",
    "org_kind",
    "systems",
    "approved",
    *LEVEL_COLUMNS,
    *(c for c in COLUMNS if c not in ("systems", "approved", "levels")),
    "flagged",
)


def _values(f: Figures) -> dict[str, str]:
    """The figures of one unit under their CSV column names."""
    plain = {
        c: str(getattr(f, c))
        for c in CSV_COLUMNS
        if c not in ("row", "org_id", "org_name", "org_kind") and c not in LEVEL_COLUMNS
    }
    levels = {f"level_{lvl}": str(f.by_level.get(lvl, 0)) for lvl in LEVELS}
    return {"org_id": str(f.org_id), "org_name": f.name, "org_kind": f.kind, **plain, **levels}


def csv_bytes(rows: list[list[str]]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet tools pick the encoding. Names come from
    the organisation tree: a cell never starts a formula (=, +, -, @, tab, CR)."""
    out = io.StringIO()
    w = _Cells(out)
    for row in rows:
        w.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_csv(report: Report) -> bytes:
    """One header row of stable column names, then one row per unit directly under the report's
    unit (``row`` = ``unit``) and that unit's own total (``row`` = ``total``); no prose."""
    lines = [[*CSV_COLUMNS]]
    for kind, f in [*(("unit", r) for r in report.rows), ("total", report.total)]:
        values = {**_values(f), "row": kind}
        lines.append([values[c] for c in CSV_COLUMNS])
    return csv_bytes(lines)


def to_summary_csv(report: Report) -> bytes:
    """The report's summary as ``key,value`` rows: what was reported, for which period, by whom,
    and the totals of the unit (the same names as the figures' columns)."""
    d = report.data
    about = {
        "org_id": str(d.org.id),
        "org_name": d.org.name,
        "period_start": d.start.isoformat(),
        "period_end": d.end.isoformat(),
        "generated_at": d.generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "generated_by": d.generated_by,
    }
    totals = _values(report.total)
    figures = {k: v for k, v in totals.items() if k not in ("org_id", "org_name", "org_kind")}
    return csv_bytes([["key", "value"], *([k, v] for k, v in {**about, **figures}.items())])


def filename(report: Report, fmt: Format) -> str:
    d = report.data
    ext = {"csv-summary": "summary.csv"}.get(fmt, fmt)
    return f"compliance-{d.org.id}-{d.start.isoformat()}-{d.end.isoformat()}.{ext}"
