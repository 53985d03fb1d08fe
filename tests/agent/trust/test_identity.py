from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from joserfc.jwk import OKPKey

from agent.cli import main
from agent.errors import AgentError
from agent.trust.identity import collector_key
from protocol.keys import (
    generate_private_key,
    import_public_jwk,
    load_private_key,
    public_jwk,
    thumbprint,
)


def test_keygen_writes_0600_pkcs8_and_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "keys" / "agent.key"
    assert main(["keygen", "--key", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    before = key.read_bytes()
    assert main(["keygen", "--key", str(key)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert key.read_bytes() == before


def test_pubkey_prints_the_public_jwk_with_thumbprint_kid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "agent.key"
    assert main(["keygen", "--key", str(key)]) == 0
    capsys.readouterr()
    assert main(["pubkey", "--key", str(key)]) == 0
    out = capsys.readouterr().out
    jwk = json.loads(out)
    assert set(jwk) == {"kty", "crv", "x", "kid"}
    assert jwk["kid"] == thumbprint(load_private_key(key))
    assert import_public_jwk(jwk).thumbprint() == jwk["kid"]
    assert "PRIVATE" not in out
    assert '"d"' not in out


def test_pubkey_of_a_missing_key_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pubkey", "--key", str(tmp_path / "nope")]) == 1
    assert "cannot read the private key" in capsys.readouterr().err


class Collector(BaseHTTPRequestHandler):
    """A tiny stand-in for the collector's enrollment endpoint; checks the request."""

    status: ClassVar[int] = 201
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        ok = self.path == "/api/v1/enroll" and set(body) == {
            "token",
            "agent_id",
            "site",
            "jwk",
            "hostname",
        }
        status = type(self).status if ok else 400
        answer = {"agent_id": body.get("agent_id"), "site": body.get("site"), "status": "pending"}
        data = json.dumps(answer if status == 201 else {"detail": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Collector.requests = []
    Collector.status = 201
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _config(tmp_path: Path) -> Path:
    key = tmp_path / "agent.key"
    assert main(["keygen", "--key", str(key)]) == 0
    config = tmp_path / "agent.toml"
    config.write_text(
        f'agent_id = "a1"\nsite = "s1"\nkey_file = "{key}"\nstate_dir = "{tmp_path / "st"}"\n'
    )
    return config


def test_enroll_posts_the_public_jwk_and_saves_the_answer(
    tmp_path: Path, collector: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    args = ["enroll", "--server", collector, "--token", "t0k3n", "--config", str(config)]
    assert main(args) == 0
    assert "pending" in capsys.readouterr().out
    (request,) = Collector.requests
    body = request["body"]
    assert body["token"] == "t0k3n"
    assert (body["agent_id"], body["site"]) == ("a1", "s1")
    assert body["jwk"]["kid"] == thumbprint(load_private_key(tmp_path / "agent.key"))
    assert "d" not in body["jwk"]
    saved = tmp_path / "st" / "enrollment.json"
    assert json.loads(saved.read_text()) == {"agent_id": "a1", "site": "s1", "status": "pending"}
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "token was rejected"), (409, "already enrolled"), (422, "invalid JWK")],
)
def test_enroll_refusals_exit_1_with_a_clear_message(
    tmp_path: Path, collector: str, capsys: pytest.CaptureFixture[str], status: int, message: str
) -> None:
    config = _config(tmp_path)
    Collector.status = status
    args = ["enroll", "--server", collector, "--token", "secret-token", "--config", str(config)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "secret-token" not in err
    assert not (tmp_path / "st" / "enrollment.json").exists()


def test_enroll_unreachable_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    args = ["enroll", "--server", "http://127.0.0.1:9", "--token", "x", "--config", str(config)]
    assert main(args) == 1
    assert "cannot reach the collector" in capsys.readouterr().err


def test_config_errors_name_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('agent_id = "a1"\nsite = "s1"\n[mqtt]\nprot = 1\n')
    assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config}:4: mqtt.prot: unknown key" in err


def kid(key: OKPKey | None) -> str:
    assert key is not None
    return thumbprint(key)


def test_the_collector_key_is_pinned_from_the_enrollment_answer_or_the_config(
    tmp_path: Path,
) -> None:
    state = tmp_path / "st"
    assert collector_key(state) is None  # not enrolled
    state.mkdir()
    answer: dict[str, Any] = {"agent_id": "a1", "site": "s1", "status": "approved"}
    (state / "enrollment.json").write_text(json.dumps(answer))
    assert collector_key(state) is None  # an answer without a command key
    enrolled, configured = generate_private_key(), generate_private_key()
    answer["collector_jwk"] = public_jwk(enrolled)
    (state / "enrollment.json").write_text(json.dumps(answer))
    assert kid(collector_key(state)) == thumbprint(enrolled)
    override = tmp_path / "collector.jwk"
    override.write_text(json.dumps(public_jwk(configured)))
    assert kid(collector_key(state, override)) == thumbprint(configured)
    override.write_text(json.dumps({**public_jwk(configured), "kid": public_jwk(enrolled)["kid"]}))
    with pytest.raises(AgentError, match="unusable"):
        collector_key(state, override)
    with pytest.raises(AgentError, match="does not exist"):
        collector_key(state, tmp_path / "missing.jwk")
