"""Aggregating a ``ReportData`` into per-organisation figures, and writing it as CSV or PDF.

One row per direct child of the chosen organisation unit, then its total: information systems
in scope, approved (a decision number on record) by level, protection plans fully or partly
implemented, cameras checked in the period (only a camera whose audit completed counts as
checked), cameras that could not be fully audited (login failed, unreachable, partial,
unsupported or not audited yet: counted apart, never as checked), critical findings opened and
closed in the period (and still open at its end), cameras with a known-exploited (CISA KEV)
finding, cameras of models that are not certified (QCVN 135:2024) or are flagged by the
authorities, and cameras sharing their password with another camera of the subtree (AUTH-03).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from server.domain.scope import ReportData, ReportNode
from server.web.display import shown_text
from server.web.i18n import Catalogue

Format = Literal["csv", "pdf"]
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
    name: str
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
    approved = [r for r in records if r.decision_number]
    sites = {n.site for n in nodes if n.site}
    devices = [d for d in data.devices if d.site in sites]
    stop = datetime.combine(data.end + timedelta(days=1), datetime.min.time(), UTC)
    begin = datetime.combine(data.start, datetime.min.time(), UTC)
    episodes = [e for e in data.critical if e.site in sites]
    return Figures(
        name=under.name,
        systems=len(systems),
        approved=len(approved),
        by_level=dict(Counter(r.level for r in approved)),
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


def summary(report: Report, catalogue: Catalogue, lang: str) -> list[str]:
    """The sentences of a progress report, e.g. "41/41 systems approved, 3 at level 3, ..."."""
    t = report.total
    levels = ", ".join(
        catalogue.t(lang, "report.at_level", n=n, level=lvl)
        for lvl, n in sorted(t.by_level.items(), reverse=True)
    )
    return [
        catalogue.t(lang, "report.s_approved", approved=t.approved, systems=t.systems)
        + (f", {levels}" if levels else ""),
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


def _cells(f: Figures) -> list[str]:
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


def _head(report: Report, catalogue: Catalogue, lang: str) -> list[str]:
    d = report.data
    return [
        catalogue.t(lang, "report.title"),
        f"{catalogue.t(lang, 'report.org')}: {shown_text(d.org.name)}",
        catalogue.t(lang, "report.period", start=d.start.isoformat(), end=d.end.isoformat()),
        catalogue.t(
            lang,
            "report.generated",
            at=d.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            by=d.generated_by,
        ),
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


def to_csv(report: Report, catalogue: Catalogue, lang: str) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet tools pick the encoding. Names come from
    the organisation tree: a cell never starts a formula (=, +, -, @, tab, CR)."""
    out = io.StringIO()
    w = _Cells(out)
    for line in _head(report, catalogue, lang):
        w.writerow([line])
    for line in summary(report, catalogue, lang):
        w.writerow([line])
    w.writerow([])
    w.writerow(
        [catalogue.t(lang, "report.col.org")]
        + [catalogue.t(lang, f"report.col.{c}") for c in COLUMNS]
    )
    for row in report.rows:
        w.writerow(_cells(row))
    total = _cells(report.total)
    w.writerow([catalogue.t(lang, "report.total"), *total[1:]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class _Pdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 8)
        self.cell(0, 8, f"{self.footer_text} · {self.page_no()}/{{nb}}", align="R")


def to_pdf(report: Report, catalogue: Catalogue, lang: str) -> bytes:
    head = _head(report, catalogue, lang)
    pdf = _Pdf(f"camwarden · {shown_text(report.data.org.name)}")
    pdf.set_title(head[0])
    pdf.set_creator("camwarden")
    pdf.set_creation_date(report.data.generated_at)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, head[0], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    for line in head[1:]:
        pdf.cell(0, 6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, catalogue.t(lang, "report.summary"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    for line in summary(report, catalogue, lang):
        pdf.multi_cell(0, 6, f"• {line}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    headings = [catalogue.t(lang, "report.col.org")] + [
        catalogue.t(lang, f"report.col.{c}") for c in COLUMNS
    ]
    widths = (38, 14, 15, 22, 15, 15, 15, 16, 17, 17, 17, 14, 20, 21, 21)
    pdf.set_font("DejaVu", "", 7.5)
    rows = [_cells(r) for r in report.rows]
    total = _cells(report.total)
    rows.append([catalogue.t(lang, "report.total"), *total[1:]])
    with pdf.table(
        col_widths=widths,
        text_align=("LEFT", *["RIGHT"] * (len(widths) - 1)),
        line_height=4.5,
        first_row_as_headings=True,
    ) as table:
        table.row(headings)
        for cells in rows[:-1]:
            table.row(cells)
        table.row(rows[-1], style=FontFace(emphasis="BOLD"))
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(0, 4.5, catalogue.t(lang, "report.notes"))
    return bytes(pdf.output())


def render(report: Report, catalogue: Catalogue, lang: str, fmt: Format) -> bytes:
    return to_csv(report, catalogue, lang) if fmt == "csv" else to_pdf(report, catalogue, lang)


def filename(report: Report, fmt: Format) -> str:
    d = report.data
    return f"compliance-{d.org.id}-{d.start.isoformat()}-{d.end.isoformat()}.{fmt}"
