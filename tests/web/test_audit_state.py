"""Cameras that were not fully audited are shown and counted as such, never as compliant: on the
dashboard, in the API, in the compliance export and as alerts. Reports go through the real
ingest into SQLite and PostgreSQL; pages and the API are read over HTTP."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol import Finding
from server.cli import main
from server.config import WebConfig
from server.domain.alerts import Alerts
from server.domain.orgs import Orgs
from server.domain.reports import Reports
from server.domain.scope import CLI
from server.reports import compliance as reports
from server.reports import document
from server.storage import Repository
from server.storage.alert_events import sync
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import (
    World,
    bearer,
    camera,
    principal_of,
    process,
    report_with,
    scoped_as,
)
from tests.web.test_rbac import FOREIGN_MARKERS, login

REFUSED = "identification failed: the camera refused the stored password"
PASSED = Finding(
    code="tls.disabled",
    check="transport",
    status="pass",
    severity="high",
    controls=["NET-03"],
)


def clean_site(repo: Repository, world: World) -> SimAgent:
    """System C of agency A with one site whose only camera is audited and passes."""
    root = scoped_as(repo, CLI)
    system_c = Orgs(root).create_org(parent_id=world.agency_a, kind="system", name="System C").id
    Orgs(root).map_site("site-c", system_c)
    sim = SimAgent("agent-c1", "site-c")
    enroll(repo, sim)
    return sim


def system_c(server: httpx.Client, world: World, username: str) -> dict[str, Any]:
    systems = server.get("/api/v1/compliance", headers=bearer(world, username)).json()["systems"]
    (found,) = [s for s in systems if s["name"] == "System C"]
    return found  # type: ignore[no-any-return]


def test_a_camera_whose_login_failed_makes_its_system_not_compliant(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    sim = clean_site(repo, world)
    process(repo, db_url, [report_with(sim, [camera("door", [PASSED])])])
    counts = system_c(server, world, "viewer-a")["counts"]
    assert counts == {
        "cameras": 1,
        "cameras_failing": 0,
        "failing": dict.fromkeys(("critical", "high", "medium", "low", "info"), 0),
        "cameras_not_audited": 0,
        "cameras_compliant": 1,
        "compliant": True,
    }
    # the stored password is changed on the camera, not in the vault: no check fails (none
    # ran), and the camera is not audited, so neither it nor its system is compliant
    process(repo, db_url, [report_with(sim, [camera("door", [], audit="login_failed",
                                                    reason=REFUSED)])])  # fmt: skip
    counts = system_c(server, world, "viewer-a")["counts"]
    assert (counts["cameras_failing"], counts["cameras_not_audited"]) == (0, 1)
    assert (counts["cameras_compliant"], counts["compliant"]) == (0, False)
    orgs = server.get("/api/v1/compliance", headers=bearer(world, "viewer-a")).json()["orgs"]
    agency_a = next(o for o in orgs if o["node"]["id"] == world.agency_a)["counts"]
    # agency A: site-a's two cameras of agent-a1 that answered (they fail a critical check),
    # its unreachable one, and System C's camera
    assert (agency_a["cameras"], agency_a["cameras_not_audited"]) == (4, 2)
    assert agency_a["compliant"] is False

    fleet = server.get("/api/v1/fleet", headers=bearer(world, "root")).json()
    assert fleet["cameras_not_audited"] == 3  # cam-2 of agent-a1 and agent-b1, and door
    assert fleet["audit"] == {
        "audited": 4,
        "partial": 0,
        "login_failed": 1,
        "unreachable": 2,
        "unsupported": 0,
        "not_audited": 0,
    }
    assert fleet["cameras_compliant"] == 0  # the world's audited cameras fail a critical check

    # the dashboard, in both languages
    login(server, "viewer-a")
    overview = server.get("/").text
    assert 'id="not-audited">2<' in overview  # agency A's scope
    assert "1 đăng nhập thất bại" in overview
    compliance = server.get("/compliance").text
    assert "chưa đạt" in compliance
    listed = server.get("/cameras?audit=not_audited_any").text
    assert "agent-c1/door" in listed
    assert "đăng nhập thất bại" in listed
    assert REFUSED in listed
    assert "agent-a1/cam-2" in listed
    assert "agent-a1/cam-0" not in listed  # audited
    assert [m for m in FOREIGN_MARKERS if m in listed] == []
    server.cookies.set("cw_lang", "en")
    page = server.get("/cameras/agent-c1/door").text
    assert 'id="audit-state">login failed<' in page
    assert "correct it in the agent&#39;s vault" in page
    assert "never as compliant" in page
    # the history says how far each report's audit got
    history = page.split('id="history"')[1]
    assert history.index("<td>login failed</td>") < history.index("<td>audited</td>")
    # a findings list with the not-audited cameras' findings missing says so
    findings = server.get("/findings").text
    assert "2 cameras were not fully audited: their findings may be missing" in findings


def test_the_camera_list_api_filters_by_state_within_scope(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    sim = clean_site(repo, world)
    process(repo, db_url, [report_with(sim, [
        camera("door", [], audit="partial", reason="the audit stopped at the time limit"),
        camera("yard", [PASSED]),
    ])])  # fmt: skip
    viewer = bearer(world, "viewer-a")
    page = server.get("/api/v1/cameras?audit=not_audited_any", headers=viewer).json()
    assert [(c["agent_id"], c["camera_id"], c["audit"]) for c in page["items"]] == [
        ("agent-a1", "cam-2", "unreachable"),
        ("agent-c1", "door", "partial"),
    ]
    assert page["items"][1]["audit_reason"] == "the audit stopped at the time limit"
    every = server.get("/api/v1/cameras", headers=viewer).json()
    assert every["total"] == 5  # agent-a1's three and agent-c1's two: none of agency B
    # those not fully audited first
    assert [c["audit"] for c in every["items"]] == ["unreachable", "partial", *["audited"] * 3]
    assert server.get("/api/v1/cameras?audit=bogus", headers=viewer).status_code == 422
    camera_b = server.get("/api/v1/cameras/agent-b1/cam-2", headers=viewer)
    assert camera_b.status_code == 404
    mine = server.get("/api/v1/cameras/agent-c1/door", headers=viewer).json()
    assert (mine["audit"], mine["audit_reason"]) == ("partial", page["items"][1]["audit_reason"])


def test_cameras_that_could_not_be_audited_raise_alerts_per_state(
    repo: Repository, db_url: str, world: World
) -> None:
    sim = clean_site(repo, world)
    now = datetime.now(UTC)
    process(repo, db_url, [report_with(sim, [camera("door", [], audit="login_failed",
                                                    reason=REFUSED)])])  # fmt: skip
    sync(repo.engine, now, timedelta(minutes=15))
    admin_a = scoped_as(repo, principal_of(repo, "admin-a"))

    def audit_alerts() -> list[tuple[str | None, str | None, bool]]:
        return sorted(
            (a.camera_id, a.code, a.closed_at is None)
            for a in Alerts(admin_a).alerts()
            if a.kind == "audit"
        )

    # the world's unreachable camera of site-a was alerted at the world's first sync
    assert audit_alerts() == [("cam-2", "unreachable", True), ("door", "login_failed", True)]
    # the same state again: no second alert; then unreachable: a new episode
    process(repo, db_url, [report_with(sim, [camera("door", [], audit="login_failed")])])
    assert sync(repo.engine, now + timedelta(seconds=30), timedelta(minutes=15)).opened == 0
    process(repo, db_url, [report_with(sim, [camera("door", [], audit="unreachable")])])
    sync(repo.engine, now + timedelta(seconds=60), timedelta(minutes=15))
    assert audit_alerts() == [
        ("cam-2", "unreachable", True),
        ("door", "login_failed", False),
        ("door", "unreachable", True),
    ]
    # audited again: the episode closes
    process(repo, db_url, [report_with(sim, [camera("door", [PASSED])])])
    sync(repo.engine, now + timedelta(seconds=90), timedelta(minutes=15))
    assert [open_ for cam, _, open_ in audit_alerts() if cam == "door"] == [False, False]


def test_alert_routes_take_audit_alerts(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    admin_a = bearer(world, "admin-a")
    route = {"org_unit_id": world.agency_a, "name": "soc", "channel": "webhook",
             "target": "http://127.0.0.1:9/soc", "kinds": ["audit"]}  # fmt: skip
    created = server.post("/api/v1/alert-routes", headers=admin_a, json=route)
    assert created.status_code == 201, created.text
    assert created.json()["info"]["kinds"] == ["audit"]
    login(server, "admin-a")
    page = server.get("/alerts").text
    assert 'value="audit"' in page
    assert "không kết nối được" in page  # the world's unreachable camera, in words


def test_the_compliance_export_counts_not_audited_cameras_apart(
    repo: Repository, db_url: str, world: World
) -> None:
    sim = clean_site(repo, world)
    process(repo, db_url, [report_with(sim, [
        camera("door", [], audit="login_failed", reason=REFUSED),
        camera("yard", [PASSED]),
    ])])  # fmt: skip
    today = datetime.now(UTC).date()
    data = Reports(scoped_as(repo, CLI)).report_data(
        world.agency_a, today - timedelta(days=7), today
    )
    report = reports.build(data)
    row_c = next(r for r in report.rows if r.name == "System C")
    assert (row_c.devices, row_c.checked, row_c.not_audited) == (2, 1, 1)
    t = report.total
    assert (t.devices, t.checked, t.not_audited) == (5, 3, 2)
    catalogue = Catalogue.load()
    lines = reports.summary(report, catalogue, "en")
    assert "2 cameras could not be fully audited; they are not counted as checked: " \
           "1 login failed, 1 unreachable" in lines  # fmt: skip
    rows = csv.DictReader(io.StringIO(reports.to_csv(report).decode("utf-8-sig")))
    total = next(r for r in rows if r["row"] == "total")
    assert (total["checked"], total["not_audited"]) == ("3", "2")
    pdf = document.render(
        report, [], document.Letterhead(), catalogue, lang="vi", fmt="pdf", zone=WebConfig().zone()
    )
    assert pdf.startswith(b"%PDF-")


@pytest.mark.parametrize("state", ["partial", "unsupported", "not_audited"])
def test_every_state_short_of_audited_is_not_compliant(
    server: httpx.Client, repo: Repository, db_url: str, world: World, state: str
) -> None:
    sim = clean_site(repo, world)
    process(repo, db_url, [report_with(sim, [camera("door", [PASSED], audit=state)])])  # type: ignore[arg-type]
    counts = system_c(server, world, "admin-a")["counts"]
    assert (counts["cameras_not_audited"], counts["compliant"]) == (1, False)


def test_the_fleet_command_counts_not_audited_cameras_apart(
    repo: Repository, db_url: str, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = clean_site(repo, world)
    process(repo, db_url, [report_with(sim, [camera("door", [], audit="login_failed")])])
    assert main(["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}",
                 "fleet"]) == 0  # fmt: skip
    last = capsys.readouterr().out.splitlines()[-1]
    # the world's six cameras carry a failed critical check; each agent's cam-2 did not answer
    assert last.startswith("7 cameras, 6 with failed checks")
    assert last.endswith(", 3 not fully audited")
