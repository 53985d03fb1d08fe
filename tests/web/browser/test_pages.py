"""Every dashboard page, in both languages, at desktop and phone widths: it renders, it does not
scroll sideways, and it shows no raw code or placeholder. Screenshots are kept as artifacts."""

from __future__ import annotations

import pytest

from tests.web.browser.conftest import Site, looks_finished, shot

PAGES = (
    "/",
    "/cameras",
    "/cameras/agent-a1/cam-1",
    "/findings",
    "/kev",
    "/alerts",
    "/compliance",
    "/reports",
    "/rollouts",
    "/rollouts/new",
    "/agents",
    "/models",
    "/orgs",
    "/users",
    "/audit",
    "/tokens",
)


def _name(path: str) -> str:
    return path.strip("/").replace("/", "-") or "overview"


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page(site: Site, lang: str, width: str) -> None:
    page = site.open("root", lang, width)
    rollout = f"/rollouts/{site.world.firmware.rollout_a}"
    failures: list[str] = []
    for path in (*PAGES, rollout):
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 200, path
        shot(page, f"page-{_name(path)}-{lang}-{width}")
        try:
            looks_finished(page)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    page.context.close()
    assert not failures, "\n".join(failures)
