"""Tenancy: a user of agency A can neither read nor change agency B's data through ANY API route.

The routes are enumerated from the app itself (its OpenAPI document, which publishes all of
/api); a new route without a case here fails the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select

from protocol.keys import generate_private_key
from server.api import create_app
from server.storage import Repository
from server.storage.firmware_models import CommandRecord, FirmwareImage, Rollout, RolloutTarget
from server.storage.models import Agent
from server.storage.org_models import (
    AlertEvent,
    AlertRoute,
    ApiToken,
    InformationSystem,
    ModelEntry,
    OrgUnit,
    RetentionPolicy,
    User,
)
from server.storage.remediation_models import RemediationItem
from server.storage.survey_models import (
    Survey,
    SurveyNotice,
    SurveyPrefix,
    SurveySchedule,
    SurveyShard,
)
from tests.server.conftest import make_config
from tests.web.conftest import (
    PASSWORD,
    SurveyIds,
    World,
    bearer,
    escrow_jwk,
    remediation_plan,
    survey_of,
)

# agent-facing: authenticated by the enrollment token or the agent's enrolled key, not by users
# (the certificate routes' refusals are tested in tests/integration/test_mtls.py)
PUBLIC = {
    ("POST", "/api/v1/enroll"),
    ("POST", "/api/v1/verify-report"),
    ("POST", "/api/v1/agents/{agent_id}/challenge"),
    ("POST", "/api/v1/agents/{agent_id}/certificate"),
}
FOREIGN_MARKERS = ("agent-b", "site-b", "Agency B", "System B", "admin-b")


@dataclass(frozen=True, slots=True)
class Multipart:
    """A form body with one file, for the routes that take uploads."""

    fields: dict[str, str]
    files: dict[str, tuple[str, bytes, str]]


Body = dict[str, Any] | Multipart | None


def send(
    server: httpx.Client, method: str, path: str, headers: dict[str, str], body: Body
) -> httpx.Response:
    if isinstance(body, Multipart):
        return server.request(method, path, headers=headers, data=body.fields, files=body.files)
    return server.request(method, path, headers=headers, json=body)


def foreign_cases(
    w: World, plan_b: int = 1, survey_b: SurveyIds | None = None
) -> dict[tuple[str, str], tuple[str, Body]]:
    """Each route with B's ids in the path (or body): (concrete path, body); ``plan_b``: a
    remediation plan of agency B (``remediation_plan``); ``survey_b``: agency B's survey as a
    provider, with its prefix and notice (``survey_of``)."""
    new_user = {"username": "intruder", "password": PASSWORD, "role": "admin"}
    record = {"framework": "ND331_TCVN14423", "level": 1, "plan_status": "none"}
    return {
        ("GET", "/api/v1/orgs/{org_id}"): (f"/api/v1/orgs/{w.agency_b}", None),
        ("POST", "/api/v1/orgs"): (
            "/api/v1/orgs",
            {"parent_id": w.agency_b, "kind": "system", "name": "planted"},
        ),
        ("PUT", "/api/v1/sites/{site}"): ("/api/v1/sites/site-b", {"system_id": w.system_a}),
        ("GET", "/api/v1/systems/{system_id}"): (f"/api/v1/systems/{w.system_b}", None),
        ("PUT", "/api/v1/systems/{system_id}/security"): (
            f"/api/v1/systems/{w.system_b}/security",
            record,
        ),
        ("GET", "/api/v1/cameras/{agent_id}/{camera_id}"): ("/api/v1/cameras/agent-b1/cam-0", None),
        ("GET", "/api/v1/agents/{agent_id}"): ("/api/v1/agents/agent-b1", None),
        ("POST", "/api/v1/agents/{agent_id}/approve"): ("/api/v1/agents/agent-b2/approve", None),
        ("POST", "/api/v1/agents/{agent_id}/revoke"): ("/api/v1/agents/agent-b1/revoke", None),
        ("POST", "/api/v1/users"): ("/api/v1/users", {**new_user, "org_unit_id": w.agency_b}),
        ("GET", "/api/v1/users/{user_id}"): (f"/api/v1/users/{w.users['admin-b']}", None),
        ("POST", "/api/v1/users/{user_id}/disable"): (
            f"/api/v1/users/{w.users['admin-b']}/disable",
            None,
        ),
        ("POST", "/api/v1/users/{user_id}/enable"): (
            f"/api/v1/users/{w.users['admin-b']}/enable",
            None,
        ),
        ("PUT", "/api/v1/users/{user_id}/password"): (
            f"/api/v1/users/{w.users['admin-b']}/password",
            {"password": "taken over by A"},
        ),
        ("DELETE", "/api/v1/tokens/{token_id}"): (
            f"/api/v1/tokens/{w.token_ids['admin-b']}",
            None,
        ),
        # fleet-wide settings: an agency administrator may not change them for everybody
        ("PUT", "/api/v1/retention/{level}"): ("/api/v1/retention/2", {"raw_reports_days": 1}),
        ("POST", "/api/v1/models"): ("/api/v1/models", {"vendor": "Acme", "model": "X1"}),
        ("PUT", "/api/v1/models/{model_id}"): (
            f"/api/v1/models/{w.model}",
            {"vendor": "Hikvision", "model": "DS-2CD2143G2-I", "flagged": True},
        ),
        ("DELETE", "/api/v1/models/{model_id}"): (f"/api/v1/models/{w.model}", None),
        ("POST", "/api/v1/models/import"): (
            "/api/v1/models/import?apply=true&replace=true",
            Multipart({}, {"file": ("r.csv", b"vendor,model\nAcme,X1\n", "text/csv")}),
        ),
        ("POST", "/api/v1/alert-routes"): (
            "/api/v1/alert-routes",
            {
                "org_unit_id": w.agency_b,
                "name": "planted",
                "channel": "webhook",
                "target": "http://127.0.0.1:9/x",
            },
        ),
        ("DELETE", "/api/v1/alert-routes/{route_id}"): (f"/api/v1/alert-routes/{w.route_b}", None),
        ("POST", "/api/v1/alerts/{event_id}/{action}"): (
            f"/api/v1/alerts/{w.alert_b}/silence",
            {"hours": 4},
        ),
        ("GET", "/api/v1/reports/compliance"): (
            f"/api/v1/reports/compliance?org={w.agency_b}&from=2025-01-01&to=2025-12-31&format=csv",
            None,
        ),
        **firmware_cases(w),
        **remediation_cases(plan_b),
        **survey_cases(w, survey_b or SurveyIds(1, 1, 1)),
    }


def survey_cases(w: World, b: SurveyIds) -> dict[tuple[str, str], tuple[str, Body]]:
    """Surveys: a survey, its notices, prefixes and schedule belong to the provider (agency B
    here); starting a survey, declaring a prefix or scheduling for B is not found."""
    base = "/api/v1/surveys"
    return {
        ("POST", base): (base, {"org_id": w.agency_b}),
        ("GET", f"{base}/{{survey_id}}"): (f"{base}/{b.survey}", None),
        ("GET", f"{base}/{{survey_id}}/notices"): (f"{base}/{b.survey}/notices", None),
        ("GET", f"{base}/notices/{{notice_id}}"): (f"{base}/notices/{b.notice}", None),
        ("POST", f"{base}/notices/{{notice_id}}"): (
            f"{base}/notices/{b.notice}",
            {"state": "sent"},
        ),
        ("POST", f"{base}/prefixes"): (
            f"{base}/prefixes",
            {"org_id": w.agency_b, "prefix": "203.0.113.0/24"},
        ),
        ("DELETE", f"{base}/prefixes/{{prefix_id}}"): (f"{base}/prefixes/{b.prefix}", None),
        ("PUT", f"{base}/schedules/{{org_id}}"): (
            f"{base}/schedules/{w.agency_b}",
            {"every_days": 7, "agents": ["agent-b1"]},
        ),
        ("GET", f"{base}/agents"): (f"{base}/agents?org={w.agency_b}", None),
    }


def remediation_cases(plan_b: int) -> dict[tuple[str, str], tuple[str, Body]]:
    """Remediation: a plan belongs to the agency whose cameras it selected; a selection naming
    another agency's site or agent is not found (not "nothing to fix")."""
    base = f"/api/v1/remediation/{plan_b}"
    planted = {"name": "planted", "site": "site-b", "escrow_jwk": escrow_jwk()}
    return {
        ("POST", "/api/v1/remediation"): ("/api/v1/remediation", planted),
        ("POST", "/api/v1/remediation/preview"): (
            "/api/v1/remediation/preview",
            {"agent_id": "agent-b1"},
        ),
        ("GET", "/api/v1/remediation/{plan_id}"): (base, None),
        ("POST", "/api/v1/remediation/{plan_id}/{action}"): (f"{base}/approve", None),
        ("POST", "/api/v1/remediation/{plan_id}/cameras/{agent_id}/{camera_id}/rollback"): (
            f"{base}/cameras/agent-b1/cam-fix/rollback",
            None,
        ),
    }


