"""The compliance report sent upward, as an administrative document (Decree 30/2020/NĐ-CP).

The document's parts in the decree's order: the issuing body under its governing body with the
number and symbol, the national motto, place and date, the kind of document and its abstract,
the addressee (Kính gửi), the body, the recipients (Nơi nhận) beside the signature block, then
the annex: one row per information system (owner agency, level, decision number and date,
cameras, cameras compliant, not audited, open critical and high findings), a chart of the same
and the figures per organisation unit.

Every text is composed once (``compose``) and laid out twice: a PDF with the fonts the other
reports use (``to_pdf``) and a Word document that officers edit before signing (``to_docx``).
What the letterhead leaves out is left as dots to fill in, never invented.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm, Pt
from docx.table import _Cell
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from PIL import Image, ImageDraw, ImageFont

from server.domain.compliance import Progress
from server.domain.orgs import SystemView
from server.reports.compliance import (
    COLUMNS,
    FONT_DIR,
    Format,
    Report,
    cells,
    summary,
    to_csv,
    to_summary_csv,
)
from server.web.display import shown_text
from server.web.i18n import Bound, Catalogue

Kind = Literal["heading", "para", "item"]
BLANK: Final = "…………"  # a part of the letterhead left for the officer to fill in
FIELD_MAX: Final = 200  # characters of each letterhead field
RECIPIENTS_MAX: Final = 12
SERIF: Final = {
    "": "DejaVuSerif.ttf",
    "B": "DejaVuSerif-Bold.ttf",
    "I": "DejaVuSerif-Italic.ttf",
    "BI": "DejaVuSerif-BoldItalic.ttf",
}
DOCX_FONT: Final = "Times New Roman"  # the decree's typeface; Word substitutes where absent


@dataclass(frozen=True, slots=True)
class Letterhead:
    """What the officer sets for this issue of the document (None: left to fill in)."""

    issuing_body: str | None = None  # None: the report's organisation unit
    governing_body: str | None = None  # None: the unit above it, if any
    number: str | None = None  # number and symbol, e.g. "125/BC-CAT"
    place: str | None = None
    addressee: str | None = None
    recipients: tuple[str, ...] = ()
    signer_title: str | None = None
    signer_name: str | None = None

    def __post_init__(self) -> None:
        fields = (
            self.issuing_body,
            self.governing_body,
            self.number,
            self.place,
            self.addressee,
            self.signer_title,
            self.signer_name,
            *self.recipients,
        )
        if any(f is not None and len(f) > FIELD_MAX for f in fields):
            raise ValueError(f"a letterhead field is longer than {FIELD_MAX} characters")
        if len(self.recipients) > RECIPIENTS_MAX:
            raise ValueError(f"more than {RECIPIENTS_MAX} recipients")


@dataclass(frozen=True, slots=True)
class AnnexRow:
    system: str
    agency: str
    level: int | None
    decision_number: str | None
    decision_date: date | None
    cameras: int
    compliant: int
    not_audited: int
    critical: int  # open (failing) critical findings
    high: int


def annex(report: Report, systems: Sequence[SystemView]) -> list[AnnexRow]:
    """The information systems of the report's subtree, in tree order."""
    order = {n.id: i for i, n in enumerate(report.data.nodes) if n.kind == "system"}
    rows = sorted((s for s in systems if s.id in order), key=lambda s: order[s.id])
    return [
        AnnexRow(
            s.name,
            s.agency,
            s.record.level if s.record else None,
            s.record.decision_number if s.record else None,
            s.record.decision_date if s.record else None,
            s.counts.cameras,
            s.counts.cameras_compliant,
            s.counts.cameras_not_audited,
            s.counts.failing.get("critical", 0),
            s.counts.failing.get("high", 0),
        )
        for s in rows
    ]


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    headings: list[str]
    rows: list[list[str]]
    widths: tuple[int, ...]  # relative widths of the columns
    texts: int  # the first columns hold text (left-aligned); the others figures
    total_last: bool  # the last row is a total (bold)


