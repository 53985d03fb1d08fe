"""The certified-model register: matching by vendor, model, hardware version and firmware
(INV-02), and its CSV import (line-numbered errors, a preview, one transaction, the audit log)
and export, from the API, the dashboard and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from server.cli import main
from server.domain import register
from server.domain.register import ModelMatcher, ModelView, inv02_status, parse
from server.storage import Repository
from server.storage.org_models import AuditEntry, ModelEntry
from tests.web.conftest import World, bearer
from tests.web.test_rbac import login

HEADER = "vendor,model,hardware_id,firmware,regulation,certificate_number,certificate_date,flagged"
GOOD = (
    f"{HEADER}\r\n"
    "Hikvision,DS-2CD2143G2-I,,,QCVN 135:2024/BTTTT,QCVN-135/2024/0042,2024-11-04,no\r\n"
    "Dahua,IPC-HFW2431S,,V2.800.0000000.1,QCVN 11:2026/BCA,11/2026/0007,2026-09-01,no\r\n"
    "Acme,X1,,,,,,yes\r\n"
).encode()


def view(i: int, model: str, *, hw: str | None = None, fw: str | None = None,
         cert: str | None = "C", flagged: bool = False) -> ModelView:  # fmt: skip
    return ModelView(i, "Dahua", model, hw, cert, None, None, flagged, None, None,
                     datetime.now(UTC), None, fw, "QCVN 11:2026/BCA")  # fmt: skip


def test_a_certificate_covers_its_firmware_and_a_flag_wins() -> None:
    matcher = ModelMatcher([
        view(1, "IPC-A", fw="V2.800"),
        view(2, "IPC-B", cert=None, flagged=True),
        view(3, "IPC-B", fw="V2.800"),
        view(4, "IPC-C", hw="Rev 2", fw="V1"),
        view(5, "IPC-C", fw="V1"),
    ])  # fmt: skip

    def status(model: str, hw: str | None, fw: str | None) -> str:
        return inv02_status(matcher.match("DAHUA", model, hw, fw))

    assert status("IPC-A", None, "v2.800") == "certified"  # case ignored
    assert status("IPC-A", None, "V2.801") == "uncertified"  # another firmware: not covered
    assert status("IPC-A", None, None) == "uncertified"
    assert status("IPC-B", None, "V2.800") == "flagged"  # the model's flag beats the certificate
    specific = matcher.match("Dahua", "IPC-C", "rev  2", "V1")  # spacing ignored
    assert specific is not None
    assert specific.id == 4  # hardware version and firmware: the most specific entry
    other_board = matcher.match("Dahua", "IPC-C", "Rev 3", "V1")
    assert other_board is not None
    assert other_board.id == 5


def test_every_bad_line_is_named_and_nothing_is_kept() -> None:
    data = (
        f"{HEADER}\n"
        "Hikvision,DS-1,,,QCVN 11:2026/BCA,A-1,2026-13-01,no\n"  # line 2: no such month
        ",DS-2,,,,,,no\n"  # line 3: no vendor
        "Hikvision,DS-3,,,QCVN 9:2020,A-3,,maybe\n"  # line 4: regulation, flag
        "Hikvision,DS-4,,,,A-4,,no\n"  # line 5: a certificate without its regulation
        "Hikvision,ds-1,,,QCVN 11:2026/BCA,A-1,,no\n"  # line 6: fine (line 2 is dropped)
        "HIKVISION,DS-1,,,QCVN 11:2026/BCA,A-1,,no\n"  # line 7: the same as line 6
        "Hikvision,DS-5,,\n"  # line 8: too few cells
    ).encode()
    parsed = parse(data)
    assert parsed.entries == []
    assert [(e.line, e.code) for e in parsed.errors] == [
        (2, "date"), (3, "required"), (4, "flag"), (4, "regulation"), (5, "no_regulation"),
        (7, "duplicate"), (8, "cells"),
    ]  # fmt: skip
    assert parsed.errors[5].params == {"first": 6}
    assert [e.code for e in parse(b"vendor,colour\nA,B\n").errors] == [
        "unknown_column",
        "missing_column",
    ]
    assert [e.code for e in parse(b"\xff\xfe").errors] == ["encoding"]
    assert [e.code for e in parse(b"x" * (register.CSV_MAX_BYTES + 1)).errors] == ["too_big"]


def test_api_preview_apply_audit_and_tenancy(
    server: httpx.Client, repo: Repository, world: World
) -> None:
    root = bearer(world, "root")
    files = {"file": ("register.csv", GOOD, "text/csv")}
    preview = server.post("/api/v1/models/import", files=files, headers=root)
    assert preview.status_code == 200, preview.text
    assert preview.json() | {"sha256": ""} == {
        "sha256": "", "errors": [], "applied": False, "added": 2, "replaced": 1,
        "unchanged": 0, "removed": 0,
    }  # fmt: skip
    assert _entries(repo) == [("Hikvision", None, None)]  # a preview writes nothing
    # an agency's administrator may not change the national register
    denied = server.post("/api/v1/models/import?apply=true", files=files,
                         headers=bearer(world, "admin-a"))  # fmt: skip
    assert denied.status_code == 403
    done = server.post("/api/v1/models/import?apply=true", files=files, headers=root)
    assert done.json()["applied"] is True
    assert _entries(repo) == [
        ("Acme", None, None),
        ("Dahua", "V2.800.0000000.1", "QCVN 11:2026/BCA"),
        ("Hikvision", None, "QCVN 135:2024/BTTTT"),
    ]
    with repo.engine.connect() as conn:
        audit = conn.execute(
            select(AuditEntry.username, AuditEntry.outcome, AuditEntry.detail)
            .where(AuditEntry.action == "model.import")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a.username, a.outcome) for a in audit] == [("admin-a", "denied"), ("root", "ok")]
    assert (audit[1].detail["added"], audit[1].detail["replaced"]) == (2, 1)
    # exported by anyone (national reference data), and read back unchanged
    exported = server.get("/api/v1/models/export", headers=bearer(world, "viewer-a"))
    assert exported.status_code == 200
    again = server.post("/api/v1/models/import", headers=root,
                        files={"file": ("r.csv", exported.content, "text/csv")})  # fmt: skip
    assert (again.json()["unchanged"], again.json()["added"]) == (3, 0)
    bad = server.post("/api/v1/models/import", headers=root,
                      files={"file": ("r.csv", b"vendor,model\n,X\n", "text/csv")})  # fmt: skip
    assert bad.json()["errors"] == [{"line": 2, "code": "required", "params": {"column": "vendor"}}]


def test_dashboard_preview_then_apply(server: httpx.Client, repo: Repository, world: World) -> None:
    csrf = login(server, "root")
    assert "import-models" in server.get("/models").text
    upload = {"file": ("r.csv", b"vendor,model,flagged\nA,B,maybe\n")}
    broken = server.post("/models/import", data={"csrf": csrf}, files=upload)
    assert broken.status_code == 200
    assert "Tệp có 1 lỗi; chưa có gì được ghi." in broken.text
    assert "“maybe” không phải yes hoặc no." in broken.text
    page = server.post("/models/import", data={"csrf": csrf},
                       files={"file": ("register.csv", GOOD, "text/csv")})  # fmt: skip
    assert "thêm 2 mục, thay thế 1 mục" in page.text
    assert _entries(repo) == [("Hikvision", None, None)]
    form = {
        name: page.text.split(f'name="{name}" value="')[1].split('"')[0]
        for name in ("csrf", "content", "sha256")
    }
    tampered = server.post("/models/import/apply", data={**form, "sha256": "0" * 64})
    assert tampered.status_code == 422
    applied = server.post("/models/import/apply", data=form)
    assert applied.status_code == 303
    assert applied.headers["location"] == "/models?imported=3"
    assert len(_entries(repo)) == 3
    # agency administrators see no import form
    server.cookies.clear()
    login(server, "admin-a")
    assert "import-models" not in server.get("/models").text


def test_cli_export_preview_and_apply(repo: Repository, db_url: str, world: World,
                                      tmp_path: Path) -> None:  # fmt: skip
    base = ["--set", f"database.url={db_url}", "--set", f"state_dir={tmp_path}"]
    source = tmp_path / "in.csv"
    source.write_bytes(GOOD)
    assert main([*base, "models", "import", str(source)]) == 0
    assert _entries(repo) == [("Hikvision", None, None)]
    assert main([*base, "models", "import", str(source), "--apply"]) == 0
    assert len(_entries(repo)) == 3
    out = tmp_path / "out.csv"
    assert main([*base, "models", "export", "--out", str(out)]) == 0
    assert out.read_text("utf-8-sig").splitlines()[0] == ",".join(register.COLUMNS)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"vendor,model,certificate_date\nA,B,yesterday\n")
    assert main([*base, "models", "import", str(broken), "--apply"]) == 1
    assert len(_entries(repo)) == 3


def _entries(repo: Repository) -> list[tuple[str, str | None, str | None]]:
    with repo.engine.connect() as conn:
        return [
            (r.vendor, r.firmware, r.regulation)
            for r in conn.execute(
                select(ModelEntry.vendor, ModelEntry.firmware, ModelEntry.regulation).order_by(
                    ModelEntry.vendor
                )
            )
        ]
