"""A plan's page after the agent answered: per-setting results (clamped: asked and got), the
re-audit, the rollback asked for on a confirmation page, queued, then its per-setting results,
in both languages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from protocol import (
    Command,
    CommandResult,
    Finding,
    decode_collector_message,
    digest,
    encode,
    sign,
    topic,
)
from protocol.envelope import unverified_payload
from protocol.keys import generate_private_key
from protocol.messages import EvidenceValue
from server.firmware.scheduler import Scheduler
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.firmware_models import CommandRecord, Rollout
from tests.web.browser.conftest import raw_codes
from tests.web.conftest import (
    PASSWORD,
    TELNET_OPEN,
    World,
    camera,
    escrow_jwk,
    process,
    remediation_plan,
    report_with,
)


def login(server: httpx.Client, username: str) -> str:
    page = server.get("/login")
    form = {"username": username, "password": PASSWORD, "csrf": page.cookies["cw_login"]}
    assert server.post("/login", data=form).status_code == 303
    return server.get("/agents").text.split('name="csrf" value="')[1].split('"')[0]


def answer(world: World, cmd: Command, details: dict[str, EvidenceValue]) -> tuple[str, bytes]:
    """agent-a1's final result for ``cmd``: failed (``not_applied``), as ``details`` tell."""
    sim = world.sims["agent-a1"]
    sim.seq += 1
    message = CommandResult(
        agent_id=sim.agent_id,
        site=sim.site,
        seq=sim.seq,
        issued_at=datetime.now(UTC),
        prev=sim.prev,
        prev_seq=sim.prev_seq,
        command_id=cmd.command_id,
        status="failed",
        reason="not_applied",
        details=details,
    )
    token = sign(encode(message), sim.key).encode()
    sim.prev, sim.prev_seq = digest(token), sim.seq
    return topic(sim.site, sim.agent_id, "cmd-result"), token