@dataclass(frozen=True, slots=True)
class Text:
    """Every text of the document, in its language, ready to lay out."""

    governing: str
    issuer: str
    number: str
    motto: tuple[str, str]
    place_date: str
    kind: str
    abstract: str
    addressee: str
    body: list[tuple[Kind, str]]
    recipients_label: str
    recipients: list[str]
    signer_title: str
    signer_name: str
    annex_title: str
    annex_abstract: str
    tables: list[Table]
    chart_title: str
    charts: list[bytes]  # PNG, one per ``CHART_BARS`` systems (a page each)
    footer: str


def dated(catalogue: Catalogue, lang: str, place: str, day: date) -> str:
    """ "Hà Nội, ngày 07 tháng 12 năm 2026": day below 10 and months 1 and 2 with a leading
    zero, as the decree asks; the English form spells the month."""
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return catalogue.t(
        lang,
        "doc.place_date",
        place=place,
        day=f"{day.day:02d}",
        month=month,
        month_name=catalogue.t(lang, f"doc.month.{day.month}"),
        year=str(day.year),
    )


def compose(  # noqa: PLR0917  # the report and how to write it
    report: Report,
    rows: list[AnnexRow],
    head: Letterhead,
    catalogue: Catalogue,
    lang: str,
    zone: ZoneInfo,
) -> Text:
    t = catalogue.bound(lang)
    d = report.data
    parent = next((n for n in d.nodes if n.id == d.org.parent_id), None)
    issuer = shown_text(head.issuing_body or d.org.name)
    governing = head.governing_body or (parent.name if parent else "")
    period = {"start": day_text(catalogue, lang, d.start), "end": day_text(catalogue, lang, d.end)}
    body: list[tuple[Kind, str]] = [
        ("para", t("doc.intro", issuer=issuer, org=shown_text(d.org.name), **period)),
        ("heading", t("doc.results")),
        *(("item", line) for line in summary(report, catalogue, lang)),
        ("heading", t("doc.method")),
        ("para", t("report.notes")),
        ("para", t("doc.closing", issuer=issuer)),
    ]
    issued = d.generated_at.astimezone(zone).date()
    legend = (
        t("compliance.cameras_compliant"),
        t("compliance.cameras_failing"),
        t("compliance.cameras_not_audited"),
    )
    return letter(
        head,
        catalogue,
        lang,
        issuer=issuer,
        governing=governing,
        issued=issued,
        abstract=t("doc.abstract", **period),
        annex_date=day_text(catalogue, lang, issued),
        body=body,
        tables=[_systems_table(rows, t), _orgs_table(report, t)],
        chart_title=t("doc.chart"),
        charts=[
            chart_png(
                [Progress(0, r.system, r.cameras, r.compliant, r.not_audited) for r in part],
                legend,
            )
            for part in (rows[i : i + CHART_BARS] for i in range(0, len(rows), CHART_BARS))
        ],
    )


def letter(  # the parts that differ from one document to another
    head: Letterhead,
    catalogue: Catalogue,
    lang: str,
    *,
    issuer: str,
    governing: str,
    issued: date,
    abstract: str,
    annex_date: str,
    body: list[tuple[Kind, str]],
    tables: list[Table],
    chart_title: str = "",
    charts: Sequence[bytes] = (),
) -> Text:
    """An administrative document around its own parts: the letterhead as the decree lays it out
    (what ``head`` leaves out left as dots to fill in), ``issuer`` (as shown) and ``governing``
    at its head and in the footer with the number, dated ``issued``."""
    t = catalogue.bound(lang)
    number = t("doc.number", number=head.number or BLANK)
    return Text(
        governing=shown_text(governing).upper(),
        issuer=issuer.upper(),
        number=number,
        motto=(t("doc.motto"), t("doc.motto2")),
        place_date=dated(catalogue, lang, shown_text(head.place or BLANK), issued),
        kind=t("doc.kind"),
        abstract=abstract,
        addressee=t("doc.addressee", addressee=shown_text(head.addressee or BLANK)),
        body=body,
        recipients_label=t("doc.recipients"),
        recipients=[f"- {shown_text(r)};" for r in head.recipients] + [f"- {t('doc.archive')}."],
        signer_title=shown_text(head.signer_title or BLANK).upper(),
        signer_name=shown_text(head.signer_name or BLANK),
        annex_title=t("doc.annex"),
        annex_abstract=t("doc.annex_of", number=head.number or BLANK, date=annex_date),
        tables=tables,
        chart_title=chart_title,
        charts=list(charts),
        footer=f"{issuer} · {number}",
    )


