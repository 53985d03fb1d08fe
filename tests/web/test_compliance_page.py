"""The compliance page: the headline provinces report, agency bars, overdue checks, cameras not
audited apart, and security-level records edited from the dashboard (audit-logged, scoped)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from server.storage import Repository
from server.storage.org_models import AuditEntry, InformationSystem
from tests.web.conftest import World
from tests.web.test_rbac import login


def set_lang(server: httpx.Client, csrf: str, lang: str) -> None:
    assert server.post("/lang", data={"lang": lang, "csrf": csrf}).status_code == 303


def test_headline_bars_overdue_and_not_audited_in_both_languages(
    server: httpx.Client, world: World
) -> None:
    csrf = login(server, "root")
    set_lang(server, csrf, "vi")
    vi = server.get("/compliance").text
    assert "1/2 hệ thống thông tin đã được phê duyệt cấp độ; 1 hệ thống cấp độ 3" in vi
    assert "Tiến độ theo cơ quan" in vi
    # one bar per agency, with its compliant share; cam-2 of each agent is not audited
    assert vi.count('class="bar compliant"') == 2
    assert "Agency A" in vi
    assert "Agency B" in vi
    not_audited = vi.split('id="not-audited"><span class="big">')[1].split("<")[0]
    assert not_audited == "2"
    overdue = vi.split('id="overdue-list">')[1].split("</ul>")[0]
    assert "System A" in overdue
    assert "System B" not in overdue
    assert "hạn kiểm tra ngày 2020-01-01" in overdue
    set_lang(server, csrf, "en")
    en = server.get("/compliance").text
    assert "1/2 information systems approved; 1 at level 3" in en
    assert "Progress per agency" in en
    assert "Cameras not fully audited" in en
    assert "<title>Compliance" in en
    # the controls against the regulation in force, with the sources of the mapping
    regulation = en.split('id="regulation"')[1]
    assert "QCVN 11:2026/BCA, the regulation in force since 1 July 2026" in regulation
    auth01 = regulation.split("<td>AUTH-01</td>")[1].split("</tr>")[0]
    assert auth01.count("Unique password initialisation") == 2  # in force, and replaced
    assert "bdconsultant.com.vn" in regulation


def test_an_admin_edits_a_record_of_its_agency_only(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    csrf = login(server, "admin-a")
    page = server.get("/compliance").text
    assert f'action="/systems/{world.system_a}/security"' in page
    form = {
        "csrf": csrf,
        "framework": "ND331_TCVN14423",
        "level": "2",
        "decision_number": "45/QĐ-UBND",
        "decision_date": "2026-08-20",
        "plan_status": "full",
        "next_check_due": "2027-08-20",
    }
    r = server.post(f"/systems/{world.system_a}/security", data=form)
    assert r.status_code == 303
    assert r.headers["location"] == f"/compliance?saved={world.system_a}#system-{world.system_a}"
    after = server.get(r.headers["location"]).text
    assert 'id="saved"' in after
    assert "1/1 hệ thống thông tin đã được phê duyệt cấp độ; 1 hệ thống cấp độ 2" in after
    assert "System A" not in after.split('id="overdue"')[1].split("</h2>")[1].split("<h2")[0]
    # another agency's system: not found, and nothing changed there
    before_b = _record(repo, world.system_b)
    assert server.post(f"/systems/{world.system_b}/security", data=form).status_code == 404
    assert _record(repo, world.system_b) == before_b
    # a bad date is refused with a clear error
    bad = server.post(f"/systems/{world.system_a}/security", data={**form, "decision_date": "x"})
    assert bad.status_code == 422
    with repo.engine.connect() as conn:
        entries = conn.execute(
            select(AuditEntry.action, AuditEntry.target_id, AuditEntry.outcome, AuditEntry.detail)
            .where(AuditEntry.action == "system.security_record")
            .order_by(AuditEntry.id)
        ).all()
    ours = [e for e in entries if e.target_id == str(world.system_a) and e.outcome == "ok"]
    assert ours[-1].detail["decision_number"] == "45/QĐ-UBND"
    assert (str(world.system_b), "denied") in {(e.target_id, e.outcome) for e in entries}


def test_viewers_and_operators_see_no_form_and_may_not_edit(
    server: httpx.Client, world: World
) -> None:
    for username in ("viewer-a", "operator-a"):
        csrf = login(server, username)
        assert "/security" not in server.get("/compliance").text
        form = {"csrf": csrf, "framework": "ND331_TCVN14423", "level": "1", "plan_status": "none"}
        r = server.post(f"/systems/{world.system_a}/security", data=form)
        assert r.status_code == 403
        server.cookies.clear()


def _record(repo: Repository, system_id: int) -> object:
    with repo.engine.connect() as conn:
        return conn.execute(
            select(InformationSystem.__table__).where(InformationSystem.org_unit_id == system_id)
        ).one_or_none()
