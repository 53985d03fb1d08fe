"""Compliance records and the register import clicked through in headless Chromium, in both
languages (screenshots in test-artifacts/web/, not committed)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.web.browser.conftest import shot
from tests.web.browser.test_walkthrough import browser
from tests.web.conftest import PASSWORD, World

__all__ = ["browser"]  # the walkthrough's fixture (a page per test), shared

REGISTER = (
    b"vendor,model,hardware_id,firmware,regulation,certificate_number,certificate_date,flagged\n"
    b"Dahua,IPC-HFW2431S,,V2.800.0000000.1,QCVN 11:2026/BCA,11/2026/0007,2026-09-01,no\n"
    b"Hikvision,DS-2CD2143G2-I,,,QCVN 135:2024/BTTTT,QCVN-135/2024/0042,2024-11-04,no\n"
)


def sign_in(browser: Browser, server: httpx.Client, username: str, lang: str) -> Page:
    page = browser.new_page(base_url=str(server.base_url).rstrip("/"))
    page.goto("/login")
    page.get_by_role("button", name=lang.upper()).click()
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    return page


def test_an_admin_edits_a_security_level_record(
    browser: Browser, server: httpx.Client, world: World
) -> None:
    page = sign_in(browser, server, "admin-a", "en")
    page.goto("/compliance")
    expect(page.locator("#headline")).to_have_text("1/1 information systems approved; 1 at level 3")
    expect(page.locator("#overdue-list")).to_contain_text("System A")
    shot(page, "h20b-1-compliance-en")
    row = page.locator(f"#system-{world.system_a}")
    row.get_by_text("Edit the security-level record").click()
    form = row.locator("form.record-form")
    form.locator("select[name=level]").select_option("2")
    form.locator("input[name=decision_number]").fill("45/QĐ-UBND")
    form.locator("input[name=decision_date]").fill("2026-08-20")
    form.locator("input[name=next_check_due]").fill("2099-08-20")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator("#headline")).to_have_text("1/1 information systems approved; 1 at level 2")
    expect(page.locator("#overdue-list")).to_have_count(0)
    shot(page, "h20b-2-record-saved-en")
    page.get_by_role("button", name="VI").click()
    expect(page.locator("#headline")).to_have_text(
        "1/1 hệ thống thông tin đã được phê duyệt cấp độ; 1 hệ thống cấp độ 2"
    )
    expect(page.locator(f"#system-{world.system_a}")).to_contain_text("45/QĐ-UBND")
    shot(page, "h20b-3-compliance-vi")


def test_an_administrator_imports_the_register_after_a_preview(
    browser: Browser, server: httpx.Client, world: World
) -> None:
    page = sign_in(browser, server, "root", "vi")
    page.goto("/models")
    upload = page.locator("#import-models")
    upload.locator("input[type=file]").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"vendor,model\n,IPC-X\n"}
    )
    upload.get_by_role("button", name="Kiểm tra và xem trước").click()
    expect(page.locator("#import-errors")).to_contain_text("“vendor” đang để trống")
    expect(page.locator("#import-errors td").first).to_have_text("2")  # the line
    shot(page, "h20b-4-import-errors-vi")
    page.goto("/models")
    upload.locator("input[type=file]").set_input_files(
        {"name": "register.csv", "mimeType": "text/csv", "buffer": REGISTER}
    )
    upload.get_by_role("button", name="Kiểm tra và xem trước").click()
    expect(page.locator("#import-summary")).to_contain_text("thêm 1 mục, thay thế 1 mục")
    expect(page.locator("#import-preview tbody tr")).to_have_count(2)
    shot(page, "h20b-5-import-preview-vi")
    page.get_by_role("button", name="Áp dụng").click()
    expect(page.locator("#imported")).to_be_visible()
    expect(page.locator("#register")).to_contain_text("V2.800.0000000.1")
    expect(page.locator("#register")).to_contain_text("QCVN 11:2026/BCA")
    page.get_by_role("button", name="EN").click()
    expect(page.locator("#register")).to_contain_text("any firmware")
    shot(page, "h20b-6-register-en")