def day_text(catalogue: Catalogue, lang: str, day: date) -> str:
    """A date in the running text: "ngày 07 tháng 12 năm 2026", both figures on two digits."""
    return catalogue.t(lang, "doc.date", day=f"{day.day:02d}", month=f"{day.month:02d}",
                       year=str(day.year))  # fmt: skip


def _systems_table(rows: list[AnnexRow], t: Bound) -> Table:
    keys = ("no", "system", "agency", "level", "decision", "cameras", "compliant",
            "not_audited", "critical", "high")  # fmt: skip
    return Table(
        t("doc.annex_systems"),
        [t(f"doc.col.{k}") for k in keys],
        [
            [
                str(i),
                shown_text(r.system),
                shown_text(r.agency),
                str(r.level) if r.level else "",
                _decision(r),
                str(r.cameras),
                str(r.compliant),
                str(r.not_audited),
                str(r.critical),
                str(r.high),
            ]
            for i, r in enumerate(rows, 1)
        ],
        (8, 40, 34, 12, 34, 16, 18, 18, 18, 16),
        texts=3,
        total_last=False,
    )


def _decision(r: AnnexRow) -> str:
    parts = [
        r.decision_number or "",
        r.decision_date.strftime("%d/%m/%Y") if r.decision_date else "",
    ]
    return ", ".join(p for p in parts if p)


def _orgs_table(report: Report, t: Bound) -> Table:
    total = cells(report.total)
    return Table(
        t("doc.annex_orgs"),
        [t("report.col.org"), *(t(f"report.col.{c}") for c in COLUMNS)],
        [*(cells(r) for r in report.rows), [t("report.total"), *total[1:]]],
        (38, 14, 15, 22, 15, 15, 15, 16, 17, 17, 17, 14, 20, 21, 21),
        texts=1,
        total_last=True,
    )


# -- the chart, one PNG for both layouts --------------------------------------------------------

_COLOURS: Final = ((6, 118, 71), (217, 45, 32), (152, 162, 179))
_BAR_ROW: Final = 28  # pixels per system
CHART_BARS: Final = 20  # systems per chart: one fits a landscape page
_LABEL_W: Final = 340
_BAR_W: Final = 560


def chart_png(bars: list[Progress], legend: tuple[str, str, str]) -> bytes:
    """Stacked bars: compliant, audited with failed checks, not audited (apart, in grey)."""
    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), 15)
    height = 40 + _BAR_ROW * max(1, len(bars))
    image = Image.new("RGB", (_LABEL_W + _BAR_W + 120, height), "white")
    draw = ImageDraw.Draw(image)
    x = 10
    for colour, text in zip(_COLOURS, legend, strict=True):
        draw.rectangle((x, 10, x + 14, 24), fill=colour)
        draw.text((x + 20, 8), text, fill="black", font=font)
        x += 40 + int(draw.textlength(text, font=font))
    for i, bar in enumerate(bars):
        y = 40 + i * _BAR_ROW
        draw.text((10, y + 2), _fit(draw, bar.name, font, _LABEL_W - 20), fill="black", font=font)
        left = _LABEL_W
        draw.rectangle((left, y, left + _BAR_W, y + 20), fill=(242, 244, 247))
        for colour, part in zip(
            _COLOURS, (bar.compliant, bar.failing, bar.not_audited), strict=True
        ):
            width = round(bar.share(part) * _BAR_W / 100)
            if width:
                draw.rectangle((left, y, left + width, y + 20), fill=colour)
            left += width
        draw.text((_LABEL_W + _BAR_W + 8, y + 2), f"{bar.compliant}/{bar.cameras}", fill="black",
                  font=font)  # fmt: skip
    out = io.BytesIO()
    # a few colours: a small palette image, quick to write and for the PDF to embed
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(out, "PNG")
    return out.getvalue()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    shown = shown_text(text)
    while shown and draw.textlength(shown, font=font) > width:
        shown = shown[:-2] + "…"
    return shown


# -- PDF ----------------------------------------------------------------------------------------


