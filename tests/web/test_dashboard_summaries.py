"""The per-camera summaries of failed findings (docs/adr/0035): kept by ingest with the findings,
computed by migration 0011 for the rows stored before it, and read by the fleet-wide counts; the
findings count the summaries cannot answer stops at a cap, and the page says so."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import JSON, column, create_engine, func, insert, select, table

from protocol import Finding as ReportedFinding
from protocol.messages import Severity, Status
from server.domain import findings as findings_area
from server.domain.agents import Agents
from server.domain.orgs import Orgs
from server.domain.overview import Overview
from server.domain.scope import CLI
from server.storage import Repository
from server.storage.migrate import upgrade
from server.storage.models import FAIL_COLUMNS, Agent, Camera, Finding
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, camera, principal_of, process, report_with, scoped_as
from tests.web.test_rbac import login


def _failed_per_camera(repo: Repository) -> dict[tuple[str, str, str], int]:
    """The failed findings per camera and severity, counted from the findings themselves."""
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(Finding.agent_id, Finding.camera_id, Finding.severity, func.count())
            .where(Finding.status == "fail")
            .group_by(Finding.agent_id, Finding.camera_id, Finding.severity)
        )
        return {(a, c, sev): n for a, c, sev, n in rows}


def _summaries(repo: Repository) -> dict[tuple[str, str, str], int]:
    with repo.engine.connect() as conn:
        rows = conn.execute(select(Camera.agent_id, Camera.camera_id, *FAIL_COLUMNS.values()))
        return {
            (a, c, sev): n
            for a, c, *counts in rows
            for sev, n in zip(FAIL_COLUMNS, counts, strict=True)
            if n
        }


def _finding(severity: Severity, status: Status = "fail") -> ReportedFinding:
    return ReportedFinding(
        code="auth.weak_password", check="passwords", status=status, severity=severity,
        controls=["AUTH-02"],
    )  # fmt: skip


def test_ingest_keeps_the_summaries_with_the_findings(
    repo: Repository, db_url: str, world: World
) -> None:
    assert _summaries(repo) == _failed_per_camera(repo) != {}
    sim = SimAgent("agent-a9", "site-a")
    enroll(repo, sim)
    first = [_finding("high"), _finding("high"), _finding("low"), _finding("critical", "pass")]
    process(repo, db_url, [report_with(sim, [camera("cam-1", first), camera("cam-2", [])])])
    summaries = _summaries(repo)
    assert (summaries[("agent-a9", "cam-1", "high")], summaries[("agent-a9", "cam-1", "low")]) == (
        2,
        1,
    )
    assert ("agent-a9", "cam-1", "critical") not in summaries
    # the next report replaces them with the findings: fixed high ones, a new critical one
    process(repo, db_url, [report_with(sim, [camera("cam-1", [_finding("critical")])])])
    assert _summaries(repo) == _failed_per_camera(repo)
    assert {k: n for k, n in _summaries(repo).items() if k[0] == "agent-a9"} == {
        ("agent-a9", "cam-1", "critical"): 1
    }
    # the fleet's counts, as the overview and the compliance page read them
    fleet = Overview(scoped_as(repo, CLI)).fleet()
    by_severity = dict.fromkeys(FAIL_COLUMNS, 0)
    for (_, _, sev), n in _failed_per_camera(repo).items():
        by_severity[sev] += n
    assert fleet.failing == by_severity
    failing_cameras = {(a, c) for a, c, _ in _failed_per_camera(repo)}
    assert fleet.cameras_failing == len(failing_cameras)
    compliance = Orgs(scoped_as(repo, CLI)).compliance()
    agency_a = next(o for o in compliance.orgs if o.node.id == world.agency_a)
    in_a = {(a, c) for a, c in failing_cameras if a.startswith("agent-a")}
    assert agency_a.counts.cameras_failing == len(in_a)


def test_the_migration_computes_the_summaries_of_stored_findings(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0010_register_firmware")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(Agent).values(
                    agent_id="a", site="s", kid="k", public_jwk={}, status="approved",
                    enrolled_at=now, updated_at=now,
                )
            )  # fmt: skip
            for cam in ("c1", "c2"):
                conn.execute(
                    insert(Camera).values(
                        agent_id="a", camera_id=cam, site="s", report_seq=1, address="x",
                        reachable=True, identity={}, audited_at=now, updated_at=now,
                    )
                )  # fmt: skip
            rows = [("c1", "fail", "high"), ("c1", "fail", "high"), ("c1", "pass", "critical")]
            rows += [("c1", "fail", "info"), ("c2", "inconclusive", "high")]
            for n, (cam, status, severity) in enumerate(rows):
                conn.execute(
                    insert(Finding).values(
                        agent_id="a", camera_id=cam, report_seq=1, code=f"x.{n}", check="x",
                        status=status, severity=severity, controls=[], evidence={},
                    )
                )  # fmt: skip
        upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(
                select(Camera.camera_id, *FAIL_COLUMNS.values()).order_by(Camera.camera_id)
            ).all()
        assert [tuple(r) for r in got] == [("c1", 0, 2, 0, 0, 1), ("c2", 0, 0, 0, 0, 0)]
    finally:
        engine.dispose()


def test_the_migration_fills_the_cve_of_stored_findings(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine, "0014_survey_lists")  # the revision before 0015_finding_columns
        findings = table(
            "findings", *(column(c) for c in ("agent_id", "camera_id", "report_seq", "code")),
            *(column(c) for c in ("check", "status", "severity")),
            column("controls", JSON), column("evidence", JSON),
        )  # fmt: skip
        evidences = [{"cve": "CVE-2021-36260"}, {}, {"cve": "not one"}, {"cve": 7}]
        with engine.begin() as conn:
            conn.execute(
                findings.insert(),
                [
                    {"agent_id": "a", "camera_id": "c", "report_seq": 1, "code": f"x.{n}",
                     "check": "x", "status": "fail", "severity": "high", "controls": [],
                     "evidence": evidence}
                    for n, evidence in enumerate(evidences)
                ],
            )  # fmt: skip
        upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(select(Finding.code, Finding.cve).order_by(Finding.code)).all()
        assert [tuple(r) for r in got] == [
            ("x.0", "CVE-2021-36260"), ("x.1", None), ("x.2", None), ("x.3", None),
        ]  # fmt: skip
    finally:
        engine.dispose()


def test_a_count_the_summaries_cannot_answer_stops_at_the_cap(
    server: httpx.Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(server, "root")
    exact = server.get("/findings?control=AUTH-01").text
    total = int(exact.split('id="total">')[1].split(" ")[0])
    assert total > 2
    monkeypatch.setattr(findings_area, "COUNT_CAP", 2)
    capped = server.get("/findings?control=AUTH-01").text
    assert capped.split('id="total">')[1].startswith("2+ ")
    # the default list (failing findings) is counted exactly from the summaries
    assert "+" not in server.get("/findings").text.split('id="total">')[1].split("<")[0]


def _kev(cve: str, added: str) -> ReportedFinding:
    return ReportedFinding(
        code="fw.known_exploited", check=f"kev-{cve.lower()}", status="fail", severity="critical",
        controls=["FW-02"], evidence={"cve": cve, "kev_date_added": added, "firmware": "V5.5.0"},
    )  # fmt: skip


def test_the_known_exploited_groups_read_only_the_cameras_shown(
    repo: Repository, db_url: str, world: World
) -> None:
    sim = SimAgent("agent-a9", "site-a")
    enroll(repo, sim)
    old, new = _kev("CVE-2017-7921", "2021-11-03"), _kev("CVE-2021-36260", "2022-01-10")
    cams = [camera(f"cam-{n}", [new] + ([old] if n < 2 else [])) for n in range(3)]
    process(repo, db_url, [report_with(sim, cams)])
    area = findings_area.Findings(scoped_as(repo, CLI))
    shown = area.kev(shown=1)
    assert [(g.cve, g.kev_date_added, g.cameras, len(g.devices)) for g in shown] == [
        ("CVE-2021-36260", "2022-01-10", 3, 1),
        ("CVE-2017-7921", "2021-11-03", 2, 1),
    ]
    assert [d.camera_id for d in shown[0].devices] == ["cam-0"]  # camera order
    whole = area.kev()
    assert [[d.camera_id for d in g.devices] for g in whole] == [
        ["cam-0", "cam-1", "cam-2"],
        ["cam-0", "cam-1"],
    ]
    assert area.kev_cameras() == 3
    # ingest wrote each finding's CVE with it (the page reads no evidence to group them)
    with repo.engine.connect() as conn:
        cves = conn.execute(
            select(Finding.camera_id, Finding.cve).where(Finding.agent_id == "agent-a9")
        ).all()
    assert sorted(cves) == sorted(
        [(f"cam-{n}", "CVE-2021-36260") for n in range(3)]
        + [(f"cam-{n}", "CVE-2017-7921") for n in range(2)]
    )
    # agency B's reader sees none of them
    b = findings_area.Findings(scoped_as(repo, principal_of(repo, "admin-b")))
    assert b.kev() == []
    assert b.kev_cameras() == 0


def test_the_agents_list_is_paged(repo: Repository, world: World) -> None:
    area = Agents(scoped_as(repo, CLI))
    every = area.agents()
    assert len(every) > 3
    first = area.agent_page(1, 3)
    assert (first.total, first.pages) == (len(every), -(-len(every) // 3))
    paged = [a for n in range(1, first.pages + 1) for a in area.agent_page(n, 3).items]
    assert paged == every
    assert all(len(area.agent_page(n, 3).items) == 3 for n in range(1, first.pages))
