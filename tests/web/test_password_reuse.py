"""AUTH-03 at the collector: cameras sharing one password (the same keyed fingerprint under the
same key) are flagged on the camera page, in the findings list and in the compliance export,
counted over what the reader may see only. Fingerprints are made by the agent's own function;
reports go through the real ingest into SQLite and PostgreSQL; the app is read over HTTP."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from agent.credentials.passwords import SiteKey, fingerprint
from protocol import Finding
from server.domain.scope import CLI
from server.reports import compliance as reports
from server.storage import Repository
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, bearer, camera, process, report_with, scoped_as
from tests.web.test_rbac import FOREIGN_MARKERS, login

PROVINCE_KEY = SiteKey(b"k" * 32)  # imported by every agent of the province
OTHER_KEY = SiteKey(b"o" * 32)  # an agent that kept its own key


def policy(key: SiteKey, password: str) -> Finding:
    """The agent's AUTH-04 finding with the AUTH-03 fingerprint in its evidence."""
    print_ = fingerprint(key, password)
    return Finding(
        code="auth.password_policy",
        check="password-policy",
        status="pass",
        severity="info",
        controls=["AUTH-04"],
        evidence={"length": 14, "fingerprint": print_.value, "fingerprint_key_id": print_.key_id},
    )


def seed(repo: Repository, db_url: str) -> None:
    """agent-a3 (site-a): x1, x2 with password P, x3 with Q; agent-b3 (site-b): y1 with P under
    the same key; agent-a4 (site-a): z1 with P under another key; w1 with a malformed print."""
    sims = {name: SimAgent(name, site) for name, site in
            (("agent-a3", "site-a"), ("agent-b3", "site-b"), ("agent-a4", "site-a"))}  # fmt: skip
    for sim in sims.values():
        enroll(repo, sim)
    malformed = Finding(
        code="auth.password_policy", check="password-policy", status="pass", severity="info",
        controls=["AUTH-04"], evidence={"fingerprint": "P" * 64, "fingerprint_key_id": "x"},
    )  # fmt: skip
    process(repo, db_url, [
        report_with(sims["agent-a3"], [
            camera("x1", [policy(PROVINCE_KEY, "Shared#Pass1")]),
            camera("x2", [policy(PROVINCE_KEY, "Shared#Pass1")]),
            camera("x3", [policy(PROVINCE_KEY, "Own#Pass-x3")]),
        ]),
        report_with(sims["agent-b3"], [camera("y1", [policy(PROVINCE_KEY, "Shared#Pass1")])]),
        report_with(sims["agent-a4"], [
            camera("z1", [policy(OTHER_KEY, "Shared#Pass1")]),
            camera("w1", [malformed]),
            camera("w2", [malformed]),
        ]),
    ])  # fmt: skip


def reuse_rows(server: httpx.Client, headers: dict[str, str], query: str = "") -> dict[str, int]:
    page = server.get(f"/api/v1/findings?per_page=500{query}", headers=headers).json()
    return {
        f"{r['agent_id']}/{r['camera_id']}": r["evidence"]["cameras"]
        for r in page["items"]
        if r["code"] == "auth.password_reused"
    }


