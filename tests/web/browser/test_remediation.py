"""Fix, clicked through: from a finding on a camera's page to the plan (the dry run), stored,
approved on the confirmation page, and its progress page; in English on a desktop and in
Vietnamese on a phone."""

from __future__ import annotations

import json

from joserfc.jwk import OKPKey
from playwright.sync_api import expect

from tests.web.browser.conftest import Site, looks_finished, shot
from tests.web.conftest import TELNET_OPEN, camera, process, report_with


def test_fix_from_a_finding_then_plan_and_approve(site: Site) -> None:
    # agency B's agent reports a camera with Telnet open (agency A's pages stay as seeded)
    db = site.repo.engine.url.render_as_string(hide_password=False)
    sim = site.world.sims["agent-b1"]
    process(site.repo, db, [report_with(sim, [camera("cam-fix", [TELNET_OPEN])])])
    escrow = OKPKey.generate_key("X25519").as_dict(private=False)

    page = site.open("admin-b", "en")
    page.goto("/cameras/agent-b1/cam-fix")
    page.locator("#camera-findings a.fix").first.click()
    expect(page.locator("#planned")).to_contain_text("Telnet: off")
    expect(page.locator("#to-change")).to_have_text("1 camera to change")
    looks_finished(page)
    shot(page, "remediation-plan-en")
    page.locator("#plan-form input[name=name]").fill("telnet off")
    page.locator("#plan-form textarea[name=escrow_jwk]").fill(json.dumps(escrow))
    page.locator("#plan-form button[type=submit]").click()
    expect(page.locator("#phase")).to_have_text("awaiting approval")
    page.get_by_role("button", name="Approve the plan").click()
    expect(page.locator("#question")).to_contain_text("Approve the plan telnet off?")
    page.get_by_role("button", name="Yes, go ahead").click()
    expect(page.locator("#phase")).to_have_text("canary")
    expect(page.locator("#items")).to_contain_text("Telnet: off")
    looks_finished(page)
    shot(page, "remediation-approved-en")
    page.context.close()

    phone = site.open("admin-b", "vi", "phone")
    phone.goto("/remediation")
    phone.get_by_role("link", name="telnet off").click()
    expect(phone.locator("#phase")).to_have_text("thử nghiệm")
    looks_finished(phone)
    phone.goto("/remediation/new?site=site-b")
    expect(phone.locator("#planned")).to_contain_text("Telnet: tắt")
    looks_finished(phone)
    shot(phone, "remediation-plan-vi-phone")
    phone.context.close()
