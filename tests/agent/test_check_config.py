"""``check-config`` on both sides, the examples, key permissions, and secrets kept out of every
output of a run."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import msgspec
import pytest
from joserfc.jwk import OKPKey

from agent.cli import main as agent_main
from agent.config import AgentConfig
from protocol.configfile import REDACTED, dumps, redact
from server.cli import main as server_main
from server.config import ServerConfig
from tests.agent.support import AGENT, make_home, outbox_files, start_agent, stop, wait_for
from tests.support.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_agent_example_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    example = ROOT / "configs" / "agent.example.toml"
    # the example names the packaged key path, absent on a test machine: the only error
    assert agent_main(["check-config", "--offline", "--config", str(example)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"camwarden-agent: error: {example}:17: key_file: cannot read the private key "
        "/var/lib/camwarden/agent.key: No such file or directory"
    ]
    printed = msgspec.convert(tomllib.loads(out), AgentConfig, strict=True)
    original = msgspec.convert(tomllib.loads(example.read_text()), AgentConfig, strict=True)
    assert printed == original
    assert "# collector_key_file: not set" in out


def test_server_example_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    example = ROOT / "configs" / "server.example.toml"
    assert server_main(["--config", str(example), "check-config"]) == 0
    out = capsys.readouterr().out
    printed = msgspec.convert(tomllib.loads(out), ServerConfig, strict=True)
    assert printed == msgspec.convert(tomllib.loads(example.read_text()), ServerConfig)


def test_server_layers_and_redaction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "server.toml"
    main.write_text('[mqtt]\nport = 1884\n[alerts.smtp]\nusername = "alerts"\n')
    (tmp_path / "server.d").mkdir()
    (tmp_path / "server.d" / "10-secrets.toml").write_text(
        '[database]\nurl = "postgresql+psycopg://camwarden:pg-S3cret@db.invalid/camwarden"\n'
        '[alerts.smtp]\npassword = "smtp-S3cret"\n'
    )
    assert server_main(["--config", str(main), "--set", "http.port=9000", "check-config"]) == 0
    out = capsys.readouterr().out
    assert "S3cret" not in out
    data = tomllib.loads(out)
    assert data["alerts"]["smtp"]["password"] == REDACTED
    assert (
        data["database"]["url"] == f"postgresql+psycopg://camwarden:{REDACTED}@db.invalid/camwarden"
    )
    assert (data["mqtt"]["port"], data["http"]["port"]) == (1884, 9000)
    assert data["alerts"]["smtp"]["username"] == "alerts"


def test_invalid_configs_exit_2_naming_file_line_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text('agent_id = "a1"\nsite = "s1"\n\n[mqtt]\nport = "mqtt"\n')
    assert agent_main(["check-config", "--config", str(agent)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{agent}:5: mqtt.port" in captured.err
    server = tmp_path / "server.toml"
    server.write_text("[web]\ncolour = 1\n")
    assert server_main(["--config", str(server), "check-config"]) == 2
    assert f"{server}:2: web.colour: unknown key" in capsys.readouterr().err


def test_redaction_rules() -> None:
    assert redact({"api_token": "t", "password": "", "note": "x"}) == {
        "api_token": REDACTED,
        "password": "",  # an empty secret gives nothing away, and shows it is unset
        "note": "x",
    }
    assert redact("mqtts://u:p@h:8883/x") == f"mqtts://u:{REDACTED}@h:8883/x"
    assert redact("https://u@h/") == "https://u@h/"
    assert dumps(AgentConfig(agent_id="a", site="s")).startswith('agent_id = "a"\n')


def test_readable_private_key_is_refused(tmp_path: Path) -> None:
    config = make_home(tmp_path, free_port())
    key = tmp_path / "agent.key"
    for mode in (0o640, 0o604):
        key.chmod(mode)
        done = subprocess.run(
            [*AGENT, "run", "--config", str(config)],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 1
        assert f"the private key {key} is open to other users (mode {mode:04o})" in done.stderr
        assert f"chmod 600 {key}" in done.stderr
    key.chmod(0o600)


def key_material(key: Path) -> list[str]:
    """Strings that would give the private key away: the PEM body and the JWK's d."""
    pem = key.read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    d = OKPKey.import_key(pem.encode()).as_dict(private=True)["d"]
    return [body, body[:24], str(d)]


def test_no_secret_in_any_output(tmp_path: Path) -> None:
    """A run, check-config and report --once at DEBUG: no key material anywhere."""
    config = make_home(tmp_path, free_port(), report_s=0.2)
    agent = start_agent(config)
    wait_for(lambda: len(outbox_files(config)) >= 3)
    stop(agent)
    outputs = [(tmp_path / "agent.log").read_text()]
    for args in (["check-config"], ["report", "--once", "--out", str(tmp_path / "r.jws")]):
        done = subprocess.run(
            [*AGENT, "--log-level", "DEBUG", *args, "--config", str(config)],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    outputs.append((tmp_path / "r.jws").read_text())
    outputs += [p.read_text() for p in outbox_files(config)]
    text = "\n".join(outputs)
    for secret in key_material(tmp_path / "agent.key"):
        assert secret not in text
    assert re.search(r"PRIVATE KEY", text) is None