def test_results_rollback_and_both_languages(
    server: httpx.Client, repo: Repository, db_url: str, world: World, tmp_path: Path
) -> None:
    sent: list[Command] = []

    def publish(_topic: str, payload: bytes) -> None:
        message = decode_collector_message(unverified_payload(payload))
        assert isinstance(message, Command)
        sent.append(message)

    tick = Scheduler(
        repo, TufRepository.under(tmp_path), generate_private_key(), publish,
        clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    plan = remediation_plan(repo, db_url, world, "agent-a1", "operator-a")
    token = login(server, "operator-a")
    listed = server.get("/findings?control=SVC-02").text
    assert 'id="fix-all" href="/remediation/new?control=SVC-02' in listed
    assert server.get("/remediation/new?control=SVC-2").status_code == 422  # not a crash
    every = server.get("/remediation/new?control=SVC-02&org_id=").text
    assert "agent-a1/cam-fix" in every
    asked = server.post(f"/remediation/{plan}/approve", data={"csrf": token})
    assert "Phê duyệt kế hoạch site-a telnet? 1 camera" in asked.text  # the user's language
    server.post(f"/remediation/{plan}/approve", data={"csrf": token, "confirm": "yes"})
    tick.run_once()  # the world's firmware canaries and password rotation go out too
    [cmd] = [c for c in sent if c.action == "settings.apply"]
    details: dict[str, EvidenceValue] = {
        "outcome.telnet": "clamped",
        "asked.telnet": "false",
        "got.telnet": "true",
        "sealed": "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d",
        "escrow_kid": str(cmd.params["escrow_kid"]),
        "reaudit.fail": "COM-06,SVC-02",
    }
    process(repo, db_url, [answer(world, cmd, details)])
    tick.run_once()
    server.post("/lang", data={"lang": "en", "csrf": token, "next": "/"})
    page = server.get(f"/remediation/{plan}").text
    assert "Telnet: clamped by the camera (asked false, got true)" in page
    assert "Checked again. Pass: -; fail: COM-06, SVC-02; inconclusive: -" in page
    assert "failed (not_applied)" in page
    assert raw_codes(page.replace("not_applied", "")) == []
    rollback = f"/remediation/{plan}/cameras/agent-a1/cam-fix/rollback"
    question = server.post(rollback, data={"csrf": token})
    assert "Roll the camera agent-a1/cam-fix back to its settings before the change?" in (
        question.text
    )
    with repo.engine.connect() as conn:  # nothing queued before the confirmation
        assert (
            conn.execute(select(CommandRecord.action)).scalars().all().count("settings.restore")
            == 0
        )
    done = server.post(rollback, data={"csrf": token, "confirm": "yes"})
    assert done.headers["location"] == f"/remediation/{plan}"
    done = server.get(done.headers["location"])
    assert "rollback: queued (by operator-a)" in done.text
    assert f'action="{rollback}"' not in done.text  # offered once
    tick.run_once()
    [restore] = [c for c in sent if c.action == "settings.restore"]
    process(repo, db_url, [answer(world, restore, {"outcome.telnet": "not_restored"})])
    tick.run_once()
    page = server.get(f"/remediation/{plan}").text
    assert "rollback: failed (by operator-a) (not_applied)" in page
    assert "Telnet: not restored" in page.split('class="rollback-results"')[1]
    server.post("/lang", data={"lang": "vi", "csrf": token, "next": "/"})
    page = server.get(f"/remediation/{plan}").text
    assert "Telnet: camera đã giới hạn giá trị (yêu cầu false, nhận được true)" in page
    assert "hoàn tác: thất bại (bởi operator-a) (not_applied)" in page
    assert "Telnet: chưa khôi phục được" in page.split('class="rollback-results"')[1]
    assert raw_codes(page.replace("not_applied", "")) == []


def test_plan_form_takes_maintenance_windows(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    """The plan form's maintenance windows, one ``SITE=HH:MM-HH:MM[@MINUTES]`` a line as on
    the command line; a wrong one refused, nothing stored."""
    process(repo, db_url, [report_with(world.sims["agent-a1"], [camera("cam-fix", [TELNET_OPEN])])])
    token = login(server, "operator-a")
    form = {"csrf": token, "name": "nightly", "site": "site-a", "control": "SVC",
            "escrow_jwk": json.dumps(escrow_jwk())}  # fmt: skip
    new = "/remediation/new?site=site-a&control=SVC"
    assert 'name="windows"' in server.get(new).text
    assert "Khung giờ bảo trì, mỗi dòng một địa điểm" in server.get(new).text
    server.post("/lang", data={"lang": "en", "csrf": token, "next": "/"})
    assert "Maintenance windows, one site a line" in server.get(new).text
    for wrong in ("site-a=25:00-05:00", "site-a=22:00", "site-a=22:00-05:00@9000"):
        refused = server.post("/remediation", data=form | {"windows": wrong})
        assert refused.status_code in (400, 422), (wrong, refused.status_code)
    with repo.engine.connect() as conn:
        assert conn.scalars(select(Rollout.id).where(Rollout.name == "nightly")).all() == []
    made = server.post(
        "/remediation", data=form | {"windows": "site-a=22:00-05:00\n\nsite-b=23:30-04:00@0\n"}
    )
    assert made.status_code == 303, made.text
    with repo.engine.connect() as conn:
        [policy] = conn.scalars(select(Rollout.policy).where(Rollout.name == "nightly")).all()
    assert policy["windows"] == {
        "site-a": {"start": "22:00", "end": "05:00", "utc_offset_min": 420},
        "site-b": {"start": "23:30", "end": "04:00", "utc_offset_min": 0},
    }


def test_the_dry_run_says_why_anonymous_onvif_is_left_alone(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    """A Hikvision camera answering RTSP and ONVIF to anyone: RTSP authentication is planned,
    ONVIF left out with its own reason (no switch but ONVIF off), in both languages."""
    findings = [
        Finding(code=code, check=code, status="fail", severity="critical", controls=[control])
        for code, control in (
            ("auth.rtsp_anonymous", "AUTH-08"),
            ("onvif.anonymous_access", "AUTH-10"),
        )
    ]
    process(repo, db_url, [report_with(world.sims["agent-a1"], [camera("cam-anon", findings)])])
    token = login(server, "operator-a")
    new = "/remediation/new?site=site-a&control=AUTH"
    page = server.get(new).text
    assert "agent-a1/cam-anon" in page
    assert "chỉ có cách tắt hẳn ONVIF" in page
    assert raw_codes(page) == []
    server.post("/lang", data={"lang": "en", "csrf": token, "next": "/"})
    page = server.get(new).text
    assert "RTSP: sign-in required" in page  # planned
    assert "ONVIF: sign-in required): the camera has no setting that refuses ONVIF" in page
    assert "only turning ONVIF off would" in page
    assert raw_codes(page) == []
