"""The audit's plumbing against the lab: INV-04 from the inventory diff, per-camera time limits,
the checks built from config, and ``scan --once --json`` as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import msgspec
import pytest

from agent.audit.auditor import Auditor
from agent.checks.base import CheckContext, CheckLimits, SystemClock
from agent.checks.credentials import DefaultCredentialCheck
from agent.checks.netprobe import NetCheck
from agent.cli import main as agent_main
from agent.config import load_config
from agent.trust.vault import Vault, load_vault_key
from agent.vendors.base import CameraError
from lab.testing import LabFactory
from protocol.messages import Camera, Finding
from tests.agent.audit_lab import AUDIT, audit, prepare, write_config

pytestmark = pytest.mark.integration

STRONG = "Kq7!vR2#mZ9x"
LAB = f"""
[lab]
rtsp = false  # RTSP is one shared server: with it, a closed camera would keep answering 554
[[camera]]
id = "cam-a"
persona = "hikvision"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
lockout = {{threshold = 5, window_s = 1, lock_s = 300}}
[[camera]]
id = "cam-b"
persona = "axis"
users = [{{name = "root", password = "{STRONG}", role = "admin"}}]
[[camera]]
id = "rogue"
persona = "dahua"
"""
NO_GUESSING = AUDIT.replace("guess_default_credentials = true", "guess_default_credentials = false")


async def scan_once(config: Path, *extra: str) -> tuple[int, str, str]:
    """``camwarden-agent scan --once`` in its own process: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "--log-level",
        "WARNING",
        "scan",
        "--once",
        "--config",
        str(config),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def inv04(camera: Camera) -> list[Finding]:
    return [f for f in camera.findings if f.controls == ["INV-04"]]


