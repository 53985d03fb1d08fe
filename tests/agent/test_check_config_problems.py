"""``check-config`` reports what ``run`` would refuse or silently skip, each problem with its key
and file:line: exit 2 on an error, 0 with warnings only."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agent.cli import main
from tests.agent.support import make_home
from tests.support.mosquitto import free_port


def _config(tmp_path: Path, *, top: str = "", cameras: str = "", subnets: str = "") -> Path:
    """A valid home (key, state) with ``top`` keys first and ``cameras`` tables last."""
    home = make_home(tmp_path, free_port())
    text = home.read_text()
    network = f"[network]\ncamera_subnets = [{subnets}]\n" if subnets else ""
    home.write_text(f"{top}\n{text}{network}{cameras}")
    return home


def _check(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["check-config", *extra, "--config", str(config)])
    return code, capsys.readouterr().err


def _line(config: Path, text: str) -> int:
    """The number of the first line that starts with ``text``."""
    lines = config.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


CAMERA = '[[cameras]]\nid = "{id}"\naddress = "{address}"\n'


def test_a_clean_config_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cameras = CAMERA.format(id="door", address="127.77.0.3") + 'vendor = "Hikvision"\n'
    cameras += CAMERA.format(id="yard", address="cam-yard.site.lan")
    config = _config(tmp_path, cameras=cameras, subnets='"127.77.0.0/24"')
    assert _check(config, capsys) == (0, "")


def test_an_invalid_address_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cameras = CAMERA.format(id="door", address="127.77.0.3")
    cameras += CAMERA.format(id="yard", address="127.77.0.300")
    config = _config(tmp_path, cameras=cameras)
    code, err = _check(config, capsys)
    assert code == 2
    line = _line(config, 'address = "127.77.0.300"')
    assert f"error: {config}:{line}: cameras[1].address: yard: '127.77.0.300'" in err
    assert err.count("error:") == 1


def test_a_misspelt_vendor_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cameras = CAMERA.format(id="door", address="127.77.0.3") + 'vendor = "hikvison"\n'
    config = _config(tmp_path, cameras=cameras)
    code, err = _check(config, capsys)
    assert code == 2
    line = _line(config, "vendor = ")
    assert f"{config}:{line}: cameras[0].vendor: door: unknown vendor 'hikvison'" in err
    assert "did you mean 'hikvision'?" in err


def test_a_camera_outside_the_subnets_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cameras = CAMERA.format(id="door", address="127.78.0.3")
    config = _config(tmp_path, cameras=cameras, subnets='"127.77.0.0/24"')
    code, err = _check(config, capsys)
    assert code == 2
    assert "cameras[0].address: door: 127.78.0.3 is outside network.camera_subnets" in err


def test_missing_and_unreadable_files_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_key = tmp_path / "vault.key"
    vault_key.write_bytes(bytes(32))
    vault_key.chmod(0o644)
    top = f'vault_key_file = "{vault_key}"\ncollector_key_file = "{tmp_path / "none.jwk"}"\n'
    config = _config(tmp_path, top=top)
    (tmp_path / "agent.key").unlink()
    code, err = _check(config, capsys)
    assert code == 2
    assert f"{config}:{_line(config, 'key_file = ')}: key_file: cannot read the private key" in err
    assert f"vault_key_file: the vault key {vault_key} is open to others" in err
    assert f"collector_key_file: cannot read {tmp_path / 'none.jwk'}" in err


def test_missing_tls_files_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_home(tmp_path, free_port(), mqtt={"tls": "true"})  # type: ignore[dict-item]
    code, err = _check(config, capsys)
    assert code == 2
    for key in ("mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file"):
        assert f"{key}: cannot read" in err


def test_an_unreachable_collector_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as reserved:  # a loopback port with nothing listening
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        config = _config(tmp_path, top=f'collector_url = "http://127.0.0.1:{port}"\n')
        started = time.monotonic()
        code, err = _check(config, capsys)
    assert time.monotonic() - started < 60  # bounded by the short connect timeout
    assert code == 0
    assert f"warning: {config}:1: collector_url: http://127.0.0.1:{port} does not answer" in err
    assert _check(config, capsys, "--offline") == (0, "")
