"""``verify-report`` and ``import``: exit codes, reasons and line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import generate_private_key
from server.api import create_app
from server.cli import main
from server.config import ServerConfig
from server.storage import Repository
from server.storage.models import Message
from tests.server.conftest import enroll, serve
from tests.support.agents import SimAgent


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def agent() -> SimAgent:
    return SimAgent("pi-1")


@pytest.fixture
def pubkey(tmp_path: Path, agent: SimAgent) -> Path:
    path = tmp_path / "agent.jwk"
    path.write_text(json.dumps(agent.jwk))
    return path


def test_verify_report(
    tmp_path: Path, agent: SimAgent, pubkey: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent.report()  # report 1 stays outside the file
    good = [agent.report()[1], agent.heartbeat()[1], agent.report()[1]]
    assert main(["verify-report", "--pubkey", str(pubkey), str(write(tmp_path / "r", good))]) == 0
    out = capsys.readouterr().out
    assert "valid: 3 messages (2 reports)" in out
    assert "continues report 1, which is not in this file" in out

    skipped = [good[0], agent.report()[1], agent.report()[1]]  # report 5 missing, 6 names it
    bad = write(tmp_path / "gap", [good[0], skipped[2]])
    assert main(["verify-report", "--pubkey", str(pubkey), str(bad)]) == 1
    assert f"{bad}:2: broken_chain" in capsys.readouterr().out

    forged = write(tmp_path / "forged", [good[0], good[2][:-4] + b"AAAA"])
    assert main(["verify-report", "--pubkey", str(pubkey), str(forged)]) == 1
    assert ":2: bad_signature" in capsys.readouterr().out

    other = SimAgent("pi-1").report()[1]
    assert (
        main(["verify-report", "--pubkey", str(pubkey), str(write(tmp_path / "o", [other]))]) == 1
    )
    assert ":1: unknown_key" in capsys.readouterr().out

    beat = agent.heartbeat()[1]  # seq 7
    restarted = SimAgent("pi-1", key=agent.key)
    restarted.seq = agent.seq  # the same agent, its chain forgotten: report 8 with prev_seq 0
    again = write(tmp_path / "restart", [*good, beat, restarted.report()[1]])
    assert main(["verify-report", "--pubkey", str(pubkey), str(again)]) == 1
    assert f"{again}:5: broken_chain: report 8 starts a new chain after report 2" in (
        capsys.readouterr().out
    )

    assert main(["verify-report", "--pubkey", str(tmp_path / "missing"), str(bad)]) == 2
    assert main(["verify-report", str(bad)]) == 2


def test_verify_report_over_http(repo: Repository, agent: SimAgent) -> None:
    lines = b"\n".join([agent.report()[1], agent.report()[1]]).decode()
    with serve(create_app(ServerConfig(), repo, command_key=generate_private_key())) as client:
        ok = client.post("/api/v1/verify-report", json={"jwk": agent.jwk, "reports": lines})
        bad = client.post(
            "/api/v1/verify-report", json={"jwk": agent.jwk, "reports": lines[:-3] + "\n"}
        )
        wrong = client.post("/api/v1/verify-report", json={"jwk": {"kty": "RSA"}, "reports": ""})
    assert ok.json()["valid"] is True
    assert (bad.json()["valid"], bad.json()["line"], bad.json()["reason"]) == (
        False,
        2,
        "malformed",
    )
    assert wrong.status_code == 422


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_import_goes_through_the_same_checks(
    tmp_path: Path,
    repo: Repository,
    db_url: str,
    agent: SimAgent,
    capsys: pytest.CaptureFixture[str],
) -> None:
    enroll(repo, agent)
    lines = [agent.report()[1], agent.heartbeat()[1], agent.report()[1]]
    stranger = SimAgent("pi-2").report()[1]
    path = write(tmp_path / "offline.jws", [*lines, stranger, b"garbage"])
    args = ["--set", f'database.url="{db_url}"', "import", str(path)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "accepted: 3" in out
    assert "rejected unknown_key: 1" in out
    assert "rejected malformed: 1" in out
    assert repo.count(Message) == 3
    only_valid = write(tmp_path / "again.jws", lines)
    assert main(["--set", f'database.url="{db_url}"', "import", str(only_valid)]) == 0
    assert "rejected duplicate: 3" in capsys.readouterr().out


def test_example_config_loads_and_matches_the_defaults() -> None:
    from server.config import load_config  # noqa: PLC0415

    example = Path(__file__).resolve().parents[2] / "configs" / "server.example.toml"
    assert load_config(example) == ServerConfig()