async def test_inventory_new_unregistered_and_vanished(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    fleet = await lab_fleet(LAB)
    config = prepare(fleet, tmp_path, audit=NO_GUESSING, skip=frozenset({"rogue"}))
    first = await audit(config)
    cameras = {c.camera_id: c for c in first.cameras}
    rogue = f"found-{fleet['rogue'].host}"
    assert set(cameras) == {"cam-a", "cam-b", rogue}
    [a] = inv04(cameras["cam-a"])
    assert (a.code, a.status, a.evidence["change"]) == ("inv.registered", "pass", "new")
    [found] = inv04(cameras[rogue])
    assert (found.code, found.status, found.severity) == ("inv.unregistered", "fail", "high")
    assert found.evidence["new"] is True
    assert "sweep" in str(found.evidence["sources"])
    # an unconfigured host is audited, but never guessed at
    [guess] = [f for f in cameras[rogue].findings if f.controls == ["AUTH-01"]]
    assert guess.status == "not_applicable"
    assert (tmp_path / "state" / "inventory.json").exists()

    await fleet["cam-b"].close()
    second = await audit(config)
    cameras = {c.camera_id: c for c in second.cameras}
    assert cameras["cam-b"].reachable is False
    assert inv04(cameras["cam-b"]) == []
    [a] = inv04(cameras["cam-a"])
    assert a.evidence["change"] == "unchanged"
    [found] = inv04(cameras[rogue])
    assert found.evidence["new"] is False
    vanished = [f for f in second.host_findings if f.code == "inv.vanished"]
    assert [f.evidence["address"] for f in vanished] == [fleet["cam-b"].host]


async def test_a_hanging_camera_never_stalls_the_audit(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    fleet = await lab_fleet(
        LAB.split('[[camera]]\nid = "cam-b"', maxsplit=1)[0]
        + '[[camera]]\nid = "hang"\npersona = "hikvision"\nfaults = {hang = true}\n'
    )
    limits = NO_GUESSING.replace("camera_timeout_s = 240", "camera_timeout_s = 3").replace(
        "request_timeout_s = 1.5", "request_timeout_s = 30"
    )
    config = prepare(fleet, tmp_path, audit=limits, discovery=False)
    started = time.monotonic()
    result = await audit(config)
    elapsed = time.monotonic() - started
    cameras = {c.camera_id: c for c in result.cameras}
    hang = [f for f in cameras["hang"].findings if f.controls != ["INV-04"]]  # it takes TCP
    assert {f.code for f in hang} == {"check.timeout"}
    assert all(f.status == "inconclusive" and f.reason for f in hang)
    assert "the camera's time limit" in str(hang[0].reason)
    assert len(hang) == len(Auditor(config, credentials={}, site_key=None).checks())
    assert cameras["cam-a"].identity.vendor == "hikvision"
    assert elapsed < 30, elapsed


def test_checks_are_built_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        'agent_id = "a"\nsite = "s"\n'
        '[audit]\napproved_accounts = ["admin"]\nguess_default_credentials = true\n'
        '[network]\ncamera_subnets = ["192.0.2.0/24"]\nrouters = ["192.0.2.1"]\n'
        "port_offset = 5\nallowed_ports = [8080]\n"
        '[[cameras]]\nid = "one"\naddress = "192.0.2.10"\napproved_accounts = ["root"]\n'
        '[[cameras]]\nid = "two"\naddress = "192.0.2.11"\n'
    )
    config = load_config(path)
    checks = Auditor(config, credentials={}, site_key=None).checks()
    net = [c for c in checks if isinstance(c, NetCheck)]
    assert net
    assert all(c.settings.in_scope("192.0.2.10") for c in net)
    assert not any(c.settings.in_scope("198.51.100.1") for c in net)
    assert {c.settings.routers for c in net} == {("192.0.2.1",)}
    assert {c.settings.port_offset for c in net} == {5}
    [guess] = [c for c in checks if isinstance(c, DefaultCredentialCheck)]
    assert guess.enabled
    assert [t.camera_id for t in guess.inventory] == ["one", "two"]
    assert guess.inventory[0].ports  # HTTP, HTTPS, RTSP, shifted by port_offset
    accounts = next(c for c in checks if "AUTH-12" in c.controls)
    assert accounts.approved == {"one": ("root",), "two": ("admin",)}  # type: ignore[attr-defined]
    assert type(checks[-1]) is DefaultCredentialCheck  # guessing last


async def test_default_credential_testing_is_on_unless_turned_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ADR 0018: on by default; a site or a single camera turns it off (or a camera back on),
    the finding names which switch; a scan beside the running daemon never guesses."""
    path = tmp_path / "agent.toml"
    head = 'agent_id = "a"\nsite = "s"\n[network]\ncamera_subnets = ["192.0.2.0/24"]\n'
    cameras = (
        '[[cameras]]\nid = "on"\naddress = "192.0.2.10"\n'
        '[[cameras]]\nid = "off"\naddress = "192.0.2.11"\nguess_default_credentials = false\n'
    )
    path.write_text(head + cameras)
    config = load_config(path)
    assert config.audit.guess_default_credentials is True

    async def verdict(auditor: Auditor, camera: str) -> list[tuple[str, object]]:
        [guess] = [c for c in auditor.checks() if isinstance(c, DefaultCredentialCheck)]
        [target] = [t for t in guess.inventory if t.camera_id == camera]
        ctx = CheckContext(target, None, None, CheckLimits(), SystemClock())
        try:
            findings = await guess.run(ctx)
        except CameraError:  # got past the switch: it asks for the camera's adapter
            return []
        return [(f.code, f.evidence.get("switch")) for f in findings]

    auditor = Auditor(config, credentials={}, site_key=None)
    assert await verdict(auditor, "on") == []
    assert await verdict(auditor, "off") == [("auth.guessing_disabled", "camera")]
    busy = Auditor(config, credentials={}, site_key=None, guessing=False)
    assert await verdict(busy, "on") == [("auth.guessing_disabled", "site")]

    path.write_text(
        head.replace("[network]", "[audit]\nguess_default_credentials = false\n[network]")
        + cameras.replace("false", "true")
    )
    site_off = Auditor(load_config(path), credentials={}, site_key=None)
    assert await verdict(site_off, "on") == [("auth.guessing_disabled", "site")]
    assert await verdict(site_off, "off") == []  # the camera's own switch wins

    path.write_text(head + cameras.replace("false", '"no"'))
    assert agent_main(["check-config", "--config", str(path)]) == 2
    assert "guess_default_credentials" in capsys.readouterr().err


async def test_scan_once_json(lab_fleet: LabFactory, tmp_path: Path) -> None:
    fleet = await lab_fleet(LAB)
    config = write_config(fleet, tmp_path, discovery=False)
    prepare(fleet, tmp_path, discovery=False)

    def scan(*extra: str) -> Awaitable[tuple[int, str, str]]:
        return scan_once(config, *extra)

    code, out, err = await scan("--json", "--camera", "rogue")
    assert code == 1, err  # the rogue camera is on its factory password: critical
    document = json.loads(out)
    [camera] = msgspec.convert(document["cameras"], list[Camera])
    assert camera.camera_id == "rogue"
    assert camera.identity.vendor == "dahua"
    failed = {c for f in camera.findings if f.status == "fail" for c in f.controls}
    assert {"AUTH-01", "AUTH-04"} <= failed
    assert msgspec.convert(document["host_findings"], list[Finding])
    assert "admin" not in json.dumps(
        [
            f["evidence"]
            for f in document["cameras"][0]["findings"]
            if f["check"] == "default-credentials"
        ]
    )

    code, out, _err = await scan("--camera", "cam-a")
    assert code in (0, 1)
    assert out.splitlines()[0].split()[:2] == ["CAMERA", "ADDRESS"]
    assert "cam-a" in out

    code, _out, err = await scan("--camera", "nope")
    assert code == 2
    assert "no camera nope" in err


async def test_each_audit_looks_at_the_camera_afresh(lab_fleet: LabFactory, tmp_path: Path) -> None:
    """What one camera's adapters and checks share (``https_only``'s answers, the port states)
    lives for one audit of that camera: the next audit asks the camera the same again, and
    judges it the same."""
    fleet = await lab_fleet(LAB)
    config = prepare(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    node = fleet["cam-b"]  # Axis: identified after the Hikvision and Dahua adapters

    def plain_root() -> int:
        return sum(1 for r in node.camera.log if r.target == "/" and r.interface == "http")

    findings = []
    asked = []
    for _ in range(2):
        before = plain_root()
        result = await audit(config)
        asked.append(plain_root() - before)
        [camera] = [c for c in result.cameras if c.camera_id == "cam-b"]
        findings.append(sorted((f.check, f.code, f.status) for f in camera.findings))
    # once by identification's https_only for all three adapters, once by COM-01
    assert asked == [2, 2]
    assert findings[0] == findings[1]


async def test_a_camera_not_audited_is_never_clean(lab_fleet: LabFactory, tmp_path: Path) -> None:
    """A wrong password in the vault and a configured camera that does not answer: each row says
    so (LOGIN FAILED, UNREACHABLE), the JSON carries the state and its reason, the password
    policy is not passed on a password the camera refused, and ``scan`` exits 3 when nothing else
    is wrong."""
    fleet = await lab_fleet(LAB)
    config = write_config(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    gone = str(fleet["cam-a"].host).rsplit(".", 1)[0] + ".250"  # in the subnet, nothing there
    loaded = prepare(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    vault = Vault(loaded.state_path, load_vault_key(loaded.vault_key_path))
    vault.set("cam-b", "root", "Wrong-but-Strong-7!")  # the camera's password is STRONG
    config.write_text(
        config.read_text()
        + f'[[cameras]]\nid = "gone"\naddress = "{gone}"\ncredentials_ref = "cam-a"\n'
        + f'[[cameras]]\nid = "nocred"\naddress = "{fleet["cam-a"].host}"\n'
    )

    def scan(*extra: str) -> Awaitable[tuple[int, str, str]]:
        return scan_once(config, *extra)

    code, out, err = await scan("--json", "--camera", "cam-b", "--camera", "gone")
    assert code == 1, err  # cam-b has no HTTPS (high): a finding is never hidden behind 3
    cameras = {c.camera_id: c for c in msgspec.convert(json.loads(out)["cameras"], list[Camera])}
    wrong, down = cameras["cam-b"], cameras["gone"]
    assert (wrong.audit, down.audit) == ("login_failed", "unreachable")
    assert wrong.audit_reason
    assert wrong.audit_reason.startswith("identification failed")
    assert down.audit_reason
    [rejected] = [f for f in wrong.findings if "AUTH-04" in f.controls]
    assert (rejected.code, rejected.status) == ("auth.credential_rejected", "fail")
    assert rejected.evidence == {"vault_entry": "cam-b"}
    # what needs the login is left undecided with the reason; network probes still judge
    needs_login = [f for f in wrong.findings if f.code == "check.camera_error"]
    assert needs_login
    assert {f.evidence["error"] for f in needs_login} == {"auth_failed"}

    code, out, _err = await scan("--camera", "cam-b", "--camera", "gone")
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert rows["CAMERA"].split()[:2] == ["CAMERA", "ADDRESS"]
    assert "AUDIT" in rows["CAMERA"]
    assert "LOGIN FAILED" in rows["cam-b"]
    assert "AUTH-04" in rows["cam-b"]
    assert "UNREACHABLE" in rows["gone"]
    assert "(not answering)" in rows["gone"]

    code, out, _err = await scan("--json", "--camera", "nocred")
    [nocred] = msgspec.convert(json.loads(out)["cameras"], list[Camera])
    assert nocred.audit == "login_failed"  # no vault entry: only the banner was read
    assert "no vault credential" in str(nocred.audit_reason)

    code, out, _err = await scan("--camera", "gone")
    assert code == 3  # nothing failed, but nothing was audited either
    assert "UNREACHABLE" in out.splitlines()[1]


async def test_an_identification_that_times_out_is_no_verdict(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    """A camera that takes the connection but answers after the request time limit (a slow
    camera, or a loaded agent machine) is partly audited with the reason and reachable; never
    reported unreachable, and nothing on it is judged."""
    fleet = await lab_fleet(
        LAB.split('[[camera]]\nid = "cam-b"', maxsplit=1)[0]
        + '[[camera]]\nid = "slow"\npersona = "hikvision"\nfaults = {slow_ms = 4000}\n'
    )
    config = prepare(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    result = await audit(config)
    slow = {c.camera_id: c for c in result.cameras}["slow"]
    assert (slow.audit, slow.reachable) == ("partial", True)
    assert "identification" in str(slow.audit_reason)
    judged = [f for f in slow.findings if f.controls != ["INV-04"]]
    assert judged
    assert {f.status for f in judged} <= {"inconclusive", "not_applicable"}
    assert all(f.reason for f in judged if f.status == "inconclusive")
