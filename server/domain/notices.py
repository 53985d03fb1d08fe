"""The subscriber map of a provider and the notices a survey sends to subscribers.

The map is imported from CSV as the model register is (``server.domain.register_import``): a
preview that names every bad line and what applying would change, then ``apply`` that parses
the file again and writes it in one transaction with one audit entry; a file with any error
changes nothing. A line of the same prefix and start replaces the one on record.

When a survey is done (``close_survey``, in the transaction of its last shard), one notice is
opened per subscriber that held the address of an exposure at the time; exposures of addresses
nobody held stay unattributed (counted in the report). Earlier notices still open are re-checked:
a notice is fixed when none of its exposures (address, port, finding) was found again and every
one of its addresses was in a shard this survey finished (a failed shard proves nothing).
People move a notice to sent or acknowledged, or fixed by hand; each move is audit-logged, and
the collector's own "fixed" too.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update

from server.domain.csvtable import LineError
from server.domain.register_import import InvalidFile
from server.domain.scope import Area, Invalid, NotVisible
from server.domain.subscriber_map import Holding, parse
from server.storage import read_then_write
from server.storage.org_models import AuditEntry
from server.storage.survey_models import (
    NOTICE_STATES,
    SubscriberHolding,
    SurveyExposure,
    SurveyNotice,
    SurveyPrefix,
    SurveyShard,
)

COLLECTOR: Final = "collector"  # who the collector's own changes are recorded as
# the moves people make (any state to any later one; "open" is where a notice starts)
MOVES: Final = NOTICE_STATES[1:]
STILL_OPEN: Final = ("open", "sent", "acknowledged")


@dataclass(frozen=True, slots=True)
class MapPreview:
    digest: str
    errors: list[LineError]
    added: int
    replaced: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class ExposureView:
    address: str
    port: int
    code: str
    severity: str
    vendor: str | None
    model: str | None
    evidence: dict[str, Any]
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class NoticeView:
    id: int
    survey_id: int
    org_unit_id: int
    subscriber_id: str
    name: str
    contact: str
    state: str
    updated_at: datetime
    updated_by: str
    fixed_by_survey: int | None
    exposures: list[ExposureView]


def _holding_values(h: Holding) -> dict[str, Any]:
    return {
        "subscriber_id": h.subscriber_id,
        "name": h.name,
        "contact": h.contact,
        "province": h.province,
        "district": h.district,
        "valid_to": h.valid_to,
    }


class Notices(Area):
    __slots__ = ()

    # -- the subscriber map ------------------------------------------------------------------

    def _declared(self, conn: Connection, org_id: int) -> list[Any]:
        self.s.org_row(conn, org_id)
        return [
            ipaddress.ip_network(p)
            for p in conn.execute(
                select(SurveyPrefix.prefix).where(SurveyPrefix.org_unit_id == org_id)
            ).scalars()
        ]

    def _plan(
        self, conn: Connection, org_id: int, data: bytes
    ) -> tuple[list[LineError], list[tuple[Holding, int | None, bool]]]:
        """Errors, or (holding, id of the line it replaces, whether it changes anything)."""
        rows, errors = parse(data, self._declared(conn, org_id))
        if errors:
            return errors, []
        current = {
            (r.prefix, r.valid_from): r
            for r in conn.execute(
                select(SubscriberHolding.__table__).where(SubscriberHolding.org_unit_id == org_id)
            )
        }
        plan = []
        for _, h in rows:
            old = current.get((str(h.network), h.valid_from))
            same = old is not None and all(
                getattr(old, k) == v for k, v in _holding_values(h).items()
            )
            plan.append((h, None if old is None else old.id, not same))
        return [], plan

    def preview_map(self, org_id: int, data: bytes) -> MapPreview:
        self.s.require("admin")
        digest = hashlib.sha256(data).hexdigest()
        with self.s.engine.connect() as conn:
            errors, plan = self._plan(conn, org_id, data)
        return MapPreview(
            digest,
            errors,
            sum(old is None for _, old, _ in plan),
            sum(old is not None and changed for _, old, changed in plan),
            sum(not changed for _, _, changed in plan),
        )

    def apply_map(self, org_id: int, data: bytes) -> MapPreview:
        digest = hashlib.sha256(data).hexdigest()
        with self.s.action("survey.map.import", "org", org_id) as act:
            act.org_unit_id = org_id
            self.s.require("admin")
            with read_then_write(self.s.engine) as conn:
                errors, plan = self._plan(conn, org_id, data)
                if errors:
                    act.detail = {"sha256": digest, "errors": len(errors)}
                    raise InvalidFile(errors)
                for h, old, changed in plan:
                    values = {
                        **_holding_values(h),
                        "imported_at": self.s.now,
                        "imported_by": self.s.p.username,
                    }
                    if old is None:
                        conn.execute(
                            insert(SubscriberHolding).values(
                                org_unit_id=org_id,
                                prefix=str(h.network),
                                valid_from=h.valid_from,
                                **values,
                            )
                        )
                    elif changed:
                        conn.execute(
                            update(SubscriberHolding)
                            .where(SubscriberHolding.id == old)
                            .values(values)
                        )
            result = MapPreview(
                digest,
                [],
                sum(old is None for _, old, _ in plan),
                sum(old is not None and changed for _, old, changed in plan),
                sum(not changed for _, _, changed in plan),
            )
            act.detail = {
                "sha256": digest,
                "added": result.added,
                "replaced": result.replaced,
                "unchanged": result.unchanged,
            }
        return result

    # -- notices -----------------------------------------------------------------------------

    def notices(
        self, survey_id: int | None = None, notice_id: int | None = None
    ) -> list[NoticeView]:
        q = (
            select(SurveyNotice.__table__)
            .where(self.s.unit_visible(SurveyNotice.org_unit_id))
            .order_by(SurveyNotice.survey_id.desc(), SurveyNotice.subscriber_id)
            .limit(5000)
        )
        if survey_id is not None:
            q = q.where(SurveyNotice.survey_id == survey_id)
        if notice_id is not None:
            q = q.where(SurveyNotice.id == notice_id)
        with self.s.engine.connect() as conn:
            rows = conn.execute(q).all()
            found = _exposures(conn, {r.survey_id for r in rows})
        result = []
        for r in rows:
            mine = [
                (h, e) for h, e in found.get(r.survey_id, []) if h.subscriber_id == r.subscriber_id
            ]
            holding = mine[0][0] if mine else None
            result.append(
                NoticeView(
                    r.id,
                    r.survey_id,
                    r.org_unit_id,
                    r.subscriber_id,
                    holding.name if holding else "",
                    holding.contact if holding else "",
                    r.state,
                    r.updated_at,
                    r.updated_by,
                    r.fixed_by_survey,
                    [e for _, e in mine],
                )
            )
        return result

    def notice(self, notice_id: int) -> NoticeView:
        found = self.notices(notice_id=notice_id)
        if not found:
            raise NotVisible(f"notice {notice_id}")
        return found[0]

    def move_notice(self, notice_id: int, state: str) -> NoticeView:
        with self.s.action("survey.notice", "notice", notice_id) as act:
            current = self.notice(notice_id)
            act.org_unit_id = current.org_unit_id
            act.detail = {"from": current.state, "to": state}
            self.s.require("operator")
            if state not in MOVES:
                raise Invalid(f"a notice moves to one of {', '.join(MOVES)}")
            if NOTICE_STATES.index(state) <= NOTICE_STATES.index(current.state):
                raise Invalid(f"the notice is {current.state} already")
            with read_then_write(self.s.engine) as conn:
                conn.execute(
                    update(SurveyNotice)
                    .where(SurveyNotice.id == notice_id)
                    .values(state=state, updated_at=self.s.now, updated_by=self.s.p.username)
                )
        return self.notice(notice_id)


def _exposures(
    conn: Connection, survey_ids: Iterable[int]
) -> dict[int, list[tuple[Holding, ExposureView]]]:
    """The attributed exposures of the surveys, with the line of the map that held each."""
    rows = conn.execute(
        select(
            SurveyExposure.__table__,
            *(
                c.label(f"h_{c.name}")
                for c in SubscriberHolding.__table__.c
                if c.name not in ("id", "org_unit_id", "imported_at", "imported_by")
            ),
        )
        .join(SubscriberHolding, SubscriberHolding.id == SurveyExposure.holding_id)
        .where(SurveyExposure.survey_id.in_(list(survey_ids)))
        .order_by(SurveyExposure.address, SurveyExposure.port, SurveyExposure.code)
    ).mappings()
    result: dict[int, list[tuple[Holding, ExposureView]]] = {}
    for r in rows:
        holding = Holding(
            ipaddress.ip_network(r["h_prefix"]), r["h_subscriber_id"], r["h_name"], r["h_contact"],
            r["h_province"], r["h_district"], r["h_valid_from"], r["h_valid_to"],
        )  # fmt: skip
        exposure = ExposureView(
            r["address"], r["port"], r["code"], r["severity"], r["vendor"], r["model"],
            r["evidence"], r["observed_at"],
        )  # fmt: skip
        result.setdefault(r["survey_id"], []).append((holding, exposure))
    return result


def close_survey(conn: Connection, survey_id: int, org_id: int, now: datetime) -> None:
    """Open the survey's notices and re-check the earlier ones (see the module's docstring)."""
    found = _exposures(conn, [survey_id]).get(survey_id, [])
    for subscriber in sorted({h.subscriber_id for h, _ in found}):
        conn.execute(
            insert(SurveyNotice).values(
                survey_id=survey_id,
                org_unit_id=org_id,
                subscriber_id=subscriber,
                state="open",
                created_at=now,
                updated_at=now,
                updated_by=COLLECTOR,
                fixed_by_survey=None,
            )
        )
    again = {
        (r.address, r.port, r.code)
        for r in conn.execute(
            select(SurveyExposure.address, SurveyExposure.port, SurveyExposure.code).where(
                SurveyExposure.survey_id == survey_id
            )
        )
    }
    finished = [
        ipaddress.ip_network(b)
        for blocks in conn.execute(
            select(SurveyShard.blocks).where(
                SurveyShard.survey_id == survey_id, SurveyShard.state == "done"
            )
        ).scalars()
        for b in blocks
    ]
    earlier = conn.execute(
        select(SurveyNotice.id, SurveyNotice.survey_id, SurveyNotice.subscriber_id).where(
            SurveyNotice.org_unit_id == org_id,
            SurveyNotice.survey_id < survey_id,
            SurveyNotice.state.in_(STILL_OPEN),
        )
    ).all()
    before = _exposures(conn, {n.survey_id for n in earlier})
    for n in earlier:
        items = [e for h, e in before.get(n.survey_id, []) if h.subscriber_id == n.subscriber_id]
        if items and all(_gone(e, again, finished) for e in items):
            conn.execute(
                update(SurveyNotice)
                .where(SurveyNotice.id == n.id)
                .values(state="fixed", fixed_by_survey=survey_id, updated_at=now,
                        updated_by=COLLECTOR)
            )  # fmt: skip
            conn.execute(
                insert(AuditEntry).values(
                    at=now,
                    user_id=None,
                    username=COLLECTOR,
                    action="survey.notice",
                    target_type="notice",
                    target_id=str(n.id),
                    org_unit_id=org_id,
                    outcome="ok",
                    detail={"to": "fixed", "survey": survey_id},
                )
            )


def _gone(e: ExposureView, again: set[tuple[str, int, str]], finished: list[Any]) -> bool:
    address = ipaddress.ip_address(e.address)
    covered = any(address.version == b.version and address in b for b in finished)
    return covered and (e.address, e.port, e.code) not in again