def firmware_cases(w: World) -> dict[tuple[str, str], tuple[str, Body]]:
    """Firmware: campaigns and commands belong to the agency of the cameras they target (B's
    real rollout and queued command here); the catalogue is fleet-wide, so changing it takes an
    administrator of the whole fleet (upload, retire: 403 even for an agency's admin)."""
    fw = w.firmware
    rollout = {"name": "planted", "image_id": fw.image_id, "site": "site-b", "canary_count": 1}
    rotation = {
        "agent_id": "agent-b1",
        "camera_id": "cam-0",
        "username": "admin",
        "escrow_jwk": escrow_jwk(),
    }
    return {
        ("POST", "/api/v1/firmware"): ("/api/v1/firmware", UPLOAD),
        ("POST", "/api/v1/firmware/{image_id}/retire"): (
            f"/api/v1/firmware/{fw.image_id}/retire",
            None,
        ),
        ("POST", "/api/v1/rollouts"): ("/api/v1/rollouts", rollout),
        ("POST", "/api/v1/rollouts/password-rotations"): (
            "/api/v1/rollouts/password-rotations",
            rotation,
        ),
        ("GET", "/api/v1/rollouts/commands/{command_id}"): (
            f"/api/v1/rollouts/commands/{fw.command_b}",
            None,
        ),
        ("GET", "/api/v1/rollouts/{rollout_id}"): (f"/api/v1/rollouts/{fw.rollout_b}", None),
        ("POST", "/api/v1/rollouts/{rollout_id}/{action}"): (
            f"/api/v1/rollouts/{fw.rollout_b}/halt",
            None,
        ),
    }


