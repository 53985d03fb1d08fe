"""The systemd units: required settings present, exposure measured by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import _parser as agent_parser
from server.cli import parser as server_parser
from tests.support.systemctl import command, fields

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "packaging" / "systemd"
AGENT = SYSTEMD / "camwarden-agent.service"
SERVER = SYSTEMD / "camwarden-server.service"
RAW_SCAN = SYSTEMD / "camwarden-agent.service.d" / "raw-scan.conf.example"
_OVERALL = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def exposure(unit_name: str, root: Path | None = None, unit: Path | None = None) -> float:
    """``systemd-analyze security --offline=true``'s overall exposure (0 safe .. 10 unsafe)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    args = [analyze, "security", "--offline=true", "--no-pager"]
    args += [f"--root={root}", unit_name] if root else [str(unit)]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    match = _OVERALL.search(out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    return float(match.group(1))


COMMON = {
    "Type": ["notify"],
    "NotifyAccess": ["main"],
    "ProtectSystem": ["strict"],
    "ProtectHome": ["yes"],
    "PrivateTmp": ["yes"],
    "PrivateDevices": ["yes"],
    "NoNewPrivileges": ["yes"],
    "CapabilityBoundingSet": [""],
    "AmbientCapabilities": [""],
    "SystemCallArchitectures": ["native"],
    "ProtectKernelTunables": ["yes"],
    "ProtectKernelModules": ["yes"],
    "ProtectKernelLogs": ["yes"],
    "ProtectControlGroups": ["yes"],
    "ProtectClock": ["yes"],
    "ProtectHostname": ["yes"],
    "RestrictNamespaces": ["yes"],
    "LockPersonality": ["yes"],
    "MemoryDenyWriteExecute": ["yes"],
    "RestrictRealtime": ["yes"],
    "RestrictSUIDSGID": ["yes"],
    "RemoveIPC": ["yes"],
    "UMask": ["0077"],
    "ConfigurationDirectory": ["camwarden"],
}


@pytest.mark.parametrize(
    ("unit", "user", "specific"),
    [
        (
            AGENT,
            "camwarden",
            {
                "ExecStart": ["/usr/bin/camwarden-agent run --config /etc/camwarden/agent.toml"],
                "ExecReload": ["/bin/kill -HUP $MAINPID"],
                "StateDirectory": ["camwarden"],
                "MemoryMax": ["160M"],
                "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
                "LoadCredential": ["vault.key:/etc/camwarden/vault.key"],
            },
        ),
        (
            SERVER,
            "camwarden-server",
            {
                "ExecStart": ["/usr/bin/camwarden-server --config /etc/camwarden/server.toml run"],
                "StateDirectory": ["camwarden-server"],
                "ExecReload": [],
            },
        ),
    ],
)
def test_unit_declares_the_hardening(unit: Path, user: str, specific: dict[str, list[str]]) -> None:
    found = fields(unit)
    for key, value in (COMMON | specific).items():
        assert found.get(key, []) == value, key
    assert found["User"] == [user]
    assert found["SystemCallFilter"][0] == "@system-service"
    assert found["WatchdogSec"]
    # no IP allow-list in the packaged unit: camera subnets are site-specific (see the ADR)
    assert "IPAddressDeny" not in found


def test_sysusers_and_tmpfiles_name_the_unit_users() -> None:
    pkg = ROOT / "packaging"
    for package, user in (
        ("camwarden-agent", "camwarden"),
        ("camwarden-server", "camwarden-server"),
    ):
        conf = pkg / "sysusers.d" / f"{package}.conf"
        assert re.search(rf"^u {re.escape(user)} ", conf.read_text(), re.MULTILINE)
    tmp = (pkg / "tmpfiles.d" / "camwarden-agent.conf").read_text()
    assert "d /var/lib/camwarden 0700 camwarden camwarden -" in tmp


def test_agent_exposure_at_most_2(record_property: Callable[[str, object], None]) -> None:
    agent = exposure(AGENT.name, unit=AGENT)
    server = exposure(SERVER.name, unit=SERVER)
    record_property("exposure_agent", agent)
    record_property("exposure_server", server)
    print(f"exposure: camwarden-agent {agent}, camwarden-server {server}")
    assert agent <= 2.0
    assert server <= 2.0


def test_raw_scan_drop_in_adds_only_cap_net_raw(tmp_path: Path) -> None:
    """The drop-in example, installed as an operator would, keeps the unit well under 2.0."""
    system = tmp_path / "lib" / "systemd" / "system"
    dropins = tmp_path / "etc" / "systemd" / "system" / f"{AGENT.name}.d"
    system.mkdir(parents=True)
    dropins.mkdir(parents=True)
    shutil.copy(AGENT, system / AGENT.name)
    shutil.copy(RAW_SCAN, dropins / "raw-scan.conf")
    found = fields(RAW_SCAN)
    assert found["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert found["AmbientCapabilities"] == ["CAP_NET_RAW"]
    with_raw = exposure(AGENT.name, root=tmp_path)
    print(f"exposure with raw-scan drop-in: {with_raw}")
    assert exposure(AGENT.name, unit=AGENT) < with_raw <= 2.0


def test_crl_units_agree_with_the_broker_config() -> None:
    """The path unit watches the file the service copies; the copy is the broker's crlfile."""
    path = fields(SYSTEMD / "camwarden-broker-crl.path")
    service = SYSTEMD / "camwarden-broker-crl.service"
    found = fields(service)
    env = dict(value.split("=", 1) for value in found["Environment"])
    assert path["PathChanged"] == [env["CRL"]]
    assert path["Unit"] == [service.name]
    conf = (ROOT / "packaging" / "mosquitto" / "camwarden.conf").read_text()
    assert f"crlfile {env['DEST']}\n" in conf
    assert found["ExecStart"][-1] == "/bin/systemctl try-reload-or-restart mosquitto.service"
    print(f"exposure: camwarden-broker-crl.service {exposure(service.name, unit=service)}")


@pytest.mark.parametrize("unit", [AGENT, SERVER], ids=lambda unit: unit.stem)
def test_exec_start_is_a_command_line_its_program_accepts(unit: Path) -> None:
    """The collector's unit once put --config after ``run``, which only accepts it first."""
    (line,) = fields(unit)["ExecStart"]
    program, *args = command(line)
    assert program == f"/usr/bin/{unit.stem}"
    parsed = (server_parser() if unit == SERVER else agent_parser()).parse_args(args)
    assert parsed.command == "run"
    assert str(parsed.config) == f"/etc/camwarden/{unit.stem.removeprefix('camwarden-')}.toml"
