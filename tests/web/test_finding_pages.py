"""The dashboard shows a finding's title, why it matters and the vendor's fix steps, never its
code: a camera failing every code the agent can emit goes through the real ingest into SQLite
and PostgreSQL, and its page, the findings list and the audit log are read over HTTP in both
languages."""

from __future__ import annotations

import html
import re

import httpx

from protocol import Finding
from server.domain.scope import CLI
from server.storage import Repository
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, camera, process, report_with, scoped_as
from tests.web.test_finding_catalogue import ALL_CODES, RAW_CODE, evidence_for
from tests.web.test_rbac import login


def every_code() -> list[Finding]:
    return [
        Finding(
            code=code,
            check="catalogue",
            status="fail",
            severity="high",
            controls=["AUTH-01"],
            evidence=dict(evidence_for(code)),
        )
        for code in sorted(ALL_CODES)
    ]


def shown(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_pages_show_titles_and_fixes_not_codes(
    repo: Repository, db_url: str, world: World, server: httpx.Client
) -> None:
    sim = SimAgent("agent-a9", "site-a")
    enroll(repo, sim)
    findings = every_code()
    process(repo, db_url, [report_with(sim, [camera("gate", findings, vendor="HIKVISION")])])
    catalogue = Catalogue.load()
    login(server, "viewer-a")
    for lang in ("vi", "en"):
        server.cookies.set("cw_lang", lang)
        page = server.get("/cameras/agent-a9/gate")
        assert page.status_code == 200
        text = shown(page.text)
        for f in findings:
            described = catalogue.finding(lang, f.code, dict(f.evidence), vendor="HIKVISION")
            assert described.title in text, (lang, f.code)
            assert f"{described.why}" in text, (lang, f.code)
            assert f"{described.advice}" in text, (lang, f.code)
        assert RAW_CODE.search(text) is None, RAW_CODE.search(text)
        assert "{" not in text
        assert "\\u" not in page.text
        # the Hikvision steps, not the general advice
        telnet = catalogue.finding_entry(lang, "svc.telnet_open")
        assert telnet["advice_hikvision"] in text
        # evidence is labelled in the reader's language
        label = catalogue.evidence_label(lang, "vault_entry")
        assert f"{label}: V0" in text

        listed = server.get("/findings").text
        titles = shown(listed)
        assert RAW_CODE.search(titles) is None, RAW_CODE.search(titles)
        rows = listed.split('id="findings"')[1].count("<tr>") - 1
        assert rows >= 10
        listed_titles = [catalogue.finding(lang, f.code, dict(f.evidence)).title for f in findings]
        assert sum(title in titles for title in listed_titles) >= 10
        assert "{" not in titles


def test_the_audit_log_shows_labelled_details_in_the_readers_language(
    repo: Repository, world: World, server: httpx.Client
) -> None:
    scoped_as(repo, CLI).create_org(
        parent_id=world.agency_a, kind="system", name="Hệ thống Đà Nẵng"
    )
    login(server, "root")
    server.cookies.set("cw_lang", "vi")
    page = server.get("/audit").text
    assert "\\u" not in page
    assert "Tên: Hệ thống Đà Nẵng" in shown(page)
    server.cookies.set("cw_lang", "en")
    assert "Name: Hệ thống Đà Nẵng" in shown(server.get("/audit").text)