UPLOAD = Multipart(
    {"vendor": "axis", "models": "P3245", "version": "10.12.1"},
    {"file": ("axis.bin", b"\x01" * 300, "application/octet-stream")},
)


def fleet_wide_reads(w: World) -> dict[tuple[str, str], str]:
    """Routes with an object id whose objects belong to the whole fleet by design: every user
    reads them (200), and they carry nothing of any agency."""
    return {("GET", "/api/v1/firmware/{image_id}"): f"/api/v1/firmware/{w.firmware.image_id}"}


# routes without object ids: they answer, but never with B's data
LISTS = {
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/fleet"),
    ("GET", "/api/v1/orgs"),
    ("GET", "/api/v1/compliance"),
    ("GET", "/api/v1/systems"),
    ("GET", "/api/v1/findings"),
    ("GET", "/api/v1/cameras"),
    ("GET", "/api/v1/agents"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/tokens"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/retention"),
    ("POST", "/api/v1/tokens"),  # creates a token for the caller only
    ("GET", "/api/v1/models"),  # the national register: the same for everybody
    ("GET", "/api/v1/models/export"),
    ("GET", "/api/v1/controls"),  # the control catalogue: reference data
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/kev"),
    ("GET", "/api/v1/trend"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alert-routes"),
    # the firmware catalogue and its signed repository are fleet-wide by design (one repository
    # serves every agency): every user may read them; they hold no agency data
    ("GET", "/api/v1/firmware"),
    ("GET", "/api/v1/firmware/tuf"),
    ("GET", "/api/v1/rollouts"),  # the caller's agency's campaigns only
    ("GET", "/api/v1/remediation"),  # the caller's agency's plans only
    ("GET", "/api/v1/surveys"),  # the surveys, prefixes and schedules of the caller's agency
    ("GET", "/api/v1/surveys/prefixes"),
    ("GET", "/api/v1/surveys/schedules"),
}


def snapshot(repo: Repository) -> dict[str, Any]:
    """Everything of agency B (and the fleet-wide settings) that an attack could change."""
    with repo.engine.connect() as conn:
        return {
            "agents": conn.execute(select(Agent.agent_id, Agent.status)).all(),
            "orgs": conn.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.path)).all(),
            "systems": conn.execute(select(InformationSystem.__table__)).all(),
            "users": conn.execute(
                select(User.id, User.username, User.password_hash, User.disabled)
            ).all(),
            "tokens": conn.execute(
                select(ApiToken.id, ApiToken.revoked_at).where(ApiToken.name == "tests")
            ).all(),
            "retention": conn.execute(
                select(RetentionPolicy.level, RetentionPolicy.raw_reports_days)
            ).all(),
            "register": conn.execute(select(ModelEntry.__table__)).all(),
            "routes": conn.execute(select(AlertRoute.__table__)).all(),
            **firmware_snapshot(conn),
        }


