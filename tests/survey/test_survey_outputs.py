"""What a survey gives people: the command line, the dashboard pages under tenancy, the notices
in both languages with the finding catalogue's texts, and the report to the province read back
(Word through python-docx, PDF through pdftotext, the evidence CSV)."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import docx
import pytest
from sqlalchemy import select

from protocol.keys import generate_private_key
from server.api import create_app
from server.cli import main
from server.domain.scope import CLI
from server.domain.survey import Surveys
from server.storage import Repository
from server.storage.firmware_models import CommandRecord
from server.web.i18n import Catalogue
from tests.server.conftest import make_config, serve
from tests.survey.conftest import Providers, host, part, scoped
from tests.web.test_rbac import login

MAP = (
    "prefix,subscriber_id,name,contact,province,district,valid_from\r\n"
    "198.51.100.0/26,SUB-A,Nguyễn Văn A,a@example.vn,Bắc Ninh,Từ Sơn,2026-01-01\r\n"
    "198.51.100.64/26,SUB-B,Trần Thị B,b@example.vn,Bắc Ninh,Tiên Du,2026-01-01\r\n"
).encode()
FOUND = [
    host("198.51.100.5", ("survey.telnet_open", 23), ("survey.stream_no_auth", 554),
         vendor="Dahua", model="IPC-HFW1230S"),
    host("198.51.100.70", ("survey.onvif_no_auth", 80), vendor="Hikvision"),
    host("198.51.100.200", ("survey.dvrip_port_open", 37777)),  # nobody's
]  # fmt: skip


def finish(repo: Repository, survey_id: int) -> None:
    """The survey agent's results for every shard of the survey (as it would send them)."""
    with repo.engine.connect() as conn:
        commands = conn.execute(select(CommandRecord.__table__)).all()
    collector = Surveys(scoped(repo, CLI))
    for command in commands:
        if command.params["survey_id"] == str(survey_id):
            result = part(command.agent_id, command, FOUND, at=datetime.now(UTC))
            assert collector.record(command.agent_id, result)


