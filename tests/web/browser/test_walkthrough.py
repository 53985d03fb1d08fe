"""The operator's walkthrough and /api/docs offline, each on its own seeded server (both
databases), in the session's headless Chromium."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from tests.web.browser.conftest import ARTIFACTS, shot
from tests.web.conftest import PASSWORD, World


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    """The session's browser (tests/web/browser/conftest.py), on this test's own server."""
    return chromium


def test_operator_walkthrough(browser: Browser, server: httpx.Client, world: World) -> None:
    base = str(server.base_url).rstrip("/")
    page = browser.new_page(base_url=base)
    page.goto("/findings")  # not logged in: sent to the login page, then back
    expect(page).to_have_url(f"{base}/login?next=/findings")
    page.get_by_role("button", name="EN").click()
    page.locator("input[name=username]").fill("operator-a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Findings")).to_be_visible()
    shot(page, "1-findings-en")

    # Vietnamese, remembered for the user
    page.get_by_role("button", name="VI").click()
    expect(page.get_by_role("heading", name="Phát hiện")).to_be_visible()
    expect(page.locator("#findings")).to_contain_text("mật khẩu mặc định")
    page.goto("/")
    expect(page.get_by_role("heading", name="Tổng quan hệ thống camera")).to_be_visible()
    expect(page.locator("#cameras")).to_have_text("3")  # agency A's cameras only
    shot(page, "2-overview-vi")

    # filter: critical findings of one control, then the ones that passed
    page.goto("/findings")
    page.locator("select[name=severity]").select_option("critical")
    page.locator("input[name=control]").fill("AUTH-02")
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#total")).to_have_text("3 phát hiện")
    page.locator("select[name=status]").select_option("pass")
    page.locator("select[name=severity]").select_option("")
    page.locator("input[name=control]").fill("")
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#findings")).to_contain_text("tls.disabled")  # untranslated: the code
    shot(page, "3-findings-filtered")

    # a camera: identity, findings with control ids, evidence, report history
    page.get_by_role("link", name="agent-a1/cam-1").first.click()
    expect(page.locator("#camera-findings")).to_contain_text("AUTH-01, AUTH-02")
    expect(page.locator("#camera-findings")).to_contain_text("Tài khoản: admin")
    expect(page.locator("#history tbody tr")).to_have_count(2)
    shot(page, "4-camera")

    # approve the pending agent
    page.goto("/agents")
    row = page.locator("#agent-agent-a2")
    expect(row).to_contain_text("chờ phê duyệt")
    row.get_by_role("button", name="Phê duyệt").click()
    expect(page.get_by_role("status")).to_contain_text("agent-a2")
    expect(page.locator("#agent-agent-a2")).not_to_contain_text("chờ phê duyệt")
    expect(page.locator("#agents")).not_to_contain_text("agent-b")
    shot(page, "5-agents-approved")

    page.goto("/compliance")
    expect(page.locator("#systems tr.overdue")).to_contain_text("System A")
    shot(page, "6-compliance")

    page.goto("/reports")  # the compliance report, as the agency's operator may export it
    form = page.locator("#report-form")
    form.locator("select[name=format]").select_option("csv")
    with page.expect_download() as csv_download:
        form.get_by_role("button", name="Tải về").click()
    csv_file = ARTIFACTS / "7-report.csv"
    csv_download.value.save_as(csv_file)
    text = csv_file.read_text(encoding="utf-8-sig")  # UTF-8 with a BOM, for spreadsheets
    assert "System A" in text
    assert "Agency B" not in text
    assert "System B" not in text
    form.locator("select[name=format]").select_option("pdf")
    with page.expect_download() as pdf_download:
        form.get_by_role("button", name="Tải về").click()
    pdf_file = ARTIFACTS / "7-report.pdf"
    pdf_download.value.save_as(pdf_file)
    assert pdf_file.read_bytes().startswith(b"%PDF-")
    shot(page, "7-reports")
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(f"{base}/login")


def test_api_docs_render_with_the_network_off(browser: Browser, server: httpx.Client) -> None:
    """/api/docs from the collector's own assets: nothing leaves localhost, the CSP holds."""
    base = str(server.base_url).rstrip("/")
    page = browser.new_page(base_url=base)
    outside: list[str] = []
    problems: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:  # what a closed network does to it
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "camwarden collector", timeout=30_000
    )  # a 1.5 MB script on a loaded machine
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/api/v1/fleet", exact=True)).to_be_visible()
    shot(page, "8-api-docs")
    assert outside == []
    assert problems == []