def firmware_snapshot(conn: Connection) -> dict[str, Any]:
    """The catalogue, every campaign with its targets, and every queued or sent command."""
    tables = {
        "firmware_images": FirmwareImage,
        "rollouts": Rollout,
        "rollout_targets": RolloutTarget,
        "commands": CommandRecord,
        "remediation_items": RemediationItem,
        "surveys": Survey,
        "survey_shards": SurveyShard,
        "survey_prefixes": SurveyPrefix,
        "survey_schedules": SurveySchedule,
        "survey_notices": SurveyNotice,
    }
    return {name: conn.execute(select(t.__table__)).all() for name, t in tables.items()}


def api_routes(repo: Repository) -> set[tuple[str, str]]:
    """Every operation of the app's API, as the app publishes it (all of /api is published)."""
    app = create_app(make_config("sqlite://"), repo, command_key=generate_private_key())
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }


def test_every_api_route_is_classified(repo: Repository, world: World) -> None:
    cases = foreign_cases(world)
    assert api_routes(repo) == PUBLIC | LISTS | set(fleet_wide_reads(world)) | set(cases)


@pytest.fixture
def plan_b(repo: Repository, db_url: str, world: World) -> int:
    return remediation_plan(repo, db_url, world, "agent-b1", "admin-b")


@pytest.fixture
def survey_b(repo: Repository, world: World) -> SurveyIds:
    return survey_of(repo, world, world.agency_b, "agent-b1", "admin-b")


@pytest.mark.parametrize("username", ["admin-a", "operator-a", "viewer-a"])
def test_no_route_reaches_another_agency(
    server: httpx.Client,
    repo: Repository,
    world: World,
    *,
    username: str,
    plan_b: int,
    survey_b: SurveyIds,
) -> None:
    headers = bearer(world, username)
    for method, path in sorted(LISTS):
        body = {"name": "mine"} if method == "POST" else None
        r = server.request(method, path, headers=headers, json=body)
        assert r.status_code in (200, 201, 403), (method, path, r.status_code, r.text)
        leaked = [m for m in FOREIGN_MARKERS if m in r.text]
        assert leaked == [], (method, path, leaked)
    before = snapshot(repo)
    cases = foreign_cases(world, plan_b, survey_b)
    for (method, template), (path, payload) in sorted(cases.items()):
        r = send(server, method, path, headers, payload)
        assert r.status_code in (403, 404), (method, template, r.status_code, r.text)
        # what the request itself names (B's ids in the path or body) may be echoed back
        leaked = [m for m in FOREIGN_MARKERS if m in r.text and m not in f"{path} {payload!r}"]
        assert leaked == [], (method, template, leaked)
    # a filter naming B's organisation is refused too
    for listing in ("findings", "surveys"):
        r = server.get(f"/api/v1/{listing}?org={world.agency_b}", headers=headers)
        assert r.status_code == 404, listing
    after = snapshot(repo)
    assert after == before


def test_the_same_requests_work_inside_the_agency(server: httpx.Client, world: World) -> None:
    """The cases above fail for tenancy, not because they are malformed: B's admin succeeds."""
    headers = bearer(world, "admin-b")
    assert server.get(f"/api/v1/orgs/{world.agency_b}", headers=headers).status_code == 200
    assert server.get("/api/v1/cameras/agent-b1/cam-0", headers=headers).status_code == 200
    approved = server.post("/api/v1/agents/agent-b2/approve", headers=headers)
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    record = {"framework": "ND331_TCVN14423", "level": 1, "plan_status": "none"}
    put = server.put(f"/api/v1/systems/{world.system_b}/security", headers=headers, json=record)
    assert put.status_code == 200
    agents = server.get("/api/v1/agents", headers=headers).json()
    assert {a["agent_id"] for a in agents} == {"agent-b1", "agent-b2"}


