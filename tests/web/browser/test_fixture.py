"""The shared browser fixture itself: sign-in per context, language per open, the checks."""

from __future__ import annotations

from tests.web.browser.conftest import Site, looks_finished, raw_codes, shot


def test_raw_code_pattern() -> None:
    text = "svc.telnet_open, status.fail and svc.telnet_new"
    assert raw_codes(text) == ["status.fail", "svc.telnet_new", "svc.telnet_open"]
    assert raw_codes("10.99.0.50, fw.bin, style.css, version 1.2.3, Tài khoản: admin") == []


def test_a_page_in_each_language_and_width(site: Site) -> None:
    for lang, width in (("vi", "phone"), ("en", "desktop")):
        page = site.open("operator-a", lang, width)
        page.goto("/")
        looks_finished(page)
        shot(page, f"fixture-overview-{lang}-{width}")
        page.context.close()
