"""A provider's survey report to the provincial Department, and the notices to subscribers.

The report is an administrative document as the compliance report (Decree 30/2020/NĐ-CP, laid
out by ``server.reports.document``): the letterhead, what was surveyed and found, then the annex
with the figures per province and district, devices by vendor, findings by kind and the evidence
(the first ``EVIDENCE_ROWS`` rows; the CSV keeps every one). A notice tells one subscriber, in
the chosen language, what the survey found at their address and how to fix it, with the texts
of the finding catalogue.
"""

from __future__ import annotations

import json
from typing import Final, Literal

from server.domain.notices import NoticeView
from server.domain.survey_report import SurveyReport
from server.reports.compliance import csv_bytes
from server.reports.document import (
    Letterhead,
    Table,
    Text,
    day_text,
    letter,
    to_docx,
    to_pdf,
)
from server.web.display import shown_text
from server.web.i18n import Bound, Catalogue

SurveyFormat = Literal["pdf", "docx", "csv"]
EVIDENCE_ROWS: Final = 300
EVIDENCE_COLUMNS: Final = (
    "address", "port", "code", "severity", "vendor", "model", "subscriber_id", "province",
    "district", "observed_at", "evidence",
)  # fmt: skip


def compose(report: SurveyReport, head: Letterhead, catalogue: Catalogue, lang: str) -> Text:
    t = catalogue.bound(lang)
    s = report.survey
    issuer = shown_text(head.issuing_body or s.org_name)
    day = day_text(catalogue, lang, s.started_at)
    fixed = sum(a.fixed for a in report.areas)
    notified = sum(a.notified for a in report.areas)
    unattributed = sum(a.devices for a in report.areas if not a.province and not a.district)
    body: list[tuple[Literal["heading", "para", "item"], str]] = [
        ("para", t("survey.doc.intro", issuer=issuer, date=day)),
        ("heading", t("doc.results")),
        ("item", t("survey.doc.surveyed", addresses=s.addresses, prefixes=len(s.prefixes))),
        (
            "item",
            t("survey.doc.devices", devices=report.devices, findings=sum(report.kinds.values())),
        ),
        ("item", t("survey.doc.notified", notified=notified, notices=report.notices)),
        ("item", t("survey.doc.fixed", fixed=fixed)),
        ("item", t("survey.doc.unattributed", devices=unattributed)),
        ("heading", t("doc.method")),
        ("para", t("survey.doc.method")),
        ("para", t("doc.closing", issuer=issuer)),
    ]
    return letter(
        head,
        catalogue,
        lang,
        issuer=issuer,
        governing=head.governing_body or "",
        issued=report.generated_at.date(),
        abstract=t("survey.doc.abstract", date=day),
        annex_date=day,
        body=body,
        tables=[
            _areas_table(report, t),
            _count_table(
                t("survey.doc.by_vendor"),
                t("survey.col.vendor"),
                {(k or t("value.unknown")): v for k, v in report.vendors.items()},
                t,
            ),
            _count_table(
                t("survey.doc.by_kind"),
                t("survey.col.kind"),
                {
                    catalogue.finding(lang, k, _common(report, k)).title: v
                    for k, v in report.kinds.items()
                },
                t,
            ),
            _evidence_table(report, t),
        ],
    )


def _areas_table(report: SurveyReport, t: Bound) -> Table:
    rows = [
        [
            str(i),
            shown_text(a.province) or t("survey.unattributed"),
            shown_text(a.district),
            str(a.devices),
            str(sum(a.findings.values())),
            str(a.notified),
            str(a.fixed),
        ]
        for i, a in enumerate(report.areas, 1)
    ]
    total = [
        t("report.total"), "", "", str(report.devices), str(sum(report.kinds.values())),
        str(sum(a.notified for a in report.areas)), str(sum(a.fixed for a in report.areas)),
    ]  # fmt: skip
    keys = ("no", "province", "district", "devices", "findings", "notified", "fixed")
    return Table(
        t("survey.doc.by_area"),
        [t(f"survey.col.{k}") for k in keys],
        [*rows, total],
        (8, 40, 40, 18, 18, 18, 18),
        texts=3,
        total_last=True,
    )


def _common(report: SurveyReport, code: str) -> dict[str, object]:
    """The evidence (and port) every exposure of a kind shares: what its title may say."""
    rows = [{**r.evidence, "port": r.port} for r in report.evidence if r.code == code]
    return {k: v for k, v in rows[0].items() if all(r.get(k) == v for r in rows)} if rows else {}


def _count_table(title: str, heading: str, counts: dict[str, int], t: Bound) -> Table:
    rows = [[shown_text(k), str(v)] for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return Table(title, [heading, t("survey.col.count")], rows, (80, 20), texts=1,
                 total_last=False)  # fmt: skip


def _evidence_table(report: SurveyReport, t: Bound) -> Table:
    keys = ("address", "port", "code", "vendor", "subscriber", "observed_at")
    rows = [
        [
            r.address,
            str(r.port),
            r.code,
            shown_text(" ".join(x for x in (r.vendor, r.model) if x)),
            shown_text(r.subscriber_id or t("survey.unattributed")),
            r.observed_at.strftime("%d/%m/%Y %H:%M"),
        ]
        for r in report.evidence[:EVIDENCE_ROWS]
    ]
    more = len(report.evidence) - EVIDENCE_ROWS
    title = t("survey.doc.evidence")
    if more > 0:
        title = f"{title} {t('survey.doc.evidence_more', more=more)}"
    return Table(title, [t(f"survey.col.{k}") for k in keys], rows, (30, 12, 40, 34, 26, 24),
                 texts=5, total_last=False)  # fmt: skip


def evidence_csv(report: SurveyReport) -> bytes:
    """Every exposure with its evidence, as kept for the Department (stable column names)."""
    return csv_bytes(
        [
            list(EVIDENCE_COLUMNS),
            *(
                [
                    r.address, str(r.port), r.code, r.severity, r.vendor or "", r.model or "",
                    r.subscriber_id or "", r.province, r.district, r.observed_at.isoformat(),
                    json.dumps(r.evidence, ensure_ascii=False, sort_keys=True),
                ]
                for r in report.evidence
            ),
        ]
    )  # fmt: skip


def render(
    report: SurveyReport, head: Letterhead, catalogue: Catalogue, *, lang: str, fmt: SurveyFormat
) -> bytes:
    if fmt == "csv":
        return evidence_csv(report)
    text = compose(report, head, catalogue, lang)
    title = f"{text.kind} {text.abstract}"
    if fmt == "docx":
        return to_docx(text, title)
    return to_pdf(text, title, report.generated_at)


def notice_text(notice: NoticeView, catalogue: Catalogue, lang: str) -> str:
    """The notice to one subscriber: what was found at which address, and how to fix it."""
    lines = [
        catalogue.t(
            lang, "survey.notice.greeting", name=shown_text(notice.name or notice.subscriber_id)
        ),
        catalogue.t(lang, "survey.notice.intro", count=len(notice.exposures)),
        "",
    ]
    for e in notice.exposures:
        text = catalogue.finding(lang, e.code, {**e.evidence, "port": e.port}, vendor=e.vendor)
        lines.append(
            catalogue.t(
                lang, "survey.notice.item", address=e.address, port=e.port, title=text.title
            )
        )
        if text.why:
            lines.append(f"  {text.why}")
        if text.advice:
            lines.append(f"  {catalogue.t(lang, 'survey.notice.advice')} {text.advice}")
    lines += ["", catalogue.t(lang, "survey.notice.closing")]
    return "\n".join(lines)