def test_the_command_line_runs_a_survey_to_its_report(
    repo: Repository, providers: Providers, db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base = ["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}", "survey"]
    assert main([*base, "prefix", "add", "--org", "ISP X", "198.51.100.0/24"]) == 0
    assert main([*base, "prefix", "add", "--org", "ISP Y", "198.51.100.128/25"]) == 1
    assert "prefix_overlap_other" in capsys.readouterr().err
    source = tmp_path / "map.csv"
    source.write_bytes(MAP + b"203.0.113.0/24,SUB-Z,,,,,2026-01-01\r\n")
    assert main([*base, "subscribers", "--org", "ISP X", str(source)]) == 1
    assert "line 4: outside" in capsys.readouterr().err
    source.write_bytes(MAP)
    assert main([*base, "subscribers", "--org", "ISP X", str(source)]) == 0
    assert "preview: 2 added" in capsys.readouterr().out
    assert main([*base, "subscribers", "--org", "ISP X", str(source), "--apply"]) == 0
    assert main([*base, "start", "--org", "ISP X", "--agent", "survey-x1"]) == 0
    survey_id = int(capsys.readouterr().out.split("survey ")[-1].split()[0])
    finish(repo, survey_id)
    assert main([*base, "show", str(survey_id)]) == 0
    shown = capsys.readouterr().out
    assert "done\t256/256 (100%)" in shown
    assert "survey-x1: 256/256 in 1 shards" in shown
    assert main([*base, "notices", str(survey_id)]) == 0
    notices = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(n[1], n[2], n[3]) for n in notices] == [("SUB-A", "open", "2"), ("SUB-B", "open", "1")]
    assert main([*base, "notice", notices[0][0], "--state", "sent"]) == 0
    assert main([*base, "notice", notices[0][0], "--text", "--lang", "vi"]) == 0
    text = capsys.readouterr().out
    telnet = Catalogue.load().finding("vi", "survey.telnet_open", {"port": 23}, vendor="Dahua")
    assert "Kính gửi Nguyễn Văn A," in text
    assert f"- 198.51.100.5 cổng 23: {telnet.title}" in text
    assert telnet.advice is not None
    assert telnet.advice.splitlines()[0] in text

    out = tmp_path / "report.docx"
    assert main([*base, "report", str(survey_id), "--format", "docx", "-o", str(out),
                 "--addressee", "Sở Khoa học và Công nghệ tỉnh Bắc Ninh"]) == 0  # fmt: skip
    document = docx.Document(str(out))
    paragraphs = "\n".join(p.text for p in document.paragraphs)
    assert "Kết quả rà soát camera giám sát không an toàn" in paragraphs
    assert "Kính gửi: Sở Khoa học và Công nghệ tỉnh Bắc Ninh" in paragraphs
    assert "Số địa chỉ đã rà soát: 256 (thuộc 1 dải địa chỉ)." in paragraphs
    assert "Số thiết bị có phát hiện: 3; tổng số phát hiện: 4." in paragraphs
    assert "Số thuê bao đã được thông báo: 1/2." in paragraphs
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in document.tables[2:]]
    by_area, by_vendor, by_kind, evidence = tables
    assert by_area[1:] == [
        ["1", "Bắc Ninh", "Tiên Du", "1", "1", "0", "0"],
        ["2", "Bắc Ninh", "Từ Sơn", "1", "2", "1", "0"],
        ["3", "Chưa xác định thuê bao", "", "1", "1", "0", "0"],
        ["Tổng cộng", "", "", "3", "4", "1", "0"],
    ]
    assert sorted(by_vendor[1:]) == [["Dahua", "1"], ["Hikvision", "1"], ["không rõ", "1"]]
    assert [telnet.title, "1"] in by_kind
    assert evidence[1][:5] == ["198.51.100.200", "37777", "survey.dvrip_port_open", "",
                               "Chưa xác định thuê bao"]  # fmt: skip

    out = tmp_path / "evidence.csv"
    assert main([*base, "report", str(survey_id), "--format", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [(r["address"], r["port"], r["subscriber_id"]) for r in rows] == [
        ("198.51.100.200", "37777", ""), ("198.51.100.5", "23", "SUB-A"),
        ("198.51.100.5", "554", "SUB-A"), ("198.51.100.70", "80", "SUB-B"),
    ]  # fmt: skip
    if shutil.which("pdftotext") is not None:
        out = tmp_path / "report.pdf"
        assert main([*base, "report", str(survey_id), "--lang", "en", "-o", str(out)]) == 0
        text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip
        assert "Results of the survey for insecure surveillance cameras" in text
        assert "Devices with findings: 3; findings in all: 4." in text
        assert "Figures by province and district" in text


def test_the_pages_show_a_survey_inside_the_provider_only(
    repo: Repository, providers: Providers, db_url: str
) -> None:
    x = Surveys(scoped(repo, CLI))
    x.declare_prefix(providers.isp_x, "198.51.100.0/24")
    from server.domain.notices import Notices  # noqa: PLC0415

    Notices(scoped(repo, CLI)).apply_map(providers.isp_x, MAP)
    survey_id = x.start(providers.isp_x, ["survey-x1"])
    finish(repo, survey_id)
    app = create_app(make_config(db_url), repo, command_key=generate_private_key())
    with serve(app) as server:
        csrf = login(server, "operator-x")
        listing = server.get("/surveys")
        assert listing.status_code == 200
        assert f'href="/surveys/{survey_id}"' in listing.text
        assert "<td>198.51.100.0/24</td>" in listing.text
        page = server.get(f"/surveys/{survey_id}")
        assert "survey-x1" in page.text
        assert "256/256" in page.text
        notice_id = int(page.text.split('href="/surveys/notices/')[1].split('"')[0])
        notice = server.get(f"/surveys/notices/{notice_id}")
        assert 'id="notice-vi"' in notice.text
        assert 'id="notice-en"' in notice.text
        moved = server.post(f"/surveys/notices/{notice_id}", data={"csrf": csrf, "state": "sent"})
        assert moved.status_code == 303
        assert "đã gửi" in server.get(f"/surveys/{survey_id}").text
        report = server.get(f"/surveys/{survey_id}/report", params={"format": "docx"})
        assert report.status_code == 200
        refused = server.post("/surveys/prefixes", data={"csrf": csrf, "org": providers.isp_x,
                                                          "prefix": "127.0.0.0/8"})  # fmt: skip
        assert refused.status_code == 403  # an operator declares nothing
    with serve(app) as server:
        csrf = login(server, "admin-y")
        for path in (f"/surveys/{survey_id}", f"/surveys/notices/{notice_id}",
                     f"/surveys/{survey_id}/report"):  # fmt: skip
            assert server.get(path).status_code == 404, path
        other = server.get("/surveys").text
        assert "<td>198.51.100.0/24</td>" not in other
        assert "ISP X" not in other
        moved = server.post(f"/surveys/notices/{notice_id}", data={"csrf": csrf, "state": "fixed"})
        assert moved.status_code == 404
        bad = server.post("/surveys/prefixes", data={"csrf": csrf, "org": providers.isp_y,
                                                      "prefix": "127.0.0.0/8"})  # fmt: skip
        assert bad.status_code == 422
        assert "loopback" in bad.text
    with serve(app) as server:
        csrf = login(server, "admin-x")
        form = {"csrf": csrf, "org": providers.isp_x, "every_days": 7}
        assert server.post("/surveys/schedule", data=form).status_code == 303
        assert "survey-x1, survey-x2" in server.get("/surveys").text
    # the collector's scheduler starts what is due, once: a survey of the provider is running
    (started,) = Surveys(scoped(repo, CLI)).start_due()
    assert Surveys(scoped(repo, CLI)).start_due() == []
    assert Surveys(scoped(repo, CLI)).survey(started).state == "running"
