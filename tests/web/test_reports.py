"""Compliance reports: figures, CSV for spreadsheets, a PDF with Vietnamese text, the CLI."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from protocol import Finding
from server.alerts.tracker import sync
from server.cli import main
from server.domain.scope import CLI
from server.reports import compliance as reports
from server.storage import Repository
from server.web.i18n import Catalogue
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.web.conftest import World, bearer, camera, process, report_with, scoped_as

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
KEV = Finding(
    code="fw.known_exploited",
    check="firmware-advisories",
    status="fail",
    severity="critical",
    controls=["FW-01", "FW-02"],
    evidence={"cve": "CVE-2021-36260", "kev_date_added": "2022-01-10", "firmware": "V5.4.0",
              "remedy": "upgrade to V5.5.800"},
)  # fmt: skip


def period() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=30)).isoformat(), today.isoformat()


def add_kev_camera(repo: Repository, db_url: str) -> None:
    """A new agent of site-a reports a camera of an unregistered model with a KEV finding."""
    sim = SimAgent("agent-a4", "site-a")
    enroll(repo, sim)
    process(repo, db_url, [report_with(sim, [camera("cam-kev", [KEV], "Hikvision", "DS-7608")])])


def test_report_figures_csv_and_pdf(repo: Repository, db_url: str, world: World) -> None:
    root = scoped_as(repo, CLI)
    start, end = period()
    data = root.report_data(
        world.province, datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date()
    )
    report = reports.build(data)
    assert [r.name for r in report.rows] == ["Agency A", "Agency B"]
    t = report.total
    assert (t.systems, t.approved, t.by_level, t.plan_full, t.plan_partial) == (2, 1, {3: 1}, 1, 1)
    # cam-2 of each agent did not answer: not audited, so not checked, whatever its agent sent
    assert (t.devices, t.checked, t.not_audited) == (6, 4, 2)
    assert t.not_audited_by_state == {"unreachable": 2}
    assert (t.critical_opened, t.critical_closed, t.critical_open) == (6, 0, 6)
    assert (t.kev, t.uncertified) == (0, 0)  # the world's model is certified
    catalogue = Catalogue.load()
    lines = reports.summary(report, catalogue, "en")
    assert lines[0] == "1/2 information systems approved, 1 at level 3"
    vi = reports.summary(report, catalogue, "vi")
    assert vi[0] == "1/2 hệ thống thông tin đã được phê duyệt cấp độ, 1 hệ thống cấp độ 3"

    body = reports.to_csv(report, catalogue, "vi")
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheet tools
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    header = next(r for r in rows if r and r[0] == "Đơn vị")
    total = next(r for r in rows if r and r[0] == "Tổng cộng")
    assert dict(zip(header, total, strict=True))["Camera"] == "6"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_pdf_renders_vietnamese_and_the_api_serves_it(
    server: httpx.Client, repo: Repository, db_url: str, world: World, tmp_path: Path
) -> None:
    add_kev_camera(repo, db_url)
    sync(repo.engine, datetime.now(UTC), timedelta(minutes=15))
    start, end = period()
    query = f"org={world.province}&from={start}&to={end}"
    r = server.get(f"/api/v1/reports/compliance?{query}&format=pdf&lang=vi",
                   headers=bearer(world, "root"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(r.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Báo cáo tuân thủ an toàn thông tin camera" in text
    assert "1/2 hệ thống thông tin đã được phê duyệt cấp độ, 1 hệ thống cấp độ 3" in text
    assert "1 camera bị ảnh hưởng bởi lỗ hổng đã bị khai thác (CISA KEV)" in text
    assert "Agency A" in text
    assert "Agency B" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf),
         str(ARTIFACTS / "report-vi")],
        check=True,
    )  # fmt: skip
    png = next(ARTIFACTS.glob("report-vi*.png"))
    assert png.read_bytes().startswith(b"\x89PNG")

    # an agency's viewer gets its own subtree, and not the province's
    viewer = bearer(world, "viewer-a")
    own = server.get(f"/api/v1/reports/compliance?org={world.agency_a}&from={start}&to={end}"
                     "&format=csv&lang=en", headers=viewer)  # fmt: skip
    assert own.status_code == 200
    assert "Agency B" not in own.text
    assert "1 cameras affected by known exploited" in own.content.decode("utf-8-sig")
    assert server.get(f"/api/v1/reports/compliance?{query}", headers=viewer).status_code == 404

    # the KEV view lists the camera under its CVE
    kev = server.get("/api/v1/kev", headers=viewer).json()
    assert [(g["cve"], [d["camera_id"] for d in g["devices"]]) for g in kev] == [
        ("CVE-2021-36260", ["cam-kev"])
    ]
    devices = {
        d["camera_id"]: d["inv02"] for d in server.get("/api/v1/devices", headers=viewer).json()
    }
    assert devices["cam-kev"] == "uncertified"
    assert devices["cam-0"] == "certified"


def test_cli_report(repo: Repository, db_url: str, world: World, tmp_path: Path) -> None:
    start, end = period()
    out = tmp_path / "r.csv"
    code = main(["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}", "report",
                 "--org", str(world.agency_b), "--from", start, "--to", end, "--format", "csv",
                 "--lang", "en", "--out", str(out)])  # fmt: skip
    assert code == 0
    text = out.read_text("utf-8-sig")
    assert "Organisation: Agency B" in text
    assert "Agency A" not in text