class _Pdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        for style, name in SERIF.items():
            self.add_font("Serif", style, str(FONT_DIR / name))
        # Decree 30: top 20-25 mm, bottom 20-25, left 30-35, right 15-20
        self.set_margins(30, 20, 15)
        self.set_auto_page_break(auto=True, margin=20)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Serif", "", 8)
        self.cell(0, 8, f"{self.footer_text} · {self.page_no()}/{{nb}}", align="R")


def to_pdf(text: Text, title: str, generated: datetime) -> bytes:
    pdf = _Pdf(text.footer)
    pdf.set_title(title)
    pdf.set_creator("camwarden")
    pdf.set_creation_date(generated)
    pdf.add_page()
    _pdf_letterhead(pdf, text)
    pdf.set_font("Serif", "B", 14)
    pdf.cell(0, 7, text.kind, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "B", 13)
    pdf.multi_cell(0, 6.5, text.abstract, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Serif", "", 13)
    pdf.multi_cell(0, 6.5, text.addressee, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    for kind, line in text.body:
        pdf.set_font("Serif", "B" if kind == "heading" else "", 13)
        shown = f"- {line}" if kind == "item" else line
        pdf.multi_cell(0, 6.5, shown, align="J", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)
    pdf.ln(4)
    _pdf_signature(pdf, text)
    pdf.add_page(orientation="L")
    pdf.set_font("Serif", "B", 13)
    pdf.cell(0, 7, text.annex_title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "I", 11)
    pdf.cell(0, 6, text.annex_abstract, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for table in text.tables:
        _pdf_table(pdf, table)
    for chart in text.charts:
        pdf.add_page(orientation="L")
        pdf.set_font("Serif", "B", 11)
        pdf.cell(0, 7, text.chart_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.image(io.BytesIO(chart), w=min(pdf.epw, 240))
    return bytes(pdf.output())


_LEFT_W: Final = 62.0  # mm: the issuing body's column, and the recipients'
_RIGHT_X: Final = 95.0  # mm from the page's edge: the motto's column, and the signature's


def _pdf_letterhead(pdf: _Pdf, text: Text) -> None:
    top = pdf.get_y()
    pdf.set_font("Serif", "", 12)
    if text.governing:
        pdf.multi_cell(_LEFT_W, 5.5, text.governing, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "B", 12)
    pdf.multi_cell(_LEFT_W, 5.5, text.issuer, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "", 12)
    pdf.ln(2)
    pdf.multi_cell(_LEFT_W, 6, text.number, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    bottom_left = pdf.get_y()
    pdf.set_xy(_RIGHT_X, top)
    pdf.set_font("Serif", "B", 11)  # DejaVu is wider than the decree's Times: one line still
    pdf.cell(100, 5.5, text.motto[0], align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("Serif", "B", 13)
    pdf.cell(100, 6, text.motto[1], align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.line(_RIGHT_X + 28, pdf.get_y(), _RIGHT_X + 72, pdf.get_y())
    pdf.set_xy(_RIGHT_X, pdf.get_y() + 3)
    pdf.set_font("Serif", "I", 13)
    pdf.cell(100, 6, text.place_date, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(bottom_left, pdf.get_y()) + 8)


def _pdf_signature(pdf: _Pdf, text: Text) -> None:
    top = pdf.get_y()
    pdf.set_font("Serif", "BI", 12)
    pdf.cell(_LEFT_W, 6, text.recipients_label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "", 11)
    for line in text.recipients:
        pdf.multi_cell(_LEFT_W, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_xy(_RIGHT_X, top)
    pdf.set_font("Serif", "B", 13)
    pdf.multi_cell(100, 6.5, text.signer_title, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(24)
    pdf.set_x(_RIGHT_X)
    pdf.multi_cell(100, 6.5, text.signer_name, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _pdf_table(pdf: _Pdf, table: Table) -> None:
    pdf.ln(3)
    pdf.set_font("Serif", "B", 11)
    pdf.cell(0, 7, table.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Serif", "", 8)
    scale = pdf.epw / sum(table.widths)
    with pdf.table(
        col_widths=tuple(w * scale for w in table.widths),
        text_align=(*["LEFT"] * table.texts, *["RIGHT"] * (len(table.widths) - table.texts)),
        line_height=4.5,
        first_row_as_headings=True,
    ) as out:
        out.row(table.headings)
        for i, row in enumerate(table.rows):
            last = table.total_last and i == len(table.rows) - 1
            out.row(row, style=FontFace(emphasis="BOLD") if last else None)


# -- DOCX ---------------------------------------------------------------------------------------


def to_docx(text: Text, title: str) -> bytes:
    doc = docx.Document()
    doc.core_properties.title = title
    doc.core_properties.author = "camwarden"
    style = doc.styles["Normal"]
    style.font.name = DOCX_FONT
    style.font.size = Pt(13)
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    head = doc.add_table(rows=1, cols=2)
    head.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = head.rows[0].cells
    _para(left, text.governing, size=12, first=True)
    _para(left, text.issuer, bold=True, size=12, underline=True)
    _para(left, text.number, size=12)
    _para(right, text.motto[0], bold=True, size=12, first=True)
    _para(right, text.motto[1], bold=True, size=13, underline=True)
    _para(right, text.place_date, italic=True)
    _para(doc, text.kind, bold=True, size=14)
    _para(doc, text.abstract, bold=True)
    _para(doc, text.addressee)
    for kind, line in text.body:
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        p.add_run(f"- {line}" if kind == "item" else line).bold = kind == "heading"
    sign = doc.add_table(rows=1, cols=2)
    recipients, signer = sign.rows[0].cells
    _para(recipients, text.recipients_label, bold=True, italic=True, size=12, first=True,
          centre=False)  # fmt: skip
    for line in text.recipients:
        _para(recipients, line, size=11, centre=False)
    _para(signer, text.signer_title, bold=True, first=True)
    for _ in range(4):
        signer.add_paragraph()
    _para(signer, text.signer_name, bold=True)
    annex = doc.add_section()
    annex.orientation = WD_ORIENT.LANDSCAPE
    annex.page_width, annex.page_height = Mm(297), Mm(210)
    _para(doc, text.annex_title, bold=True)
    _para(doc, text.annex_abstract, italic=True, size=11)
    for table in text.tables:
        _docx_table(doc, table)
    _para(doc, text.chart_title, bold=True, size=11, centre=False)
    for chart in text.charts:
        doc.add_picture(io.BytesIO(chart), width=Mm(230))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _para(
    where: DocxDocument | _Cell,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    underline: bool = False,
    size: float = 13,
    first: bool = False,
    centre: bool = True,
) -> None:
    """A paragraph of a document or a table cell (``first``: the cell's own empty paragraph)."""
    p = where.paragraphs[0] if first else where.add_paragraph()
    if centre:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run(text)
    run.bold, run.italic, run.underline = bold, italic, underline
    run.font.size = Pt(size)


def _docx_table(doc: DocxDocument, table: Table) -> None:
    _para(doc, table.title, bold=True, size=11, centre=False)
    out = doc.add_table(rows=1, cols=len(table.headings))
    out.style = "Table Grid"
    for cell, heading in zip(out.rows[0].cells, table.headings, strict=True):
        _para(cell, heading, bold=True, size=9, first=True)
    for i, row in enumerate(table.rows):
        last = table.total_last and i == len(table.rows) - 1
        for cell, value in zip(out.add_row().cells, row, strict=True):
            _para(cell, value, bold=last, size=9, first=True, centre=False)


def render(
    report: Report,
    systems: Sequence[SystemView],
    head: Letterhead,
    catalogue: Catalogue,
    *,
    lang: str,
    fmt: Format,
    zone: ZoneInfo,
) -> bytes:
    """The report in ``fmt``: the document (pdf, docx) or the machine-readable CSV files;
    the document is dated in ``zone`` (the organisation's)."""
    if fmt == "csv":
        return to_csv(report)
    if fmt == "csv-summary":
        return to_summary_csv(report)
    text = compose(report, annex(report, systems), head, catalogue, lang, zone)
    title = f"{text.kind} {text.abstract}"
    if fmt == "docx":
        return to_docx(text, title)
    return to_pdf(text, title, report.data.generated_at)


MEDIA: Final[dict[str, str]] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv; charset=utf-8",
    "csv-summary": "text/csv; charset=utf-8",
}
