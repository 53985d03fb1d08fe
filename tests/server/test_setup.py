"""``camwarden-server setup`` on SQLite and PostgreSQL, with flags and with answers on stdin,
and the organisation CSV's checks (``server.orgcsv``)."""

from __future__ import annotations

import io
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.cli import main
from server.orgcsv import OrgCsvError, Stored, parse, plan
from server.storage import Repository
from server.web.scope import CLI, Scoped

CSV = """kind,name,parent,site
province,Tỉnh X,,
agency,Sở Y,Tỉnh X,
system,Camera trụ sở,Tỉnh X/Sở Y,
site,Trụ sở chính,Tỉnh X/Sở Y/Camera trụ sở,hq
"""


def test_csv_errors_name_every_bad_line() -> None:
    bad = (
        "kind,name,parent,site\n"
        "province,Tỉnh X,,\n"
        "region,Vùng,,\n"  # 3: unknown kind
        "agency,Sở Y,Tỉnh X,\n"
        "agency,Sở Y,Tỉnh X,\n"  # 5: twice
        "system,Hệ thống,,\n"  # 6: a system at the top
        "site,Cổng,Tỉnh X/Sở Y,hq\n"  # 7: a site under an agency
        "site,Kho,Tỉnh X/Sở Y/Nowhere,bad site\n"  # 8: site name
        "agency,A/B,Tỉnh X,\n"  # 9: a slash in a name
        "agency,Sở Z\n"  # 10: columns
    )
    with pytest.raises(OrgCsvError) as caught:
        parse(bad.encode())
    lines = [error.split(":")[0] for error in caught.value.errors]
    assert lines == [f"line {n}" for n in (3, 5, 6, 7, 8, 9, 10)]
    assert "unknown kind 'region'" in caught.value.errors[0]
    assert "already on line 4" in caught.value.errors[1]
    assert "a site cannot be placed under agency" in caught.value.errors[3]
    with pytest.raises(OrgCsvError, match="line 1: the header must be kind,name,parent,site"):
        parse(b"name,kind\n")
    with pytest.raises(OrgCsvError, match="not UTF-8"):
        parse(b"kind,name,parent,site\nprovince,T\xe1nh,,\n")


def test_plan_against_the_stored_tree() -> None:
    rows = parse(("\ufeff" + CSV).encode())  # a spreadsheet's byte-order mark is fine
    assert [step.action for step in plan(rows, [])] == ["add"] * 4
    stored = [
        Stored(1, None, "province", "TỈNH X", None),  # names compare without case
        Stored(2, 1, "agency", "Sở Y", None),
    ]
    assert [step.action for step in plan(rows, stored)] == ["exists", "exists", "add", "add"]
    with pytest.raises(OrgCsvError, match="line 3: Tỉnh X/Sở Y is stored as a system"):
        plan(rows, [stored[0], Stored(2, 1, "system", "Sở Y", None)])
    orphan = parse(b"kind,name,parent,site\nagency,A,Nowhere,\n")
    with pytest.raises(OrgCsvError, match="line 2: parent Nowhere is neither on a line above"):
        plan(orphan, [])


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--config", str(tmp_path / "etc" / "server.toml"), "setup",
        "--mosquitto-dir", str(tmp_path / "mosquitto"),
        "--mosquitto-state-dir", str(tmp_path / "mosquitto-state"), "--no-enable", *extra,
    ]  # fmt: skip


def _tree_and_admins(url: str) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    repo = Repository.open(url)
    try:
        s = Scoped(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
        tree = [(n.kind, n.name, n.site) for n in s.org_tree()]
        return tree, [u.username for u in s.users() if u.role == "admin"]
    finally:
        repo.close()


def test_setup_with_flags_twice(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flags only: the database is migrated, the admin and the tree stored, once."""
    (tmp_path / "orgs.csv").write_text(CSV)
    password = tmp_path / "pw"
    password.write_text("a long admin pass 42\n")
    password.chmod(0o600)
    argv = _argv(tmp_path, "--yes", "--state-dir", str(tmp_path / "state"), "--database", db_url,
                 "--admin", "root-admin", "--admin-password-file", str(password),
                 "--orgs", str(tmp_path / "orgs.csv"), "--broker-host", "127.0.0.1")  # fmt: skip
    assert main(argv) == 0
    assert "organisation tree: 4 added" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 to add, 4 stored" in capsys.readouterr().out
    tree, admins = _tree_and_admins(db_url)
    assert tree == [
        ("province", "Tỉnh X", None),
        ("agency", "Sở Y", None),
        ("system", "Camera trụ sở", None),
        ("site", "Trụ sở chính", "hq"),
    ]
    assert admins == ["root-admin"]
    drop_in = tmp_path / "etc" / "server.d" / "50-setup.toml"
    settings = tomllib.loads(drop_in.read_text())
    assert settings["database"]["url"] == db_url
    assert settings["mqtt"]["tls"] is True
    assert stat.S_IMODE(drop_in.stat().st_mode) == 0o640
    assert main(["--config", str(tmp_path / "etc" / "server.toml"), "check-config"]) == 0


def test_setup_answers_on_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No flags: each value is asked, an empty answer takes the default shown."""
    answers = [str(tmp_path / "state"), "", "mqtt.tinh-x.vn, 127.0.0.1", "", "", "127.0.0.1",
               "", "nguyen.an", "a long admin pass 42"]  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    monkeypatch.delenv("CAMWARDEN_ADMIN_PASSWORD", raising=False)
    assert main(_argv(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "database (sqlite, a file, or a PostgreSQL URL) [sqlite]: " in out
    assert "HTTPS port [8443]: " in out
    assert "broker certificate for mqtt.tinh-x.vn, 127.0.0.1" in out
    assert "administrator nguyen.an: created" in out
    _tree, admins = _tree_and_admins(f"sqlite:///{tmp_path / 'state' / 'collector.db'}")
    assert admins == ["nguyen.an"]
    settings = tomllib.loads((tmp_path / "etc" / "server.d" / "50-setup.toml").read_text())
    assert settings["mqtt"]["host"] == "mqtt.tinh-x.vn"
    assert settings["http"]["bind"] == "127.0.0.1"


def test_yes_without_a_password_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAMWARDEN_ADMIN_PASSWORD", raising=False)
    assert main(_argv(tmp_path, "--yes", "--state-dir", str(tmp_path / "state"))) == 1
    err = capsys.readouterr().err
    assert "password of admin: give --admin-password-file (--yes asks nothing)" in err
    open_file = tmp_path / "pw"
    open_file.write_text("a long admin pass 42\n")
    open_file.chmod(0o644)
    argv = _argv(tmp_path, "--yes", "--state-dir", str(tmp_path / "state"),
                 "--admin-password-file", str(open_file))  # fmt: skip
    assert main(argv) == 1
    assert f"{open_file} is readable by everyone: chmod 0600" in capsys.readouterr().err
    monkeypatch.setenv("CAMWARDEN_ADMIN_PASSWORD", "a long admin pass 42")
    assert main(argv[: argv.index("--admin-password-file")]) == 0
    assert "administrator admin: created" in capsys.readouterr().out