def test_reuse_sets_span_the_subtree_and_stop_at_what_the_reader_may_see(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    seed(repo, db_url)
    root, admin_a = bearer(world, "root"), bearer(world, "admin-a")
    # the whole fleet: P is on x1, x2 (site-a) and y1 (site-b) under the province's key; z1's
    # P under another key and the malformed prints compare with nothing
    assert reuse_rows(server, root) == {"agent-a3/x1": 2, "agent-a3/x2": 2, "agent-b3/y1": 2}
    assert reuse_rows(server, root, "&control=AUTH-03") == reuse_rows(server, root)
    # agency A sees its own two cameras, each sharing with one other: y1 is neither listed nor
    # counted
    assert reuse_rows(server, admin_a) == {"agent-a3/x1": 1, "agent-a3/x2": 1}
    # filters that exclude AUTH-03 exclude them; those that name it keep them
    assert reuse_rows(server, admin_a, "&severity=critical") == {}
    assert reuse_rows(server, admin_a, "&status=pass") == {}
    assert reuse_rows(server, admin_a, "&control=AUTH-01") == {}
    assert reuse_rows(server, admin_a, f"&org={world.system_a}&severity=high&status=fail") == {
        "agent-a3/x1": 1,
        "agent-a3/x2": 1,
    }
    listed = server.get("/api/v1/findings?control=AUTH-03", headers=admin_a).json()
    assert listed["total"] == 2
    assert {tuple(r["controls"]) for r in listed["items"]} == {("AUTH-03",)}
    assert [m for m in FOREIGN_MARKERS if m in str(listed)] == []

    # the camera page: the other cameras, with links, within scope
    x1 = server.get("/api/v1/cameras/agent-a3/x1", headers=root).json()
    assert [(c["agent_id"], c["camera_id"]) for c in x1["password_reused_on"]] == [
        ("agent-a3", "x2"),
        ("agent-b3", "y1"),
    ]
    x1_a = server.get("/api/v1/cameras/agent-a3/x1", headers=admin_a).json()
    assert [c["camera_id"] for c in x1_a["password_reused_on"]] == ["x2"]
    assert [f["evidence"] for f in x1_a["findings"] if f["code"] == "auth.password_reused"] == [
        {"cameras": 1}
    ]
    x3 = server.get("/api/v1/cameras/agent-a3/x3", headers=admin_a).json()
    assert x3["password_reused_on"] == []
    assert "auth.password_reused" not in [f["code"] for f in x3["findings"]]

    login(server, "admin-a")
    server.cookies.set("cw_lang", "en")
    page = server.get("/cameras/agent-a3/x1").text
    assert "This password is also used on 1 other camera:" in page
    assert 'href="/cameras/agent-a3/x2"' in page
    assert "This camera&#39;s password is also used on 1 other camera" in page
    assert "1 other cameras" not in page  # the singular
    assert [m for m in FOREIGN_MARKERS if m in page] == []
    findings = server.get("/findings?control=AUTH-03").text
    assert 'href="/cameras/agent-a3/x1"' in findings
    assert [m for m in FOREIGN_MARKERS if m in findings] == []
    server.cookies.set("cw_lang", "vi")
    page_vi = server.get("/cameras/agent-a3/x2").text
    assert "Mật khẩu này cũng được dùng trên 1 camera khác:" in page_vi


def test_the_compliance_export_counts_shared_passwords_inside_its_subtree(
    repo: Repository, db_url: str, world: World
) -> None:
    seed(repo, db_url)
    today = datetime.now(UTC).date()
    root = scoped_as(repo, CLI)
    province = reports.build(root.report_data(world.province, today - timedelta(days=7), today))
    assert province.total.password_reused == 3  # x1, x2, y1
    by_agency = {r.name: r.password_reused for r in province.rows}
    assert by_agency == {"Agency A": 2, "Agency B": 1}
    # agency A's own report: y1 is outside it, so only x1 and x2 share
    agency_a = reports.build(root.report_data(world.agency_a, today - timedelta(days=7), today))
    assert agency_a.total.password_reused == 2
    catalogue = Catalogue.load()
    assert "2 cameras share their password with another camera (AUTH-03)" in reports.summary(
        agency_a, catalogue, "en"
    )
    body = reports.to_csv(agency_a, catalogue, "vi").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    header = next(r for r in rows if r and r[0] == "Đơn vị")
    total = dict(zip(header, next(r for r in rows if r and r[0] == "Tổng cộng"), strict=True))
    assert total["Trùng mật khẩu"] == "2"
    # agency B's report sees one camera with P and nobody else: no reuse there
    agency_b = reports.build(root.report_data(world.agency_b, today - timedelta(days=7), today))
    assert agency_b.total.password_reused == 0


def test_a_changed_password_leaves_the_set(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    sim = SimAgent("agent-a3", "site-a")
    enroll(repo, sim)
    shared = policy(PROVINCE_KEY, "Shared#Pass1")
    process(repo, db_url, [report_with(sim, [camera("x1", [shared]), camera("x2", [shared])])])
    root = bearer(world, "root")
    assert reuse_rows(server, root) == {"agent-a3/x1": 1, "agent-a3/x2": 1}
    changed = policy(PROVINCE_KEY, "New#Pass-x2")
    process(repo, db_url, [report_with(sim, [camera("x1", [shared]), camera("x2", [changed])])])
    assert reuse_rows(server, root) == {}
    x1 = server.get("/api/v1/cameras/agent-a3/x1", headers=root).json()
    assert x1["password_reused_on"] == []


def test_the_findings_list_pages_through_agent_and_collector_findings_once_each(
    server: httpx.Client, repo: Repository, db_url: str, world: World
) -> None:
    seed(repo, db_url)
    root = bearer(world, "root")

    def key(r: dict[str, object]) -> tuple[object, ...]:
        return r["agent_id"], r["camera_id"], r["code"], r["id"]

    whole = server.get("/api/v1/findings?per_page=500", headers=root).json()
    assert whole["total"] == len(whole["items"])
    paged: list[tuple[object, ...]] = []
    for number in range(1, -(-whole["total"] // 3) + 1):
        got = server.get(f"/api/v1/findings?per_page=3&page={number}", headers=root).json()
        assert got["total"] == whole["total"]
        paged += [key(r) for r in got["items"]]
    assert paged == [key(r) for r in whole["items"]]
    assert len(set(paged)) == len(paged)
    # most severe first: the agents' critical findings, then the high ones with the AUTH-03
    # block after them, then the rest
    severities = [r["severity"] for r in whole["items"]]
    assert severities.index("high") > severities.index("critical")
    reuse_at = [i for i, r in enumerate(whole["items"]) if r["code"] == "auth.password_reused"]
    assert reuse_at == list(range(reuse_at[0], reuse_at[0] + 3))
    assert all(s in ("critical", "high") for s in severities[: reuse_at[0]])
    assert all(s not in ("critical",) for s in severities[reuse_at[-1] :])
