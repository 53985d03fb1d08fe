"""The recorder pages: a recorder's channels (from its ``rec.channel`` findings) go through the
real ingest into SQLite and PostgreSQL, each channel linked to the camera the same agent
reported at its address; read over HTTP in both languages, scoped to the viewer's agency."""

from __future__ import annotations

import httpx
import msgspec

from protocol import Finding
from protocol.messages import EvidenceValue
from server.storage import Repository
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, camera, process, report_with
from tests.web.test_finding_pages import shown
from tests.web.test_rbac import login


def channel(number: int, address: str, state: str) -> Finding:
    evidence: dict[str, EvidenceValue] = {"channel": number, "address": address}
    evidence |= {"model": "DS-2CD2143G2-I", "serial": f"SN{number:04d}", "state": state}
    return Finding(
        code="rec.channel",
        check="recorder",
        status="pass",
        severity="info",
        controls=["INV-01"],
        evidence=evidence,
    )


def test_a_recorder_page_lists_its_channels_and_links_their_cameras(
    repo: Repository, db_url: str, world: World, server: httpx.Client
) -> None:
    del world  # the organisations, users and sites of the fixture
    sim = SimAgent("agent-a7", "site-a")
    enroll(repo, sim)
    offline = Finding(
        code="rec.channel_offline",
        check="recorder",
        status="fail",
        severity="medium",
        controls=["REC-03"],
        evidence=dict(channel(2, "10.99.0.62", "offline").evidence),
    )
    exposed = Finding(
        code="rec.passwords_exposed",
        check="recorder",
        status="fail",
        severity="critical",
        controls=["REC-01"],
        evidence={"count": 2, "channels": 2},
    )
    nvr = msgspec.structs.replace(
        camera("nvr", [channel(1, "10.99.0.61", "online"), channel(2, "10.99.0.62", "offline")]),
        address="10.99.0.60",
    )
    nvr = msgspec.structs.replace(nvr, findings=[*nvr.findings, offline, exposed])
    cam1 = msgspec.structs.replace(camera("nvr-ch01", []), address="10.99.0.61")
    process(repo, db_url, [report_with(sim, [nvr, cam1])])
    catalogue = Catalogue.load()
    login(server, "viewer-a")
    for lang in ("vi", "en"):
        server.cookies.set("cw_lang", lang)
        listing = shown(server.get("/recorders").text)
        assert "agent-a7/nvr" in listing
        assert "agent-a7/nvr-ch01" not in listing  # a camera is no recorder
        summary = catalogue.t(lang, "recorders.summary", recorders=1, channels=2, offline=1)
        assert summary in listing
        page = server.get("/recorders/agent-a7/nvr")
        assert page.status_code == 200
        rows = page.text.split('id="channels"')[1].split("</table>")[0]
        assert rows.count('class="channel-') == 2
        assert 'href="/cameras/agent-a7/nvr-ch01"' in rows
        text = shown(page.text)
        assert catalogue.t(lang, "recorders.state_offline") in text
        assert catalogue.t(lang, "recorders.not_reported") in text  # ch 2: nothing there
        assert catalogue.t(lang, "recorders.passwords_exposed") in text
        assert "{" not in text
    assert server.get("/recorders/agent-a7/nvr-ch01").status_code == 404  # not a recorder
    login(server, "admin-b")  # another agency: neither listed nor readable
    assert "agent-a7/nvr" not in server.get("/recorders").text
    assert server.get("/recorders/agent-a7/nvr").status_code == 404
