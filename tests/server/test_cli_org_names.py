"""Organisations named by name or path on the command line, not only by id."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from server.cli import main


def _run(tmp_path: Path, *args: str, stdin: str = "") -> int:
    common = ["--set", f"database.url=sqlite:///{tmp_path / 'db.sqlite'}"]
    common += ["--set", f"state_dir={tmp_path}"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        return main([*common, *args])


def test_orgs_by_name_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for province in ("Tỉnh X", "Tỉnh Z"):
        assert _run(tmp_path, "orgs", "add", "--kind", "province", "--name", province) == 0
        agency = ["orgs", "add", "--kind", "agency", "--name", "Sở Y", "--parent", province]
        assert _run(tmp_path, *agency) == 0
    system = ["--kind", "system", "--name", "Camera cổng", "--parent", "tỉnh x/SỞ Y"]
    assert _run(tmp_path, "orgs", "add", *system) == 0
    capsys.readouterr()
    assert _run(tmp_path, "orgs", "list") == 0
    tree = [line.strip().split("\t") for line in capsys.readouterr().out.splitlines()]
    # ordered by path: Tỉnh X, its Sở Y, that one's system, then Tỉnh Z and its Sở Y
    assert [row[2] for row in tree] == ["Tỉnh X", "Sở Y", "Camera cổng", "Tỉnh Z", "Sở Y"]
    agency_x = int(tree[1][0])

    # a name that two units share asks for the path
    password = "Mật-khẩu-dài-2026\n"
    create = ["users", "create", "an", "--role", "viewer", "--org", "Sở Y"]
    assert _run(tmp_path, *create, stdin=password) == 1
    assert "2 organisations are named 'Sở Y': give the path, e.g. \"Tỉnh X/Sở Y\"" in (
        capsys.readouterr().err
    )
    assert _run(tmp_path, *create[:-1], "Tỉnh X/Sở Y", stdin=password) == 0
    assert _run(tmp_path, "users", "create", "binh", "--role", "viewer", "--org",
                "Camera cổng", stdin=password) == 0  # fmt: skip
    assert _run(tmp_path, "users", "create", "chi", "--role", "viewer", "--org", "Sở Q",
                stdin=password) == 1  # fmt: skip
    assert "no organisation named 'Sở Q'" in capsys.readouterr().err
    assert _run(tmp_path, "users", "list") == 0
    users = {
        line.split("\t")[1]: line.split("\t")[3] for line in capsys.readouterr().out.splitlines()
    }
    assert users["an"] == f"org {agency_x}"
    assert "chi" not in users
