"""One headless Chromium and one seeded collector for the whole browser suite.

The browser (Debian's Chromium, driven by Playwright) and the two-agency world of
``tests.web.conftest`` on a SQLite file, served on a loopback port, are made once per test
session: each test opens its own browser context (cookies apart) with ``Site.open``.
``looks_finished`` is what every page must pass at every width and in both languages: no
horizontal page scroll, no catalogue key, placeholder or escape shown instead of a text.
Screenshots go to ``test-artifacts/web/`` (ignored by git), kept as test artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from protocol.keys import generate_private_key
from server.api import create_app
from server.storage import Repository
from server.web.firmware import catalogue as firmware_catalogue
from server.web.i18n import LANGS, Catalogue
from tests.server.conftest import make_config, serve
from tests.web.conftest import PASSWORD, World, seed_world

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "web"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": 1280, "phone": 390}
HEIGHT = {"desktop": 800, "phone": 844}
_WORDISH = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|\\u[0-9a-fA-F]{4}|\bNone\b|\bnan\b")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs the browser: marked integration, skipped without Chromium."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(
                pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
            )


def catalogue_keys() -> frozenset[str]:
    """Every key a page could show raw: interface keys, finding codes and evidence keys."""
    keys: set[str] = set()
    for cat in (Catalogue.load(), firmware_catalogue()):
        for lang in LANGS:
            keys |= cat.ui_keys(lang) | cat.finding_codes(lang) | cat.evidence_keys(lang)
    return frozenset(k for k in keys if "." in k)


_KEYS = catalogue_keys()
_FAMILIES = frozenset(c.split(".", 1)[0] for c in Catalogue.load().finding_codes("en"))


def raw_codes(text: str) -> list[str]:
    """Dotted words in ``text`` that are catalogue keys (``status.fail``), or codes of a finding
    family (``svc.telnet_new``; a file name such as ``fw.bin`` is not one)."""
    return sorted(
        {
            w
            for w in _WORDISH.findall(text)
            if w in _KEYS or ("_" in w and w.split(".", 1)[0] in _FAMILIES)
        }
    )


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def looks_finished(page: Page) -> None:
    """The page as a reader sees it: no sideways scroll, no raw code or placeholder."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url}: {overflow} px of horizontal scroll"
    text = page.locator("body").inner_text()
    codes = raw_codes(text)
    assert codes == [], f"{page.url}: raw codes on screen: {codes}"
    holes = _PLACEHOLDER.findall(text)
    assert holes == [], f"{page.url}: placeholders on screen: {holes}"


@dataclass(frozen=True, slots=True)
class Site:
    """The seeded collector as the browser reaches it."""

    base: str
    world: World
    repo: Repository
    browser: Browser

    def open(self, username: str, lang: str = "vi", width: str = "desktop") -> Page:
        """A fresh browser context signed in as ``username``, in ``lang``, at ``width``.

        The language is the user's own setting (kept on the server): set here on every open.
        """
        context = self.browser.new_context(
            base_url=self.base,
            viewport={"width": WIDTHS[width], "height": HEIGHT[width]},
            locale="vi-VN" if lang == "vi" else "en-GB",
        )
        page = context.new_page()
        page.goto("/login")
        page.locator("input[name=username]").fill(username)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form[action='/login'] button[type=submit]").click()
        expect(page.locator("form.logout")).to_be_attached()
        page.locator(f"form.lang button[value={lang}]").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        return page


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def site(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser-site")
    db = f"sqlite:///{root / 'collector.db'}"
    repo = Repository.open(db)
    repo.migrate()
    try:
        world = seed_world(repo, db, root / "state")
        config = msgspec.structs.replace(make_config(db), state_dir=str(world.firmware.state_dir))
        with serve(create_app(config, repo, command_key=generate_private_key())) as client:
            yield Site(str(client.base_url).rstrip("/"), world, repo, chromium)
    finally:
        repo.close()
