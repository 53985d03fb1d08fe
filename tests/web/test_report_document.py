"""The report upward: the Decree 30/2020/NĐ-CP document read back from its DOCX (python-docx)
and its PDF (pdftotext), the summary CSV, and the letterhead given by the officer."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import docx
import httpx
import pytest

from tests.web.conftest import World, bearer
from tests.web.test_reports import period

Params = dict[str, str | int | list[str]]
HEAD: Params = {
    "issuer": "Sở Khoa học và Công nghệ",
    "governing": "UBND tỉnh P",
    "number": "125/BC-SKHCN",
    "place": "Hà Giang",
    "addressee": "Bộ Công an",
    "recipient": ["Như trên", "UBND tỉnh (để b/c)"],
    "signer_title": "KT. Giám đốc",
    "signer_name": "Nguyễn Văn A",
}
# what the annex says of the world's systems: (system, agency, level, decision, cameras,
# compliant, not fully audited); cam-2 of each agent did not answer
ANNEX = [
    ["1", "System A", "Agency A", "3", "123/QD-A, 01/05/2024", "3", "0", "1"],
    ["2", "System B", "Agency B", "2", "", "3", "0", "1"],
]


def fetch(
    server: httpx.Client, world: World, fmt: str, **extra: str | int | list[str]
) -> httpx.Response:
    start, end = period()
    params: Params = {"org": world.province, "from": start, "to": end, "format": fmt, "lang": "vi"}
    r = server.get(
        "/api/v1/reports/compliance", params={**params, **extra}, headers=bearer(world, "root")
    )
    assert r.status_code == 200, r.text
    return r


def test_the_docx_is_the_administrative_document(server: httpx.Client, world: World) -> None:
    r = fetch(server, world, "docx", **HEAD)
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert r.headers["content-disposition"].endswith('.docx"')
    doc = docx.Document(io.BytesIO(r.content))
    left, right = (cell.text.splitlines() for cell in doc.tables[0].rows[0].cells)
    assert left == ["UBND TỈNH P", "SỞ KHOA HỌC VÀ CÔNG NGHỆ", "Số: 125/BC-SKHCN"]
    assert right[:2] == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    assert right[2].startswith("Hà Giang, ngày ")
    paragraphs = [p.text for p in doc.paragraphs]
    assert paragraphs[:2] == [
        "BÁO CÁO",
        "Kết quả bảo đảm an toàn thông tin đối với camera giám sát từ ngày "
        f"{_vn(period()[0])} đến ngày {_vn(period()[1])}",
    ]
    assert "Kính gửi: Bộ Công an" in paragraphs
    assert "- 1/2 hệ thống thông tin đã được phê duyệt cấp độ; 1 hệ thống cấp độ 3" in paragraphs
    recipients, signer = (c.text for c in doc.tables[1].rows[0].cells)
    assert recipients.splitlines() == ["Nơi nhận:", "- Như trên;", "- UBND tỉnh (để b/c);",
                                       "- Lưu: VT."]  # fmt: skip
    assert signer.splitlines()[0] == "KT. GIÁM ĐỐC"
    assert signer.splitlines()[-1] == "Nguyễn Văn A"
    annex = doc.tables[2]
    assert annex.rows[0].cells[0].text == "STT"
    assert [[c.text for c in row.cells][:8] for row in annex.rows[1:]] == ANNEX
    assert "Phụ lục".upper() in paragraphs
    assert len(doc.inline_shapes) == 1  # the chart


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_the_pdf_reads_back_title_block_and_annex(
    server: httpx.Client, world: World, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(fetch(server, world, "pdf", **HEAD).content)
    # the letterhead's two columns read apart (points from the page's top left corner)
    issuer = pdf_text(pdf, "-f", "1", "-l", "1", "-x", "0", "-y", "0", "-W", "265", "-H", "150")
    assert issuer == "UBND TỈNH P SỞ KHOA HỌC VÀ CÔNG NGHỆ Số: 125/BC-SKHCN"
    motto = pdf_text(pdf, "-f", "1", "-l", "1", "-x", "265", "-y", "0", "-W", "330", "-H", "150")
    assert motto.startswith("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM Độc lập - Tự do - Hạnh phúc "
                            "Hà Giang, ngày ")  # fmt: skip
    text = pdf_text(pdf)
    for part in ("BÁO CÁO", "Kính gửi: Bộ Công an", "Nơi nhận:", "- Như trên;", "KT. GIÁM ĐỐC",
                 "Nguyễn Văn A", "PHỤ LỤC", "(Kèm theo Báo cáo số 125/BC-SKHCN ngày"):  # fmt: skip
        assert part in text, part
    # the annex's rows, each on its line of the laid-out text
    lines = [
        " ".join(line.split())
        for line in subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
        ).stdout.splitlines()
    ]
    for row in ANNEX:
        assert any(line.startswith(" ".join(c for c in row if c)) for line in lines), row


def pdf_text(pdf: Path, *options: str) -> str:
    """The PDF's text (of the region ``options`` crop), whitespace collapsed."""
    out = subprocess.run(
        ["pdftotext", *options, str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    return " ".join(out.split())


def test_left_out_letterhead_is_dots_and_english_is_english(
    server: httpx.Client, world: World
) -> None:
    doc = docx.Document(io.BytesIO(fetch(server, world, "docx", lang="en").content))
    left = doc.tables[0].rows[0].cells[0].text.splitlines()
    assert left == ["", "PROVINCE P", "No. …………"]  # no unit above the province
    right = doc.tables[0].rows[0].cells[1].text.splitlines()
    assert right[:2] == ["SOCIALIST REPUBLIC OF VIET NAM", "Independence - Freedom - Happiness"]
    assert "To: …………" in [p.text for p in doc.paragraphs]


def test_summary_csv_and_bad_letterheads(server: httpx.Client, world: World) -> None:
    r = fetch(server, world, "csv-summary")
    assert r.headers["content-disposition"].endswith('.summary.csv"')
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["key", "value"]
    summary = dict(rows[1:])
    assert summary["org_name"] == "Province P"
    assert (summary["systems"], summary["approved"]) == ("2", "1")
    assert (summary["devices"], summary["not_audited"], summary["level_3"]) == ("6", "2", "1")
    start, end = period()
    base: Params = {"org": world.province, "from": start, "to": end, "format": "docx"}
    bads: list[Params] = [{"number": "x" * 201}, {"place": "a\x00b"}, {"recipient": ["r"] * 13}]
    for bad in bads:
        refused = server.get(
            "/api/v1/reports/compliance", params={**base, **bad}, headers=bearer(world, "root")
        )
        assert refused.status_code == 422, bad


def _vn(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"