def test_survey_requests_work_inside_the_agency(
    server: httpx.Client, world: World, survey_b: SurveyIds
) -> None:
    """The survey cases fail for tenancy, not because they are malformed: B's admin succeeds
    with the same requests (the prefix removed last: the survey started before needs it)."""
    cases, admin_b = survey_cases(world, survey_b), bearer(world, "admin-b")
    remove = ("DELETE", "/api/v1/surveys/prefixes/{prefix_id}")
    for route in [*sorted(set(cases) - {remove}), remove]:
        path, body = cases[route]
        r = send(server, route[0], path, admin_b, body)
        assert r.status_code in (200, 201, 204), (route, r.status_code, r.text)
    listed = server.get("/api/v1/surveys", headers=admin_b).json()
    assert len(listed) == 2
    assert {s["org_name"] for s in listed} == {"Agency B"}
    assert server.get("/api/v1/surveys", headers=bearer(world, "admin-a")).json() == []


def test_roles(server: httpx.Client, world: World) -> None:
    viewer, operator = bearer(world, "viewer-a"), bearer(world, "operator-a")
    assert server.post("/api/v1/agents/agent-a2/approve", headers=viewer).status_code == 403
    assert server.get("/api/v1/users", headers=operator).status_code == 403
    assert server.post("/api/v1/agents/agent-a2/approve", headers=operator).status_code == 200
    audit = server.get("/api/v1/audit", headers=bearer(world, "admin-a")).json()
    outcomes = [(e["action"], e["target_id"], e["outcome"]) for e in audit[:2]]
    assert outcomes == [
        ("agent.approve", "agent-a2", "ok"),
        ("agent.approve", "agent-a2", "denied"),
    ]


