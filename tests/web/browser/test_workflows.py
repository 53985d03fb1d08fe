"""The operator's workflows clicked through in the browser: alerts acknowledged, silenced and
assigned with their history; destructive actions confirmed on a second page (and cancelled);
a rollout created from a camera's page and halted; a password rotation queued."""

from __future__ import annotations

import json

from joserfc.jwk import OKPKey
from playwright.sync_api import expect

from tests.web.browser.conftest import Site, looks_finished, shot


def test_alert_acknowledged_silenced_and_assigned(site: Site) -> None:
    page = site.open("operator-a", "en", "phone")
    page.goto("/alerts")
    row = page.locator("#alerts tbody tr").filter(has_text="agent-a1/cam-0").first
    alert_id = row.get_attribute("id")
    assert alert_id is not None
    row.locator("details.alert-actions summary").click()
    row.get_by_role("button", name="Acknowledge").click()
    row = page.locator(f"#{alert_id}")
    expect(row.locator(".ack")).to_contain_text("Acknowledged by operator-a")
    row.locator("details.alert-actions summary").click()
    row.locator("select[name=hours]").select_option("4")
    row.get_by_role("button", name="Silence", exact=True).click()
    row = page.locator(f"#{alert_id}")
    expect(row.locator(".silenced")).to_contain_text("Silenced until")
    row.locator("details.alert-actions summary").click()
    row.locator("select[name=assignee]").select_option(label="admin-a")
    row.get_by_role("button", name="Assign", exact=True).click()
    row = page.locator(f"#{alert_id}")
    expect(row.locator(".assignee")).to_have_text("Assigned to admin-a")
    row.locator("details.alert-history summary").click()
    history = row.locator("details.alert-history li")
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text("operator-a: Alert acknowledged")
    expect(history.nth(2)).to_contain_text("Alert assigned → admin-a")
    looks_finished(page)
    shot(page, "workflow-alerts-en-phone")
    page.goto("/audit")  # an operator does not read the audit log: the administrator does
    admin = site.open("admin-a", "vi")
    admin.goto("/audit")
    expect(admin.locator("#audit")).to_contain_text("Giao cảnh báo")
    page.context.close()
    admin.context.close()


def test_revoke_asks_first_and_cancel_keeps_the_agent(site: Site) -> None:
    page = site.open("admin-a", "vi", "phone")
    page.goto("/tokens")
    page.locator("input[name=name]").fill("to be revoked")
    page.locator("form[action='/tokens'] button[type=submit]").click()
    row = page.locator("tr", has_text="to be revoked")
    row.get_by_role("button", name="Thu hồi").click()
    expect(page.locator("#question")).to_contain_text("Thu hồi mã API to be revoked?")
    looks_finished(page)
    shot(page, "workflow-confirm-vi-phone")
    page.get_by_role("link", name="Hủy").click()
    expect(page).to_have_url(f"{site.base}/tokens")
    row = page.locator("tr", has_text="to be revoked")
    row.get_by_role("button", name="Thu hồi").click()
    page.get_by_role("button", name="Đồng ý, thực hiện").click()
    expect(page).to_have_url(f"{site.base}/tokens")
    expect(page.locator("tr", has_text="to be revoked")).not_to_contain_text("Thu hồi")
    # an agent: the question names it, and nothing happens before the second step
    page.goto("/agents")
    page.locator("#agent-agent-a2").get_by_role("button", name="Thu hồi").click()
    expect(page.locator("#question")).to_contain_text("agent-a2")
    page.goto("/agents")
    expect(page.locator("#agent-agent-a2")).not_to_contain_text("đã thu hồi")
    page.context.close()


def test_rollout_created_from_a_camera_then_halted(site: Site) -> None:
    page = site.open("operator-a", "en")
    page.goto("/cameras/agent-a1/cam-1")
    page.locator("#schedule-firmware").click()
    expect(page.locator("select[name=site]")).to_have_value("site-a")
    page.locator("input[name=name]").fill("from the camera page")
    page.locator("input[name=canary_count]").fill("1")
    looks_finished(page)
    page.get_by_role("button", name="Create the rollout").click()
    expect(page.get_by_role("heading", name="from the camera page")).to_be_visible()
    page.get_by_role("button", name="Halt").click()
    expect(page.locator("#question")).to_contain_text("Halt the rollout from the camera page?")
    page.get_by_role("button", name="Yes, go ahead").click()
    expect(page.locator("body")).to_contain_text("halted")
    shot(page, "workflow-rollout-halted-en")
    page.context.close()


def test_password_rotation_from_the_camera_page(site: Site) -> None:
    escrow = OKPKey.generate_key("X25519").as_dict(private=False)
    page = site.open("operator-a", "vi", "phone")
    page.goto("/cameras/agent-a1/cam-2")
    page.locator("#actions summary").click()
    page.locator("#rotate-form textarea[name=escrow_jwk]").fill(json.dumps(escrow))
    page.locator("#rotate-form button[type=submit]").click()
    expect(page.locator("#queued")).to_contain_text("Lệnh đổi mật khẩu đã được xếp lịch")
    looks_finished(page)
    shot(page, "workflow-rotation-vi-phone")
    page.context.close()
