"""``camwarden-agent setup`` answered on stdin against a real collector on loopback, its
``--yes`` mode's refusals, and ``check-config`` on the packaged template."""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from tests.support.mosquitto import Mosquitto
from tests.support.stack import Collector

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "packaging" / "config" / "agent.toml"

pytestmark = pytest.mark.integration


@pytest.fixture
def collector(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Collector]:
    running = Collector(tmp_path / "collector", mosquitto.port)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _paths(tmp_path: Path) -> list[str]:
    site = tmp_path / "site"
    return ["--config", str(site / "agent.toml"), "--key-file", str(site / "agent.key"),
            "--state-dir", str(site / "state"), "--vault-key-file", str(site / "vault.key"),
            "--no-enable"]  # fmt: skip


def test_answers_on_stdin_then_nothing_changes(
    collector: Collector,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every value asked in turn (a wrong one asked again), the token read from stdin; the
    agent is enrolled with the collector. A second run with --yes keeps keys and enrollment."""
    token = collector.token("hq")
    answers = ["pi-01", "bad site!", "hq", collector.url, "127.0.0.1:8883", "10.0.0.0/8",
               "192.0.2.0/28", "n", token]  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    argv = ["setup", *_paths(tmp_path), "--wait-s", "0"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "site: " in out
    assert "letters, digits and '_.-'" in out  # "bad site!" refused, asked again
    assert "10.0.0.0/8 has more than 4096 addresses" in out
    assert "enrolled pi-01 at site hq: approved" in out
    assert token not in out
    site = tmp_path / "site"
    written = tomllib.loads((site / "agent.toml").read_text())
    assert written["agent_id"] == "pi-01"
    assert written["mqtt"] == {"host": "127.0.0.1", "port": 8883, "tls": True}
    assert written["network"]["camera_subnets"] == ["192.0.2.0/28"]
    enrollment = json.loads((site / "state" / "enrollment.json").read_text())
    assert enrollment["status"] == "approved"
    keys = {name: (site / name).read_bytes() for name in ("agent.key", "vault.key")}

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main([*argv, "--yes", "--camera-subnet", "192.0.2.0/27"]) == 0
    again = capsys.readouterr().out
    assert "enrollment: done before, kept" in again
    assert {name: (site / name).read_bytes() for name in keys} == keys
    written = tomllib.loads((site / "agent.toml").read_text())
    assert written["network"]["camera_subnets"] == ["192.0.2.0/27"]  # only what was asked
    assert (written["agent_id"], written["site"]) == ("pi-01", "hq")


def test_yes_names_the_missing_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", *_paths(tmp_path), "--yes", "--agent-id", "pi-01"]) == 1
    assert "site: give --site (--yes asks nothing)" in capsys.readouterr().err
    argv = ["setup", *_paths(tmp_path), "--yes", "--agent-id", "pi-01", "--site", "hq",
            "--collector-url", "http://127.0.0.1:9", "--broker", "127.0.0.1:8883",
            "--camera-subnet", "192.0.2.0/28", "--camera", "door=198.51.100.7"]  # fmt: skip
    assert main(argv) == 1
    assert "camera door (198.51.100.7) is outside the camera subnets" in capsys.readouterr().err


def test_check_config_on_the_packaged_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--offline", "--config", str(TEMPLATE)]) == 2
    err = capsys.readouterr().err
    assert "agent_id and site not set: run `camwarden-agent setup`" in err
    assert "missing required field" not in err
