"""The surveys in the operator API and the dashboard's choice of survey agents: each route
answered for the role the pages allow and refused to the role below it, nothing of one provider
reachable by the other, and the agents picked on the start form (or the API) running the shards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from protocol import CommandResult
from protocol.keys import generate_private_key
from protocol.survey import SURVEY
from server.api import create_app
from server.domain.notices import Notices
from server.domain.scope import CLI
from server.domain.survey import Surveys
from server.domain.users import Users
from server.storage import Repository, read_then_write
from server.storage.commands import apply_result
from server.storage.firmware_models import CommandRecord
from tests.server.conftest import make_config, serve
from tests.survey.conftest import Providers, as_user, host, part, scoped
from tests.web.test_rbac import login

MAP = (
    "prefix,subscriber_id,name,contact,province,district,valid_from\r\n"
    "198.51.100.0/25,SUB-A,Nguyễn Văn A,a@example.vn,Bắc Ninh,Từ Sơn,2026-01-01\r\n"
).encode()
FOUND = [
    host("198.51.100.5", ("survey.telnet_open", 23), ("survey.stream_no_auth", 554),
         vendor="Dahua"),
    host("198.51.100.9", ("survey.onvif_no_auth", 80), vendor="Hikvision"),
    host("198.51.100.10", ("survey.dvrip_port_open", 37777)),
]  # fmt: skip


@pytest.fixture
def server(repo: Repository, db_url: str, providers: Providers) -> Iterator[httpx.Client]:
    app = create_app(make_config(db_url), repo, command_key=generate_private_key())
    with serve(app) as client:
        yield client


def bearer(repo: Repository, username: str) -> dict[str, str]:
    _, secret = Users(as_user(repo, username)).create_token("tests")
    return {"Authorization": f"Bearer {secret}"}


def survey_commands(repo: Repository, survey_id: int) -> list[Any]:
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(CommandRecord.__table__)
            .where(CommandRecord.action == SURVEY)
            .order_by(CommandRecord.command_id)
        ).all()
    return [r for r in rows if r.params["survey_id"] == str(survey_id)]


def test_each_route_for_its_role_and_inside_the_provider(
    server: httpx.Client, repo: Repository, providers: Providers
) -> None:
    x = providers.isp_x
    admin, operator, viewer = (bearer(repo, u) for u in ("admin-x", "operator-x", "viewer-x"))
    other = bearer(repo, "admin-y")

    # prefixes: administrators declare and remove them
    body = {"org_id": x, "prefix": "198.51.100.0/25"}
    assert server.post("/api/v1/surveys/prefixes", headers=operator, json=body).status_code == 403
    assert server.post("/api/v1/surveys/prefixes", headers=other, json=body).status_code == 404
    declared = server.post("/api/v1/surveys/prefixes", headers=admin, json=body)
    assert declared.status_code == 201, declared.text
    spare = server.post(
        "/api/v1/surveys/prefixes", headers=admin, json={"org_id": x, "prefix": "203.0.113.0/28"}
    ).json()
    bad = server.post(
        "/api/v1/surveys/prefixes", headers=admin, json={"org_id": x, "prefix": "127.0.0.0/8"}
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "survey.e.prefix_loopback"
    assert "loopback" in bad.json()["detail"]
    assert "survey.e." not in bad.json()["detail"]  # the catalogue's text, not the code
    listed = server.get("/api/v1/surveys/prefixes", headers=viewer).json()
    assert [p["prefix"] for p in listed] == ["198.51.100.0/25", "203.0.113.0/28"]
    assert server.get("/api/v1/surveys/prefixes", headers=other).json() == []
    gone = f"/api/v1/surveys/prefixes/{spare['id']}"
    assert server.delete(gone, headers=operator).status_code == 403
    assert server.delete(gone, headers=other).status_code == 404
    assert server.delete(gone, headers=admin).status_code == 204

    # the survey agents a survey of the provider may run on
    agents = server.get("/api/v1/surveys/agents", headers=viewer, params={"org": x})
    assert agents.json() == ["survey-x1", "survey-x2"]
    assert server.get("/api/v1/surveys/agents", headers=other, params={"org": x}).status_code == 404

    # schedules: administrators set them, on the agents chosen
    schedule = {"every_days": 7, "agents": ["survey-x2"]}
    put = f"/api/v1/surveys/schedules/{x}"
    assert server.put(put, headers=operator, json=schedule).status_code == 403
    assert server.put(put, headers=other, json=schedule).status_code == 404
    set_ = server.put(put, headers=admin, json=schedule)
    assert set_.status_code == 200, set_.text
    assert set_.json()["agents"] == ["survey-x2"]
    schedules = server.get("/api/v1/surveys/schedules", headers=viewer).json()
    assert [s["agents"] for s in schedules] == [["survey-x2"]]
    assert server.get("/api/v1/surveys/schedules", headers=other).json() == []

    # a survey: operators start it, on the agents they pick (only the provider's own)
    start = {"org_id": x, "agents": ["survey-x1"]}
    assert server.post("/api/v1/surveys", headers=viewer, json=start).status_code == 403
    assert server.post("/api/v1/surveys", headers=other, json=start).status_code == 404
    foreign = server.post(
        "/api/v1/surveys", headers=operator, json={"org_id": x, "agents": ["survey-y1"]}
    )
    assert foreign.status_code == 422
    assert foreign.json()["code"] == "survey.e.agent_not_surveying"
    assert "survey-y1" in foreign.json()["detail"]
    started = server.post("/api/v1/surveys", headers=operator, json=start)
    assert started.status_code == 201, started.text
    detail = started.json()
    survey_id = detail["survey"]["id"]
    assert {s["agent_id"] for s in detail["shards"]} == {"survey-x1"}
    assert detail["survey"]["shards"] == len(detail["shards"]) == 1
    assert (detail["survey"]["state"], detail["survey"]["done"], detail["survey"]["eta_s"]) == (
        "running",
        0,
        None,
    )
    assert {c.agent_id for c in survey_commands(repo, survey_id)} == {"survey-x1"}

    # the agent's results come in: the survey is done, a notice is opened
    Notices(scoped(repo, CLI)).apply_map(x, MAP)
    collector = Surveys(scoped(repo, CLI))
    for command in survey_commands(repo, survey_id):
        result = part(command.agent_id, command, FOUND, at=datetime.now(UTC))
        assert collector.record(command.agent_id, result)
    shown = server.get(f"/api/v1/surveys/{survey_id}", headers=viewer).json()
    assert shown["survey"]["state"] == "done"
    assert (shown["survey"]["done"], shown["survey"]["probed"], shown["survey"]["percent"]) == (
        128,
        128,
        100,
    )
    assert shown["survey"]["shards_done"] == 1
    assert shown["shards"][0]["probed"] == 128
    assert shown["kinds"] == {
        "survey.dvrip_port_open": 1,
        "survey.onvif_no_auth": 1,
        "survey.stream_no_auth": 1,
        "survey.telnet_open": 1,
    }
    assert shown["vendors"] == {"": 1, "Dahua": 1, "Hikvision": 1}
    assert server.get(f"/api/v1/surveys/{survey_id}", headers=other).status_code == 404
    listed_surveys = server.get("/api/v1/surveys", headers=viewer).json()
    assert [s["id"] for s in listed_surveys] == [survey_id]
    assert server.get("/api/v1/surveys", headers=other).json() == []
    mine = server.get("/api/v1/surveys", headers=viewer, params={"org": x}).json()
    assert [s["id"] for s in mine] == [survey_id]
    assert server.get("/api/v1/surveys", headers=other, params={"org": x}).status_code == 404

    # notices: read by everybody of the provider, moved by operators, never backwards
    notices = server.get(f"/api/v1/surveys/{survey_id}/notices", headers=viewer).json()
    assert [n["subscriber_id"] for n in notices] == ["SUB-A"]
    assert server.get(f"/api/v1/surveys/{survey_id}/notices", headers=other).status_code == 404
    notice = f"/api/v1/surveys/notices/{notices[0]['id']}"
    assert server.get(notice, headers=viewer).json()["state"] == "open"
    assert server.get(notice, headers=other).status_code == 404
    assert server.post(notice, headers=viewer, json={"state": "sent"}).status_code == 403
    assert server.post(notice, headers=other, json={"state": "sent"}).status_code == 404
    assert server.post(notice, headers=operator, json={"state": "acknowledged"}).json()[
        "state"
    ] == ("acknowledged")
    assert server.post(notice, headers=operator, json={"state": "sent"}).status_code == 422
    assert server.post(notice, headers=operator, json={"state": "open"}).status_code == 422
    assert server.post(notice, headers=operator, json={"state": "fixed"}).status_code == 200


def test_the_start_form_runs_the_survey_on_the_agents_ticked(
    server: httpx.Client, repo: Repository, providers: Providers
) -> None:
    # a /19: two shards of 4096 addresses, one for each agent when none is ticked
    Surveys(scoped(repo, CLI)).declare_prefix(providers.isp_x, "198.51.96.0/19")
    csrf = login(server, "operator-x")
    page = server.get("/surveys").text
    assert 'name="agents" value="survey-x1"' in page
    assert 'name="agents" value="survey-x2"' in page
    assert "survey-y1" not in page  # another provider's agent is never offered
    form = {"csrf": csrf, "org": str(providers.isp_x), "agents": "survey-x2"}
    started = server.post("/surveys/start", data=form)
    assert started.status_code == 303
    survey_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert {c.agent_id for c in survey_commands(repo, survey_id)} == {"survey-x2"}
    # none ticked: every approved survey agent of the provider, as on the command line
    again = server.post("/surveys/start", data={"csrf": csrf, "org": str(providers.isp_x)})
    survey_id = int(again.headers["location"].rsplit("/", 1)[1])
    assert {c.agent_id for c in survey_commands(repo, survey_id)} == {"survey-x1", "survey-x2"}
    refused = server.post("/surveys/start", data={**form, "agents": "survey-y1"})
    assert refused.status_code == 422
    assert "survey-y1" in refused.text
    login(server, "viewer-x")
    assert 'name="agents"' not in server.get("/surveys").text  # nothing to start or schedule


def test_progress_moves_while_a_shard_sweeps(
    server: httpx.Client, repo: Repository, providers: Providers
) -> None:
    """The agent tells how many addresses it has probed with its sweeping step (a shard's
    parts come only after its sweep): the survey's progress and time left move with it, never
    past the shard, and the last part's summary settles it."""
    Surveys(scoped(repo, CLI)).declare_prefix(providers.isp_x, "198.51.96.0/19")
    start = datetime.now(UTC) - timedelta(minutes=10)
    survey_id = Surveys(as_user(repo, "operator-x", start)).start(providers.isp_x)
    one, two = survey_commands(repo, survey_id)
    seq = iter(range(1000, 2000))

    def tell(command: Any, step: str, probed: int | str) -> None:
        told = CommandResult(
            agent_id=command.agent_id, site="isp-x", seq=next(seq), issued_at=start,
            prev="0" * 64, prev_seq=0, command_id=command.command_id, status="in_progress",
            step=step, details={"probed": probed},
        )  # fmt: skip
        with read_then_write(repo.engine) as conn:
            assert apply_result(conn, command.agent_id, told.seq, told, datetime.now(UTC))

    viewer = bearer(repo, "viewer-x")
    before = server.get(f"/api/v1/surveys/{survey_id}", headers=viewer).json()
    assert (before["survey"]["done"], before["survey"]["eta_s"]) == (0, None)
    tell(one, "sweeping", 1024)
    tell(two, "sweeping", "many")  # not a count: nothing
    now = server.get(f"/api/v1/surveys/{survey_id}", headers=viewer).json()
    assert (now["survey"]["state"], now["survey"]["done"], now["survey"]["shards_done"]) == (
        "running", 1024, 0,
    )  # fmt: skip
    assert now["survey"]["eta_s"] is not None
    assert now["survey"]["eta_s"] > 0
    shards = {s["command_id"]: (s["probed"], s["done"]) for s in now["shards"]}
    assert shards == {one.command_id: (1024, 1024), two.command_id: (None, 0)}
    progress = {a.agent_id: a.done for a in Surveys(scoped(repo, CLI)).survey(survey_id).agents}
    assert progress == {one.agent_id: 1024, two.agent_id: 0}
    tell(two, "reporting", 9999)  # more than the shard holds: the shard, no more
    assert Surveys(scoped(repo, CLI)).survey(survey_id).done == 1024 + 4096
    last = part(one.agent_id, one, [], at=datetime.now(UTC))
    assert Surveys(scoped(repo, CLI)).record(one.agent_id, last)
    settled = Surveys(scoped(repo, CLI)).survey(survey_id)
    assert (settled.done, settled.shards_done, settled.probed) == (8192, 1, 4096)
