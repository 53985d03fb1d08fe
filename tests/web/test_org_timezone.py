"""The time zone of an organisation unit: set by administrators on the organisation page
(audit-logged, scoped), inherited down the tree, the collector's ``[web] timezone`` above it;
pages, the report document and alert e-mails show times in the zone of the unit they belong to."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes

import httpx
from sqlalchemy import select

from protocol import Finding
from server.alerts.worker import AlertWorker
from server.config import AlertsConfig, SmtpConfig, WebConfig
from server.domain.alerts import Alerts
from server.domain.orgs import Orgs
from server.domain.reports import Reports
from server.domain.scope import CLI, Scope
from server.reports import compliance as reports
from server.reports import document
from server.storage import Repository
from server.storage.org_models import AuditEntry, OrgUnit
from server.times import zone_or
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, camera, process, report_with, scoped_as
from tests.web.test_alerts import Mailbox, smtp  # noqa: F401  # a fixture
from tests.web.test_rbac import login

DEFAULT = WebConfig().zone()


def _set(server: httpx.Client, csrf: str, org: int, zone: str) -> httpx.Response:
    return server.post(f"/orgs/{org}/timezone", data={"csrf": csrf, "timezone": zone})


def _footer(server: httpx.Client) -> str:
    return server.get("/").text.split('id="zone">')[1].split("</footer>")[0]


def test_an_admin_sets_a_zone_that_the_units_below_inherit(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    csrf = login(server, "admin-a")
    assert _set(server, csrf, world.agency_a, " Asia/Tokyo ").status_code == 303
    page = server.get("/orgs").text
    agency = page.split(f'id="org-{world.agency_a}"')[1].split("</tr>")[0]
    assert 'value="Asia/Tokyo"' in agency
    system = page.split(f'id="org-{world.system_a}"')[1].split("</tr>")[0]
    assert "Asia/Tokyo (inherited)" in system or "Asia/Tokyo (kế thừa)" in system
    # a viewer of the agency reads its pages in its zone; agency B and the whole fleet keep
    # the collector's
    login(server, "viewer-a")
    assert "Asia/Tokyo (UTC+09:00)" in _footer(server)
    login(server, "admin-b")
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in _footer(server)
    login(server, "root")
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in _footer(server)
    with repo.engine.connect() as conn:
        entry = conn.execute(
            select(AuditEntry.__table__).where(AuditEntry.action == "org.timezone")
        ).one()
    assert (entry.username, entry.outcome, entry.org_unit_id) == ("admin-a", "ok", world.agency_a)
    assert entry.detail == {"timezone": "Asia/Tokyo", "before": None}

    # emptied: inherited again
    csrf = login(server, "admin-a")
    assert _set(server, csrf, world.agency_a, "").status_code == 303
    login(server, "viewer-a")
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in _footer(server)


def test_zone_changes_are_checked_and_scoped(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    csrf = login(server, "admin-b")
    assert _set(server, csrf, world.agency_a, "Asia/Tokyo").status_code == 404
    csrf = login(server, "operator-a")
    assert _set(server, csrf, world.agency_a, "Asia/Tokyo").status_code == 403
    csrf = login(server, "admin-a")
    for wrong in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime"):
        refused = _set(server, csrf, world.agency_a, wrong)
        assert refused.status_code == 422
        assert "no IANA time zone" in refused.text
    assert _set(server, csrf, world.agency_a, "x" * 65).status_code == 422  # over the form's cap
    with repo.engine.connect() as conn:
        assert conn.execute(select(OrgUnit.timezone)).scalars().all() == [None] * 7
        outcomes = conn.execute(
            select(AuditEntry.username, AuditEntry.outcome).where(
                AuditEntry.action == "org.timezone"
            )
        ).all()
    assert sorted(outcomes) == sorted(
        [("admin-b", "denied"), ("operator-a", "denied")] + [("admin-a", "failed")] * 3
    )


def test_the_report_is_dated_in_the_zone_of_its_unit(repo: Repository, world: World) -> None:
    Orgs(scoped_as(repo, CLI)).set_timezone(world.agency_a, "Asia/Tokyo")
    # 15:30 UTC on 7 December is already 8 December in Tokyo, still 7 December in Hanoi
    late = Scope(
        repo, CLI, silent_after=timedelta(minutes=15), now=datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
    )
    days = {}
    for system in (world.system_a, world.system_b):
        data = Reports(late).report_data(system, date(2026, 12, 1), date(2026, 12, 7))
        text = document.compose(
            reports.build(data), [], document.Letterhead(place="Hà Nội"), Catalogue.load(),
            "vi", zone_or(data.zone, DEFAULT),
        )  # fmt: skip
        days[system] = (data.zone, text.place_date)
    assert days[world.system_a] == ("Asia/Tokyo", "Hà Nội, ngày 08 tháng 12 năm 2026")
    assert days[world.system_b] == (None, "Hà Nội, ngày 07 tháng 12 năm 2026")


def test_alert_emails_show_the_zone_of_the_alerts_unit(
    repo: Repository,
    db_url: str,
    world: World,
    smtp: tuple[Mailbox, SmtpConfig],  # noqa: F811  # the fixture of tests/web/test_alerts.py
) -> None:
    mailbox, smtp_config = smtp
    root = scoped_as(repo, CLI)
    Orgs(root).set_timezone(world.system_a, "Asia/Tokyo")
    Alerts(root).create_alert_route(
        org_unit_id=world.province,
        name="Province CERT",
        channel="email",
        target="cert@province.invalid",
        kinds=["finding"],
    )
    critical = Finding(
        code="auth.default_credential",
        check="default-credentials",
        status="fail",
        severity="critical",
        controls=["AUTH-01"],
        evidence={"entry": "hikvision-12345", "account": "admin", "interface": "http"},
    )
    sim = SimAgent("agent-a3", "site-a")
    enroll(repo, sim)
    process(repo, db_url, [report_with(sim, [camera("cam-9", [critical])])])
    AlertWorker(AlertsConfig(smtp=smtp_config, backoff_s=0.01), repo, DEFAULT).run_once(
        datetime.now(UTC)
    )
    bodies = {}
    for mail in mailbox.messages:
        assert isinstance(mail.content, bytes)
        parsed = message_from_bytes(mail.content)
        raw = parsed.get_payload(decode=True)
        assert isinstance(raw, bytes)
        bodies[str(parsed["Subject"]).split()[-1]] = raw.decode()
    # site-a's alert in Tokyo's time, agency B's (the world's open alerts) in the collector's
    tokyo = [b for b in bodies.values() if "(Asia/Tokyo, UTC+09:00)" in b]
    hanoi = [b for b in bodies.values() if "(Asia/Ho_Chi_Minh, UTC+07:00)" in b]
    assert len(tokyo) == 1
    assert "agent-a3" in tokyo[0]
    assert all("agent-a" not in b for b in hanoi)
