"""LAB.toml validation, ground truth, the camwarden-lab CLI, and start-up at scale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lab.config import parse_config
from lab.errors import ConfigError
from lab.persona import load_persona, persona_names
from lab.testing import LabFactory

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "camwarden-lab"
DEMO = ROOT / "configs" / "lab" / "demo.toml"


def test_personas_load() -> None:
    assert persona_names() == [
        "axis",
        "dahua",
        "dahua-nvr",
        "ezviz",
        "hikvision",
        "hikvision-dvr",
        "hikvision-nvr",
        "hilook",
        "imou",
        "kbvision",
        "kbvision-nvr",
        "onvif-generic",
        "reolink",
    ]
    for name in persona_names():
        persona = load_persona(name)
        assert persona.default_credentials
        assert persona.ports["http"] == 80


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[camera]]\nid = "a"\npersona = "axis"\nbogus = 1\n',
            "LAB.toml:4: camera[0].bogus: unknown key",
        ),
        (
            '[[camera]]\nid = "a"\npersona = "nope"\n',
            "LAB.toml:3: camera[0].persona: unknown persona",
        ),
        (
            '[[camera]]\nid = "a"\n\npersona = "axis"\nhttps = "yes"\n',
            "LAB.toml:5: camera[0].https: expected bool",
        ),
        ('[lab]\nmode = "cloud"\n', "LAB.toml:2: lab.mode: 'cloud' is not one of"),
        ('[[camera]]\npersona = "axis"\n', "LAB.toml:1: camera[0].id: required key is missing"),
        (
            '[[camera]]\nid = "a"\npersona = "axis"\n[[camera]]\nid = "b"\npersona = "axis"\n'
            'tls = {versions = ["SSLv3"]}\n',
            "LAB.toml:7: camera[1].tls.versions: unknown TLS",
        ),
        (
            '[[camera]]\nid = "a"\npersona = "axis"\ntls = {shared_key_group = "k"}\n'
            '[[camera]]\nid = "b"\npersona = "axis"\n'
            'tls = {weak_key = true, shared_key_group = "k"}\n',
            "LAB.toml:8: camera[1].tls.shared_key_group: cameras sharing key 'k' must agree on "
            "weak_key: 'a' has weak_key = false, 'b' has true",
        ),
    ],
)
def test_config_errors_name_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(text)


def test_count_expands() -> None:
    config = parse_config('[[camera]]\nid = "d"\npersona = "dahua"\ncount = 3\n')
    assert [c.id for c in config.cameras] == ["d-1", "d-2", "d-3"]
    assert [c.ordinal for c in config.cameras] == [0, 1, 2]


def test_truth_cli() -> None:
    out = subprocess.run(
        [CLI, "truth", "--config", DEMO], capture_output=True, text=True, check=True
    )
    cams = json.loads(out.stdout)["cameras"]
    assert cams["hik-lobby"]["findings"]["FW-01"] == ["CVE-2021-36260 (KEV)"]
    assert "AUTH-01" in cams["hik-lobby"]["findings"]
    assert "SVC-05" in cams["hik-lobby"]["findings"]
    assert cams["dahua-yard"]["findings"]["FW-01"] == [
        "CVE-2021-33044 (KEV)",
        "CVE-2021-33045 (KEV)",
    ]
    assert "COM-03" in cams["axis-shared-1"]["findings"]
    assert "AUTH-10" in cams["onvif-parking"]["findings"]
    assert set(cams["onvif-roof"]["findings"]) == set()
    assert "AUTH-04" in cams["dahua-dock"]["findings"]


def test_up_and_down(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    config = tmp_path / "lab.toml"
    base = f"127.{100 + os.getpid() % 100}.251.0"
    config.write_text(DEMO.read_text().replace('mode = "loopback"', f'loopback_base = "{base}"'))
    proc = subprocess.Popen(
        [CLI, "up", "--config", config, "--state", state],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert state.exists(), proc.stderr.read() if proc.stderr else ""
        cameras = json.loads(state.read_text())["cameras"]
        lobby = cameras["hik-lobby"]
        assert lobby["vendor"] == "Hikvision"
        reply = httpx.get(f"http://{lobby['address']}:{lobby['ports']['http']}/SDK/activateStatus")
        assert reply.headers["server"] == "webserver"
        logged = subprocess.run(
            [CLI, "log", "--state", state, "--camera", "hik-lobby"],
            capture_output=True,
            text=True,
            check=True,
        )
        entries = [json.loads(line) for line in logged.stdout.splitlines()]
        assert entries[-1]["target"] == "/SDK/activateStatus"
        assert entries[-1]["status"] == 200
        down = subprocess.run(
            [CLI, "down", "--state", state], capture_output=True, text=True, check=False
        )
        assert down.returncode == 0, down.stderr
        out, _err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert "hik-lobby" in out
    assert "AUTH-01" in out
    assert not state.exists()


@pytest.mark.slow
async def test_hundred_cameras_start_fast(lab_fleet: LabFactory) -> None:
    config = parse_config((ROOT / "configs" / "lab" / "mixed-100.toml").read_text())
    started = time.monotonic()
    fleet = await lab_fleet(config)
    elapsed = time.monotonic() - started
    assert len(fleet.cameras) == 100
    assert elapsed < 10
    async with httpx.AsyncClient(verify=False) as client:  # noqa: S501  # lab self-signed certs
        last = fleet["onvif-15"]
        reply = await client.get(fleet["axis-15"].url("/axis-cgi/jpg/image.cgi", https=True))
        assert reply.status_code == 401
        soap = await client.post(
            last.url("/onvif/device_service"),
            content='<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            '<GetHostname xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>',
        )
        assert "onvif-15" in soap.text
