"""Remediation plans over real stored findings: the dry run, the stored plan awaiting approval,
the staged rollout of settings commands through the scheduler, results and rollback.

Findings reach the database through the real ingest path (signed reports); results come back as
signed ``cmd-result`` messages the same way, and the scheduler (the firmware rollouts' one)
publishes the commands and applies the results.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
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
from server.cli import main
from server.domain.orgs import Orgs
from server.domain.remediation import Options, Remediations, Selection, Staging
from server.domain.scope import CLI, Forbidden, Invalid, NotVisible, Principal, Scope
from server.domain.users import Users
from server.firmware.commands import SETTINGS_APPLY, SETTINGS_RESTORE
from server.firmware.scheduler import Scheduler
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.storage.org_models import AuditEntry
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import PASSWORD, camera, escrow_jwk, principal_of, process, report_with


def fail(code: str, controls: list[str]) -> Finding:
    return Finding(code=code, check=code, status="fail", severity="high", controls=controls)


TELNET = fail("svc.telnet_open", ["COM-06", "SVC-02"])
FTP = fail("svc.ftp_open", ["COM-06"])
MANUAL_CLOCK = fail("log.time_manual", ["LOG-01"])
DEFAULT_PASSWORD = fail("auth.default_credential", ["AUTH-01"])
P2P = fail("svc.p2p_enabled", ["SVC-06"])
DISCOVERABLE = fail("svc.discoverable", ["SVC-08"])
RTSP_ANONYMOUS = fail("auth.rtsp_anonymous", ["AUTH-08"])
ONVIF_ANONYMOUS = fail("onvif.anonymous_access", ["AUTH-10"])


RTSP_BASIC = fail("auth.rtsp_basic", ["AUTH-09"])
HTTP_BASIC = fail("auth.http_basic", ["AUTH-07"])


def scope(
    repo: Repository, principal: Principal = CLI, *, later: timedelta = timedelta(0)
) -> Scope:
    return Scope(repo, principal, silent_after=timedelta(minutes=15), now=datetime.now(UTC) + later)


@pytest.fixture
def fleet(repo: Repository, db_url: str) -> dict[str, SimAgent]:
    """Agency A (site-a, agent-a) and agency B (site-b, agent-b) with cameras of each kind."""
    root = scope(repo)
    orgs = Orgs(root)
    province = orgs.create_org(parent_id=None, kind="province", name="Province P").id
    for name, site in (("Agency A", "site-a"), ("Agency B", "site-b")):
        agency = orgs.create_org(parent_id=province, kind="agency", name=name).id
        system = orgs.create_org(parent_id=agency, kind="system", name=f"System {name}").id
        orgs.map_site(site, system)
    sims = {"a": SimAgent("agent-a", "site-a"), "b": SimAgent("agent-b", "site-b")}
    for sim in sims.values():
        enroll(repo, sim)
    process(
        repo,
        db_url,
        [
            report_with(
                sims["a"],
                [
                    camera("hik", [TELNET, FTP, MANUAL_CLOCK, DEFAULT_PASSWORD, DISCOVERABLE]),
                    camera("dahua", [FTP], vendor="Dahua"),
                    camera("acme", [P2P], vendor="Acme"),
                    camera("partial", [P2P], audit="partial", reason="timeout"),
                ],
            ),
            report_with(sims["b"], [camera("hik-b", [TELNET])]),
        ],
    )
    return sims


def test_the_dry_run_plans_axis_authentication_and_snmp(
    repo: Repository, db_url: str, fleet: dict[str, SimAgent]
) -> None:
    """Axis writes Digest-only (web and RTSP: one parameter), RTSP viewers' password and SNMP
    off through param.cgi; anonymous ONVIF it cannot close: no VAPIX switch is named, only an
    ONVIF account would (the plan says so)."""
    found = [
        fail("auth.http_basic", ["AUTH-07"]),
        fail("auth.rtsp_anonymous", ["AUTH-08"]),
        fail("auth.rtsp_basic", ["AUTH-09"]),
        fail("com.snmp_community", ["COM-05"]),
        fail("onvif.anonymous_access", ["AUTH-10"]),
    ]
    process(repo, db_url, [report_with(fleet["b"], [camera("axis-b", found, vendor="Axis")])])
    plan = Remediations(scope(repo)).preview(Selection(camera_id="axis-b"), Options())
    (axis,) = plan.items
    assert axis.reason is None
    assert axis.changes == {
        "http_digest_only": True,
        "rtsp_auth": True,
        "rtsp_digest_only": True,
        "snmp": False,
    }
    assert sorted(axis.controls) == ["AUTH-07", "AUTH-08", "AUTH-09", "COM-05"]
    left_out = {(k.code, k.setting, k.reason) for k in axis.skipped}
    assert left_out == {("onvif.anonymous_access", "onvif_auth", "onvif_user_only")}


def test_the_dry_run_lists_changes_and_what_cannot_be_done(
    repo: Repository, fleet: dict[str, SimAgent]
) -> None:
    plan = Remediations(scope(repo)).preview(Selection(site="site-a"), Options())
    by_camera = {i.camera_id: i for i in plan.items}
    hik = by_camera["hik"]
    assert hik.reason is None
    assert hik.changes == {"telnet": False}
    assert hik.findings == ["svc.telnet_open"]
    assert hik.controls == ["COM-06", "SVC-02"]
    left_out = {(k.code, k.setting, k.reason) for k in hik.skipped}
    assert left_out == {
        ("auth.default_credential", None, "not_remediable"),
        ("svc.ftp_open", "ftp", "not_settable"),
        ("log.time_manual", "ntp_server", "needs_value"),
        ("svc.discoverable", None, "on_request"),  # only when the plan names it
    }
    asked = Remediations(scope(repo)).preview(Selection(code="svc.discoverable"), Options())
    assert asked.items[0].changes == {"discoverable": False}  # through ONVIF
    with pytest.raises(Invalid, match="not a valid host"):
        Remediations(scope(repo)).preview(Selection(), Options(ntp_server="bad host!"))
    assert by_camera["dahua"].reason == "nothing_settable"  # Dahua's API has no FTP switch
    assert by_camera["acme"].reason == "vendor_not_supported"
    assert by_camera["partial"].reason == "not_audited_recently"
    assert "hik-b" not in by_camera
    # with a time source, the manual clock is fixed too
    timed = Remediations(scope(repo)).preview(
        Selection(camera_id="hik"), Options(ntp_server="ntp.gov.vn")
    )
    assert timed.items[0].changes == {"telnet": False, "ntp": True, "ntp_server": "ntp.gov.vn"}
    # narrowed by finding code, control and vendor
    by_code = Remediations(scope(repo)).preview(Selection(code="svc.telnet_open"), Options())
    assert {i.camera_id for i in by_code.items} == {"hik", "hik-b"}
    by_control = Remediations(scope(repo)).preview(Selection(control="SVC-06"), Options())
    assert {i.camera_id for i in by_control.items} == {"acme", "partial"}
    families = Remediations(scope(repo)).preview(Selection(control="LOG,SVC-06"), Options())
    assert {i.camera_id for i in families.items} == {"hik", "acme", "partial"}
    hik_log = next(i for i in families.items if i.camera_id == "hik")
    assert (hik_log.findings, hik_log.reason) == (["log.time_manual"], "nothing_settable")
    by_vendor = Remediations(scope(repo)).preview(Selection(vendor="dahua"), Options())
    assert [i.camera_id for i in by_vendor.items] == ["dahua"]
    # an hour later nobody has reported: every camera's agent is offline
    late = Remediations(scope(repo, later=timedelta(hours=1))).preview(Selection(), Options())
    assert {i.reason for i in late.items} == {"agent_offline"}


def test_anonymous_rtsp_and_onvif_on_a_hikvision_camera(
    repo: Repository, db_url: str, fleet: dict[str, SimAgent]
) -> None:
    """RTSP authentication is planned through Hikvision's API; anonymous ONVIF is left out with
    its own reason: no switch refuses anonymous callers, and turning ONVIF off is not done."""
    both = [RTSP_ANONYMOUS, ONVIF_ANONYMOUS]
    process(
        repo, db_url, [report_with(fleet["b"], [camera("hik-b", [TELNET]), camera("ipc", both)])]
    )
    plan = Remediations(scope(repo)).preview(Selection(camera_id="ipc"), Options())
    (item,) = plan.items
    assert (item.reason, item.changes) == (None, {"rtsp_auth": True})
    assert (item.findings, item.controls) == (["auth.rtsp_anonymous"], ["AUTH-08"])
    assert {(k.code, k.setting, k.reason) for k in item.skipped} == {
        ("onvif.anonymous_access", "onvif_auth", "onvif_off_only")
    }
    dahua = report_with(fleet["b"], [camera("ipc", both, vendor="Dahua")])
    process(repo, db_url, [dahua])  # Dahua's API has the switch
    plan = Remediations(scope(repo)).preview(Selection(camera_id="ipc"), Options())
    assert plan.items[0].changes == {"rtsp_auth": True, "onvif_auth": True}


def test_the_dry_run_plans_dahua_digest_only_rtsp_not_its_web(
    repo: Repository, db_url: str
) -> None:
    """Dahua's API sets RTSP to Digest only (RTSP.AuthType); no public Dahua document names a
    switch that refuses Basic on its web interface, so AUTH-07 stays not settable."""
    orgs = Orgs(scope(repo))
    province = orgs.create_org(parent_id=None, kind="province", name="Province C").id
    agency = orgs.create_org(parent_id=province, kind="agency", name="Agency C").id
    orgs.map_site("site-c", orgs.create_org(parent_id=agency, kind="system", name="C").id)
    sim = SimAgent("agent-c", "site-c")
    enroll(repo, sim)
    process(repo, db_url, [report_with(sim, [camera("dh", [RTSP_BASIC, HTTP_BASIC], "Dahua")])])
    plan = Remediations(scope(repo)).preview(Selection(site="site-c"), Options())
    (item,) = plan.items
    assert (item.camera_id, item.reason) == ("dh", None)
    assert item.changes == {"rtsp_digest_only": True}
    assert (item.findings, item.controls) == (["auth.rtsp_basic"], ["AUTH-09"])
    left_out = {(k.code, k.setting, k.reason) for k in item.skipped}
    assert left_out == {("auth.http_basic", "http_digest_only", "not_settable")}


def test_a_scoped_operator_plans_only_inside_its_subtree(
    repo: Repository, fleet: dict[str, SimAgent]
) -> None:
    orgs = {o.name: o.id for o in Orgs(scope(repo)).org_tree()}

    def user(name: str, role: str, org: str) -> Principal:
        Users(scope(repo)).create_user(name, PASSWORD, role, orgs[org])
        return principal_of(repo, name)

    operator_b = user("op-b", "operator", "Agency B")
    mine = Remediations(scope(repo, operator_b))
    assert [i.camera_id for i in mine.preview(Selection(), Options()).items] == ["hik-b"]
    with pytest.raises(NotVisible):
        mine.preview(Selection(org_id=orgs["Agency A"]), Options())
    with pytest.raises(Forbidden):
        Remediations(scope(repo, user("vi-b", "viewer", "Agency B"))).create(
            name="x",
            selection=Selection(),
            options=Options(),
            escrow_jwk=escrow_jwk(),
            staging=Staging(),
        )
    made = mine.create(
        name="b",
        selection=Selection(),
        options=Options(),
        escrow_jwk=escrow_jwk(),
        staging=Staging(),
    )
    other = Remediations(scope(repo, user("op-a", "operator", "Agency A")))
    assert other.plans() == []
    with pytest.raises(NotVisible):
        other.act(made.rollout.rollout.id, "approve")


def test_an_approved_plan_rolls_out_and_reports_per_setting_results(
    repo: Repository, db_url: str, fleet: dict[str, SimAgent], tmp_path: Path
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
    rem = Remediations(scope(repo))
    with pytest.raises(Invalid, match="nothing"):
        rem.create(
            name="none",
            selection=Selection(camera_id="acme"),
            options=Options(),
            escrow_jwk=escrow_jwk(),
            staging=Staging(),
        )
    plan = rem.create(
        name="telnet off",
        selection=Selection(code="svc.telnet_open"),
        options=Options(),
        escrow_jwk=escrow_jwk(),
        staging=Staging(canary_count=1),
    )
    plan_id = plan.rollout.rollout.id
    assert plan.rollout.rollout.phase == "awaiting_approval"
    assert [(i.camera_id, i.state) for i in plan.items] == [
        ("hik", "planned"),
        ("hik-b", "planned"),
    ]
    assert tick.run_once() == 0  # nothing is sent before approval
    Remediations(scope(repo)).act(plan_id, "approve")
    assert tick.run_once() == 1  # the canary
    canary = sent[0]
    assert canary.camera_id is not None
    assert canary.action == SETTINGS_APPLY
    assert canary.params["set.telnet"] is False
    assert canary.params["plan_id"] == plan_id
    sim = fleet["a"] if canary.agent_id == "agent-a" else fleet["b"]
    details: dict[str, EvidenceValue] = {
        "outcome.telnet": "applied",
        "sealed": "eyJhbGciOiJFQ0RILUVTIn0..x.y.z",
        "escrow_kid": canary.params["escrow_kid"],
        "reaudit.pass": "COM-06,SVC-02",
    }
    process(repo, db_url, [result(sim, canary, "succeeded", details)])
    tick.run_once()
    d = Remediations(scope(repo)).plan(plan_id)
    assert d.rollout.rollout.phase == "awaiting_promotion"
    item = next(i for i in d.items if i.camera_id == canary.camera_id)
    assert (item.outcome, item.sealed) == ("succeeded", True)
    assert item.results == {"telnet": {"outcome": "applied", "asked": None, "got": None}}
    assert item.reaudit == {"pass": ["COM-06", "SVC-02"]}
    # roll the camera back: a signed restore naming the original command
    restore_id = Remediations(scope(repo)).rollback(plan_id, canary.agent_id, canary.camera_id)
    assert tick.run_once() == 1
    restore = sent[-1]
    assert (restore.command_id, restore.action) == (restore_id, SETTINGS_RESTORE)
    assert restore.params["original"] == canary.command_id
    with pytest.raises(Invalid, match="once"):
        Remediations(scope(repo)).rollback(plan_id, canary.agent_id, canary.camera_id)
    process(repo, db_url, [result(sim, restore, "succeeded", {})])
    tick.run_once()
    item = next(
        i for i in Remediations(scope(repo)).plan(plan_id).items if i.camera_id == canary.camera_id
    )
    assert (item.rollback_status, item.rollback_by) == ("succeeded", "cli")
    with repo.engine.connect() as conn:
        actions = set(conn.execute(select(AuditEntry.action)).scalars())
    assert {"remediation.plan", "remediation.approve", "remediation.rollback"} <= actions


def result(
    sim: SimAgent, cmd: Command, status: str, details: dict[str, EvidenceValue]
) -> tuple[str, bytes]:
    sim.seq += 1
    message = CommandResult(
        agent_id=sim.agent_id,
        site=sim.site,
        seq=sim.seq,
        issued_at=datetime.now(UTC),
        prev=sim.prev,
        prev_seq=sim.prev_seq,
        command_id=cmd.command_id,
        status=status,  # type: ignore[arg-type]  # one of CommandStatus
        details=details,
    )
    token = sign(encode(message), sim.key).encode()
    sim.prev, sim.prev_seq = digest(token), sim.seq
    return topic(sim.site, sim.agent_id, "cmd-result"), token


def test_the_cli_plans_stores_approves_and_reports(
    repo: Repository,
    db_url: str,
    fleet: dict[str, SimAgent],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def cli(*argv: str) -> int:
        base = ["--set", f'database.url="{db_url}"', "--set", f'state_dir="{tmp_path}"']
        return main([*base, "remediate", "--by", "ann", *argv])

    assert cli("plan", "--site", "site-a", "--ntp-server", "ntp.gov.vn") == 0
    out = capsys.readouterr().out
    assert out.startswith("1 camera(s) to change, 3 left out")
    hik = "agent-a/hik (site-a, Hikvision X): set ntp=true, ntp_server=ntp.gov.vn, telnet=false"
    assert f"{hik} [closes log.time_manual, svc.telnet_open]" in out
    assert "agent-a/acme (site-a, Acme X): not done: vendor_not_supported" in out
    assert "left out: svc.ftp_open ftp: not_settable" in out
    assert cli("plan", "--ntp-server", "bad host!") == 1
    assert "not a valid host" in capsys.readouterr().err
    assert cli("plan", "--site", "site-a", "--create") == 1  # no escrow key
    key = tmp_path / "escrow.jwk"
    key.write_text(json.dumps(escrow_jwk()))
    assert cli("plan", "--site", "site-a", "--create", "--name", "a", "--escrow-key", str(key)) == 0
    assert "awaiting approval" in capsys.readouterr().out
    plan_id = Remediations(scope(repo)).plans()[0].id
    assert cli("approve", str(plan_id)) == 0
    assert f"plan {plan_id} a: canary" in capsys.readouterr().out
    assert cli("status", str(plan_id)) == 0
    out = capsys.readouterr().out
    assert "agent-a/hik: telnet=false: waiting" in out
    assert "agent-a/dahua: left out: nothing_settable" in out
    assert cli("rollback", str(plan_id), "agent-a", "hik") == 1  # nothing applied yet
    assert "only a camera whose change succeeded" in capsys.readouterr().err
    with repo.engine.connect() as conn:
        who = set(conn.execute(select(AuditEntry.username)).scalars())
    assert "ann" in who
