"""The control catalogue: every control the checks answer maps to the regulation in force by
group (no clause is claimed), keeps the replaced regulation's mapping, and names its sources."""

from __future__ import annotations

import httpx

from agent.checks import SITE_CHECKS, build_checks
from server.domain.controls import CONTROLS, GROUPS, SOURCES
from server.domain.findings import REUSE_CONTROLS
from server.web.i18n import LANGS, Catalogue
from tests.web.conftest import World, bearer


def test_every_checked_control_is_in_the_catalogue() -> None:
    answered = {c for check in build_checks() for c in check.controls}
    answered |= {c for site_check in SITE_CHECKS for c in site_check.controls}
    assert answered | set(REUSE_CONTROLS) <= set(CONTROLS)


def test_every_mapping_is_a_group_with_its_sources() -> None:
    catalogue = Catalogue.load()
    for control in CONTROLS.values():
        assert [m.group for m in control.in_force] == [m.group for m in control.replaced]
        for m in (*control.in_force, *control.replaced):
            assert m.clause is None  # no public text gives the clauses: none is claimed
            assert m.group in GROUPS
            assert m.sources
            assert set(m.sources) <= set(SOURCES)
        for m in control.in_force:
            assert m.regulation == "QCVN 11:2026/BCA"
            # only the groups the public summary names are "named"
            assert m.basis == ("named" if m.group <= 4 else "assumed")
        assert all(m.regulation == "QCVN 135:2024/BTTTT" for m in control.replaced)
    for group in GROUPS:
        for lang in LANGS:
            assert catalogue.t(lang, f"qcvn.group.{group}") != f"qcvn.group.{group}"
    assert [m.group for m in CONTROLS["AUTH-01"].in_force] == [1]
    assert [m.group for m in CONTROLS["INV-02"].in_force] == [0]  # the certificate itself


def test_the_api_serves_the_catalogue(server: httpx.Client, world: World) -> None:
    r = server.get("/api/v1/controls", headers=bearer(world, "viewer-a"))
    assert r.status_code == 200
    body = r.json()
    assert body["regulation_in_force"] == "QCVN 11:2026/BCA"
    assert body["sources"]["bd-qcvn11"]["url"].startswith("https://")
    fw01 = next(c for c in body["controls"] if c["id"] == "FW-01")
    assert fw01["in_force"][0] | {"sources": []} == {
        "regulation": "QCVN 11:2026/BCA", "group": 2, "clause": None, "basis": "named",
        "sources": [],
    }  # fmt: skip