def test_authentication_and_csrf(server: httpx.Client, world: World) -> None:
    assert server.get("/api/v1/fleet").status_code == 401
    assert server.get("/api/v1/fleet", headers={"Authorization": "Bearer nope"}).status_code == 401
    page = server.get("/login")
    form = {"username": "operator-a", "password": PASSWORD, "csrf": page.cookies["cw_login"]}
    assert server.post("/login", data=form).status_code == 303
    assert server.get("/api/v1/fleet").status_code == 200  # the session cookie
    assert server.post("/api/v1/agents/agent-a2/approve").status_code == 403  # no CSRF header
    me = server.get("/api/v1/me").json()
    assert me["username"] == "operator-a"
    wrong = server.post("/api/v1/agents/agent-a2/approve", headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    # the page forms carry the token; the API takes it from the header
    agents_page = server.get("/agents").text
    token = agents_page.split('name="csrf" value="')[1].split('"')[0]
    ok = server.post("/api/v1/agents/agent-a2/approve", headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    assert server.post("/logout", data={"csrf": token}).status_code == 303
    assert server.get("/api/v1/fleet").status_code == 401


def test_pages_hide_other_agencies(server: httpx.Client, world: World) -> None:
    page = server.get("/login")
    form = {"username": "admin-a", "password": PASSWORD, "csrf": page.cookies["cw_login"]}
    server.post("/login", data=form)
    token = server.get("/agents").text.split('name="csrf" value="')[1].split('"')[0]
    assert server.get("/cameras/agent-b1/cam-0").status_code == 404
    assert server.post("/agents/agent-b2/approve", data={"csrf": token}).status_code == 404
    pages = ("/", "/compliance", "/findings", "/agents", "/findings?status=", "/models", "/kev",
             "/alerts", "/orgs", "/users", "/audit", "/tokens", "/reports", "/cameras",
             "/cameras?audit=unreachable")  # fmt: skip
    for path in pages:
        body = server.get(path).text
        assert [m for m in FOREIGN_MARKERS if m in body] == [], path
    # the compliance page's and the register's forms, and the report's documents
    record = {"csrf": token, "framework": "ND331_TCVN14423", "level": "1", "plan_status": "none"}
    assert server.post(f"/systems/{world.system_b}/security", data=record).status_code == 404
    upload = {"file": ("r.csv", b"vendor,model\nAcme,X1\n", "text/csv")}
    assert server.post("/models/import", data={"csrf": token}, files=upload).status_code == 403
    assert "Agency B" not in server.get("/api/v1/models/export").text
    for fmt in ("pdf", "docx", "csv", "csv-summary"):
        query = f"org={world.agency_b}&from=2026-01-01&to=2026-12-31&format={fmt}"
        assert server.get(f"/api/v1/reports/compliance?{query}").status_code == 404, fmt


@pytest.mark.parametrize("username", ["admin-a", "operator-a", "viewer-a"])
def test_firmware_across_agencies(
    server: httpx.Client, repo: Repository, world: World, username: str
) -> None:
    headers, fw = bearer(world, username), world.firmware
    for path in fleet_wide_reads(world).values():
        r = server.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert [m for m in FOREIGN_MARKERS if m in r.text] == [], path
    # the list answers with A's own campaign, and without B's
    assert [r["id"] for r in server.get("/api/v1/rollouts", headers=headers).json()] == [
        fw.rollout_a
    ]
    assert server.get(f"/api/v1/rollouts/{fw.rollout_a}", headers=headers).status_code == 200
    before = snapshot(repo)
    # a campaign selecting B's organisation (rather than B's site) is refused too
    planted = {"name": "planted", "image_id": fw.image_id, "org_id": world.agency_b}
    r = server.post("/api/v1/rollouts", headers=headers, json=planted | {"canary_count": 1})
    assert r.status_code == (403 if username == "viewer-a" else 404), r.text
    # the catalogue is the whole fleet's: forbidden to an agency's administrator, not "not found"
    assert send(server, "POST", "/api/v1/firmware", headers, UPLOAD).status_code == 403
    retire = server.post(f"/api/v1/firmware/{fw.image_id}/retire", headers=headers)
    assert retire.status_code == 403
    assert snapshot(repo) == before


def test_firmware_requests_work_inside_the_agency(server: httpx.Client, world: World) -> None:
    """The firmware cases fail for tenancy, not because they are malformed: B's admin succeeds
    with the same requests, and the catalogue writes succeed for the whole fleet's admin only."""
    cases, fw = firmware_cases(world), world.firmware
    catalogue = {("POST", "/api/v1/firmware"), ("POST", "/api/v1/firmware/{image_id}/retire")}
    admin_b, root = bearer(world, "admin-b"), bearer(world, "root")
    answers: dict[tuple[str, str], Any] = {}
    for route in sorted(set(cases) - catalogue):
        path, body = cases[route]
        r = send(server, route[0], path, admin_b, body)
        assert r.status_code in (200, 201, 202), (route, r.status_code, r.text)
        answers[route] = r.json()
    assert answers[("GET", "/api/v1/rollouts/{rollout_id}")]["rollout"]["created_by"] == "admin-b"
    assert answers[("GET", "/api/v1/rollouts/commands/{command_id}")]["agent_id"] == "agent-b1"
    assert answers[("POST", "/api/v1/rollouts")]["rollout"]["total"] == 3  # agent-b1's cameras
    assert answers[("POST", "/api/v1/rollouts/{rollout_id}/{action}")]["rollout"]["phase"] == (
        "halted"
    )
    listed = server.get("/api/v1/rollouts", headers=admin_b).json()
    assert fw.rollout_b in [r["id"] for r in listed]
    assert fw.rollout_a not in [r["id"] for r in listed]
    for route in sorted(catalogue):
        path, body = cases[route]
        assert send(server, route[0], path, admin_b, body).status_code == 403, route
    uploaded = send(server, "POST", "/api/v1/firmware", root, UPLOAD)
    assert uploaded.status_code == 201, uploaded.text
    retired = server.post(f"/api/v1/firmware/{fw.image_id}/retire", headers=root)
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_by"] == "root"


def login(server: httpx.Client, username: str) -> str:
    """A dashboard session for ``username``; returns the CSRF token of its forms."""
    page = server.get("/login")
    form = {"username": username, "password": PASSWORD, "csrf": page.cookies["cw_login"]}
    assert server.post("/login", data=form).status_code == 303
    return server.get("/agents").text.split('name="csrf" value="')[1].split('"')[0]


def test_rollout_pages_hide_other_agencies(server: httpx.Client, world: World) -> None:
    fw = world.firmware
    token = login(server, "operator-a")
    page = server.get("/rollouts").text
    assert f'href="/rollouts/{fw.rollout_a}"' in page
    assert f'href="/rollouts/{fw.rollout_b}"' not in page
    assert [m for m in FOREIGN_MARKERS if m in page] == []
    assert server.get(f"/rollouts/{fw.rollout_b}").status_code == 404
    halt = server.post(f"/rollouts/{fw.rollout_b}/halt", data={"csrf": token})
    assert halt.status_code == 404
    assert server.get(f"/rollouts/{fw.rollout_a}").status_code == 200


def test_remediation_inside_and_across_agencies(
    server: httpx.Client, repo: Repository, db_url: str, world: World, plan_b: int
) -> None:
    """B's admin reads and acts on B's plan with the requests refused to A above; A's operator
    sees only A's plans, on the pages too."""
    admin_b = bearer(world, "admin-b")
    body = {"agent_id": "agent-b1"}
    preview = server.post("/api/v1/remediation/preview", headers=admin_b, json=body)
    assert preview.status_code == 200, preview.text
    assert [i["camera_id"] for i in preview.json()["items"] if i["reason"] is None] == ["cam-fix"]
    got = server.get(f"/api/v1/remediation/{plan_b}", headers=admin_b)
    assert got.json()["rollout"]["rollout"]["phase"] == "awaiting_approval"
    approved = server.post(f"/api/v1/remediation/{plan_b}/approve", headers=admin_b)
    assert approved.json()["rollout"]["rollout"]["phase"] == "canary", approved.text
    plan_a = remediation_plan(repo, db_url, world, "agent-a1", "operator-a")
    token = login(server, "operator-a")
    page = server.get("/remediation").text
    assert f'href="/remediation/{plan_a}"' in page
    assert f'href="/remediation/{plan_b}"' not in page
    assert [m for m in FOREIGN_MARKERS if m in page] == []
    assert server.get(f"/remediation/{plan_b}").status_code == 404
    assert server.post(f"/remediation/{plan_b}/approve", data={"csrf": token}).status_code == 404
    rollback = f"/remediation/{plan_b}/cameras/agent-b1/cam-fix/rollback"
    assert server.post(rollback, data={"csrf": token}).status_code == 404
    assert server.get("/remediation/new?site=site-b").status_code == 404
    assert server.get(f"/remediation/{plan_a}").status_code == 200


@pytest.mark.parametrize(("username", "shown"), [("operator-a", True), ("viewer-a", False)])
def test_rollouts_in_the_navigation(
    server: httpx.Client, world: World, username: str, shown: bool
) -> None:
    login(server, username)
    assert ('href="/rollouts"' in server.get("/").text) is shown


def test_alert_actions_and_confirmations_stay_inside_the_agency(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    with repo.engine.connect() as conn:
        alert = dict(conn.execute(select(AlertEvent.site, AlertEvent.id)).all())  # one per site
    mine, foreign = alert["site-a"], alert["site-b"]
    token = login(server, "operator-a")
    actions: tuple[tuple[str, dict[str, str]], ...] = (
        ("ack", {}),
        ("silence", {"hours": "4"}),
        ("unsilence", {}),
        ("assign", {"assignee": str(world.users["operator-a"])}),
    )
    for action, extra in actions:
        form = {"csrf": token, **extra}
        assert server.post(f"/alerts/{foreign}/{action}", data=form).status_code == 404, action
        assert server.post(f"/alerts/{mine}/{action}", data=form).status_code == 303, action
    other_agency = {"csrf": token, "assignee": str(world.users["admin-b"])}
    assert server.post(f"/alerts/{mine}/assign", data=other_agency).status_code == 422
    page = server.get("/alerts").text
    assert [m for m in FOREIGN_MARKERS if m in page] == []
    assert "admin-b" not in page  # not offered as an assignee
    # a confirmation page is never one for another agency's objects
    ask = {"csrf": token}
    assert server.post("/agents/agent-b1/revoke", data=ask).status_code == 404
    assert server.post(f"/rollouts/{world.firmware.rollout_b}/halt", data=ask).status_code == 404
    assert server.post(f"/alert-routes/{world.route_b}/delete", data=ask).status_code == 404
    assert server.post(f"/tokens/{world.token_ids['admin-b']}/revoke", data=ask).status_code == 404
    login(server, "viewer-a")
    viewer = server.get("/agents").text.split('name="csrf" value="')[1].split('"')[0]
    assert server.post(f"/alerts/{mine}/ack", data={"csrf": viewer}).status_code == 403
