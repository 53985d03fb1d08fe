"""What a provider reports to the provincial Department after a survey (Directive 23/CT-TTg).

Per province and district (of the subscriber who held the address; addresses nobody held are
counted apart as unattributed): insecure devices (distinct addresses with an exposure), their
findings by kind, subscribers notified, and notices of the earlier surveys this one found fixed;
the hosts that answered by vendor, the findings by kind; and every exposure with its evidence,
kept for the Department.
The document itself is laid out by ``server.reports.survey``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select

from server.domain.scope import Area
from server.domain.survey import Surveys, SurveyView, holdings
from server.storage.survey_models import SurveyExposure, SurveyNotice
from server.storage.survey_models import SurveyHost as HostRecord

UNATTRIBUTED: Final = ("", "")  # (province, district) of addresses nobody held


@dataclass(frozen=True, slots=True)
class AreaRow:
    province: str  # "" with district "": unattributed
    district: str
    devices: int
    findings: Counter[str]  # by finding code
    notified: int  # subscribers with a notice of this survey past "open"
    fixed: int  # notices of earlier surveys this survey found fixed


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    address: str
    port: int
    code: str
    severity: str
    vendor: str | None
    model: str | None
    subscriber_id: str | None
    province: str
    district: str
    observed_at: datetime
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SurveyReport:
    survey: SurveyView
    generated_at: datetime
    areas: list[AreaRow]
    vendors: Counter[str]  # hosts that answered, by vendor ("" unknown)
    kinds: Counter[str]  # findings by code
    notices: int
    evidence: list[EvidenceRow]

    @property
    def devices(self) -> int:
        return sum(a.devices for a in self.areas)


class SurveyReports(Area):
    __slots__ = ()

    def survey_report(self, survey_id: int) -> SurveyReport:
        survey = Surveys(self.s).survey(survey_id)  # NotVisible outside the scope
        with self.s.engine.connect() as conn:
            mapped = holdings(conn, survey.org_unit_id)
            exposures = conn.execute(
                select(SurveyExposure.__table__)
                .where(SurveyExposure.survey_id == survey_id)
                .order_by(SurveyExposure.address, SurveyExposure.port, SurveyExposure.code)
            ).all()
            notice_rows = conn.execute(
                select(
                    SurveyNotice.survey_id,
                    SurveyNotice.subscriber_id,
                    SurveyNotice.state,
                    SurveyNotice.fixed_by_survey,
                ).where(
                    (SurveyNotice.survey_id == survey_id)
                    | (SurveyNotice.fixed_by_survey == survey_id)
                )
            ).all()
            answered = conn.execute(
                select(HostRecord.vendor).where(HostRecord.survey_id == survey_id)
            ).scalars()
            vendors = Counter(v or "" for v in answered)
            total_notices = conn.execute(
                select(func.count()).where(SurveyNotice.survey_id == survey_id)
            ).scalar_one()
        by_id = dict(mapped)
        evidence = []
        for e in exposures:
            h = by_id.get(e.holding_id) if e.holding_id is not None else None
            evidence.append(
                EvidenceRow(
                    e.address, e.port, e.code, e.severity, e.vendor, e.model,
                    h.subscriber_id if h else None, h.province if h else "",
                    h.district if h else "", e.observed_at, e.evidence,
                )
            )  # fmt: skip
        area_of_subscriber: dict[str, tuple[str, str]] = {
            h.subscriber_id: (h.province, h.district) for _, h in mapped
        }
        devices: dict[tuple[str, str], set[str]] = defaultdict(set)
        findings: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for r in evidence:
            where = (r.province, r.district)
            devices[where].add(r.address)
            findings[where][r.code] += 1
        notified: Counter[tuple[str, str]] = Counter()
        fixed: Counter[tuple[str, str]] = Counter()
        for n in notice_rows:
            where = area_of_subscriber.get(n.subscriber_id, UNATTRIBUTED)
            if n.survey_id == survey_id and n.state != "open":
                notified[where] += 1
            if n.fixed_by_survey == survey_id:
                fixed[where] += 1
                devices.setdefault(where, set())
        areas = [
            AreaRow(p, d, len(devices[(p, d)]), findings[(p, d)], notified[(p, d)], fixed[(p, d)])
            for p, d in sorted(devices, key=lambda k: (k == UNATTRIBUTED, k))
        ]
        return SurveyReport(
            survey,
            self.s.now,
            areas,
            vendors,
            Counter(r.code for r in evidence),
            total_notices,
            evidence,
        )
