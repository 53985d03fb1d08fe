"""The camera page's arrangement (server.domain.camera_page): counts, families, chart bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.domain.camera_page import OTHER, summarise
from server.domain.cameras import CameraView, ReportLine
from server.domain.findings import FindingRow

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def row(n: int, status: str, controls: list[str], severity: str = "high") -> FindingRow:
    return FindingRow(
        n, "agent-1", "cam-1", "site-1", "Hikvision", "X", f"code.{n}", "check",
        status, severity, controls, None, {},
    )  # fmt: skip


def line(seq: int, *, present: bool = True, audit: str = "audited", failing: int = 0) -> ReportLine:
    at = NOW - timedelta(hours=10 - seq)
    return ReportLine(seq, at, at, present, True if present else None, failing, audit)


def view(findings: list[FindingRow], history: list[ReportLine]) -> CameraView:
    return CameraView(
        "agent-1", "cam-1", "site-1", "10.0.0.1", True, {}, NOW, NOW, 3, findings, history,
        "audited", None, [],
    )  # fmt: skip


def test_counts_families_and_the_rest() -> None:
    findings = [
        row(1, "fail", ["SVC-01"], "critical"),
        row(2, "pass", ["AUTH-01"]),
        row(3, "fail", ["AUTH-02", "AUTH-01"]),
        row(4, "not_applicable", ["NET-01"]),
        row(5, "fail", []),  # the collector's own rows may carry no control
        row(6, "inconclusive", ["LOG-01"]),
        row(7, "fail", ["AUTH-04"], "medium"),
    ]
    summary = summarise(view(findings, []))
    assert summary.counts == {"fail": 4, "pass": 1, "not_applicable": 1, "inconclusive": 1}
    # the catalogue's order of families; within one, the camera's own order (by severity)
    assert [(g.family, [r.id for r in g.findings]) for g in summary.failed] == [
        ("AUTH", [3, 7]),
        ("SVC", [1]),
        (OTHER, [5]),
    ]
    assert [r.id for r in summary.others] == [6, 4, 2]  # inconclusive, n/a, passed
    assert summary.bars == []
    assert summary.peak == 1


def test_history_bars_oldest_first_unaudited_apart() -> None:
    history = [  # as the camera view holds it: newest first
        line(4, failing=2),
        line(3, audit="login_failed", failing=0),
        line(2, present=False),
        line(1, failing=4),
    ]
    summary = summarise(view([], history), width=400, height=100)
    assert [b.line.seq for b in summary.bars] == [1, 2, 3, 4]
    assert [b.failing for b in summary.bars] == [4, None, None, 2]  # never drawn as clean
    assert summary.peak == 4
    assert [b.x for b in summary.bars] == [0, 100, 200, 300]
    assert [b.height for b in summary.bars] == [100, 0, 0, 50]
