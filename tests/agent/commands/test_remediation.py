"""settings.apply and settings.restore through the executor (signed commands) against lab
cameras of each vendor: applied and verified (read back, re-audited clean, the listeners of a
disabled service gone), ignored and clamped settings reported as such, a write that fails
half-way rolled back to the exact snapshot, a later restore, and refusals before any write."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import OKPKey

from agent.commands.journal import Entry
from agent.config import NetworkConfig, RotationConfig
from lab.settings import SettingValue, WriteFaults
from lab.testing import LabFactory
from protocol.commands import (
    SETTING_CONTROLS,
    SETTINGS_APPLY,
    SETTINGS_RESTORE,
    RemediateParams,
    RestoreParams,
)
from protocol.messages import Camera, CommandResult
from tests.agent.audit_lab import PORT_SHIFT, subnet
from tests.agent.commands.world import PASSWORD, World, writes
from tests.agent.conftest import Collector
from tests.lab.test_rtsp_front import DAHUA, HIK, rtsp

AXIS = "/axis-media/media.amp"  # the persona's stream path

pytestmark = pytest.mark.integration

NTP = "127.0.0.123"
APPLY_TRAIL = ["accepted", "preflight", "snapshot", "applying", "reading_back", "reaudit"]
# per persona: what its vendor API writes (Axis has no telnet to turn off), and through ONVIF
# what the vendor API cannot (WS-Discovery; Hikvision's DDNS)
VENDOR_FIXES: dict[str, dict[str, SettingValue]] = {
    "hikvision": {"telnet": False, "ssh": False, "upnp": False, "p2p": False, "ntp": True},
    "dahua": {
        "telnet": False,
        "ssh": False,
        "upnp": False,
        "p2p": False,
        "ddns": False,
        "ntp": True,
    },
    "axis": {"ssh": False, "upnp": False, "p2p": False, "ntp": True},
}
FIXES: dict[str, dict[str, SettingValue]] = {
    "hikvision": VENDOR_FIXES["hikvision"] | {"ntp_server": NTP, "ddns": False},
    "dahua": VENDOR_FIXES["dahua"] | {"ntp_server": NTP, "discoverable": False},
    "axis": VENDOR_FIXES["axis"]
    | {"ntp_server": NTP, "time_zone": "Asia/Ho_Chi_Minh", "discoverable": False},
    "onvif-generic": {"discoverable": False, "ddns": False},
}


def lab(persona: str, faults: str = "") -> str:
    """One camera of ``persona`` running every service; ``faults``: its [write_faults] lines."""
    return f"""
[lab]
rtsp = false

[[camera]]
id = "cam"
persona = "{persona}"
telnet = true
ssh = true
upnp = true
p2p = true
ddns = true
manual_time = true
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]

[camera.write_faults]
{faults}
"""


def remediate(changes: Mapping[str, SettingValue]) -> tuple[OKPKey, dict[str, object]]:
    org = OKPKey.generate_key("X25519")
    params = RemediateParams(
        changes=changes,  # type: ignore[arg-type]
        escrow_kid=org.thumbprint(),
        escrow_jwk=json.dumps(org.as_dict(private=False)),
        plan_id=1,
    )
    return org, dict(params.to_params())


def final(w: World) -> CommandResult:
    return w.results()[-1]


def opened(org: OKPKey, sealed: object) -> dict[str, object]:
    assert isinstance(sealed, str)
    payload: dict[str, object] = json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")
    return payload


async def world(lab_fleet: LabFactory, collector: Collector, tmp_path: Path, config: str) -> World:
    """The agent audits the lab's subnet (network checks too) at the lab's shifted ports."""
    fleet = await lab_fleet(config)
    network = NetworkConfig(
        camera_subnets=(str(subnet(fleet)),),
        port_offset=PORT_SHIFT,
        probe_timeout_s=2.0,
        udp_window_s=0.3,
    )
    return World.make(tmp_path, collector.state, collector.base_url, fleet["cam"], network=network)


@pytest.mark.parametrize("persona", FIXES)
async def test_applied_read_back_and_reaudited_clean(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, persona: str
) -> None:
    changes = FIXES[persona]
    w = await world(lab_fleet, collector_tuf, tmp_path, lab(persona))
    before = dict(w.node.camera.settings)
    reports: list[Camera] = []

    async def reaudited(camera: Camera) -> None:
        reports.append(camera)

    ex = w.executor(reaudited)
    org, params = remediate(changes)
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == [*APPLY_TRAIL, "succeeded"]
    camera = w.node.camera
    assert {k: camera.settings[k] for k in changes} == changes  # type: ignore[index]
    details = final(w).details
    assert {k: v for k, v in details.items() if k.startswith("outcome.")} == {
        f"outcome.{k}": "applied" for k in changes
    }
    # the snapshot was sealed before the first write and is what the camera had
    applying = next(r for r in w.results() if r.step == "applying")
    assert applying.details["sealed"] == details["sealed"]
    snapshot = opened(org, details["sealed"])
    # (a manual clock has no NTP server: nothing to keep of it)
    assert snapshot["settings"] == {k: before[k] for k in changes if before[k] != ""}  # type: ignore[index]
    assert snapshot["command_id"] == command.command_id
    # re-audited: the affected controls pass, and the findings went to the daemon's report
    assert details["reaudit.fail"] == ""
    closed = {c for name in changes for c in SETTING_CONTROLS[name]}  # type: ignore[index]
    assert set(str(details["reaudit.pass"]).split(",")) == closed
    assert len(reports) == 1
    failing = {c for f in reports[0].findings if f.status == "fail" for c in f.controls}
    assert not failing & closed


async def test_ignored_and_clamped_settings_are_reported(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    faults = 'ignore = ["ssh"]\nclamp = {ntp_server = "pool.ntp.org"}'
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("dahua", faults))
    _org, params = remediate({"ssh": False, "upnp": False, "ntp": True, "ntp_server": NTP})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:not_applied"
    assert w.trail(command.command_id) == [*APPLY_TRAIL, "failed:not_applied"]
    details = final(w).details
    assert {k: v for k, v in details.items() if k.split(".")[0] in ("outcome", "asked", "got")} == {
        "outcome.ssh": "ignored",
        "asked.ssh": "false",
        "got.ssh": "true",
        "outcome.upnp": "applied",
        "outcome.ntp": "applied",
        "outcome.ntp_server": "clamped",
        "asked.ntp_server": NTP,
        "got.ntp_server": "pool.ntp.org",
    }
    camera = w.node.camera
    assert (camera.settings["ssh"], camera.settings["upnp"]) == (True, False)  # no rollback
    assert details["reaudit.fail"] == "SVC-03"  # the SSH banner still answers
    assert "SVC-04" in str(details["reaudit.pass"]).split(",")


@pytest.mark.parametrize("persona", VENDOR_FIXES)
async def test_a_write_failing_half_way_rolls_back_to_the_exact_snapshot(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, persona: str
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path, lab(persona, "fail_after = 2"))
    camera = w.node.camera
    before = dict(camera.settings)
    _org, params = remediate(FIXES[persona])
    command = w.command(SETTINGS_APPLY, params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:rolled_back"
    trail = w.trail(command.command_id)
    assert trail[-3:] == ["applying", "rolling_back", "failed:rolled_back"]
    assert camera.settings == before
    details = final(w).details
    assert {k for k, v in details.items() if v == "rolled_back"} == {
        f"outcome.{k}" for k in FIXES[persona]
    }
    assert "sealed" in next(r for r in w.results() if r.step == "applying").details
    ssh = await banner_of(w, "ssh")
    assert ssh  # the SSH daemon runs again, as before


async def banner_of(w: World, kind: str) -> bytes:
    """The first bytes a lab service sends (b"" when nothing listens)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(w.node.host, w.node.ports[kind]), 10.0
        )
    except OSError:
        return b""
    try:
        return await asyncio.wait_for(reader.read(64), 10.0)
    finally:
        writer.close()


async def test_the_axis_ftp_server_is_turned_off_and_com06_closes(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """``Network.FTP.Enabled``: ignored and reported, refused half-way and rolled back (the
    FTP server answers again), then applied: its port closes and COM-06 passes."""
    config = lab("axis", 'ignore = ["ftp"]').replace("telnet = true", "telnet = false\nftp = true")
    w = await world(lab_fleet, collector_tuf, tmp_path, config)
    camera, ex = w.node.camera, w.executor()
    before = dict(camera.settings)
    assert (await banner_of(w, "ftp")).startswith(b"220 ")
    _org, params = remediate({"ftp": False})
    ignored = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(ignored)) == "failed:not_applied"
    details = final(w).details
    assert (details["outcome.ftp"], details["asked.ftp"], details["got.ftp"]) == (
        "ignored",
        "false",
        "true",
    )
    assert details["reaudit.fail"] == "COM-06"  # the FTP server still answers

    camera.write_faults = WriteFaults(fail_after=1)  # FTP applied, then UPnP refused
    _org, params = remediate({"ftp": False, "upnp": False})
    half_way = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(half_way)) == "failed:rolled_back"
    assert camera.settings == before
    assert (await banner_of(w, "ftp")).startswith(b"220 ")

    camera.write_faults = WriteFaults()
    _org, params = remediate({"ftp": False})
    applied = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(applied)) == "succeeded"
    details = final(w).details
    assert details["outcome.ftp"] == "applied"
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("COM-06", "")
    assert (camera.settings["ftp"], await banner_of(w, "ftp")) == (False, b"")


async def test_a_later_restore_puts_the_snapshot_back(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("hikvision"))
    camera = w.node.camera
    before = dict(camera.settings)
    _org, params = remediate({"telnet": False, "ssh": False})
    applied = w.command(SETTINGS_APPLY, params=params)
    ex = w.executor()
    assert await ex.submit(w.sign(applied)) == "succeeded"
    assert (await banner_of(w, "telnet"), camera.settings["telnet"]) == (b"", False)
    restore = RestoreParams(original=applied.command_id, plan_id=1).to_params()
    command = w.command(SETTINGS_RESTORE, params=dict(restore))
    assert await ex.submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == [
        "accepted",
        "preflight",
        "applying",
        "reading_back",
        "reaudit",
        "succeeded",
    ]
    assert camera.settings == before
    details = final(w).details
    assert (details["outcome.telnet"], details["outcome.ssh"]) == ("applied", "applied")
    assert await banner_of(w, "telnet")  # telnet answers again
    assert "SVC-02" in str(details["reaudit.fail"]).split(",")


async def test_refusals_come_before_any_write(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """A camera outside the agent's inventory, a setting the vendor API cannot write, and a
    restore of a snapshot this agent does not keep: refused, the camera untouched."""
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("axis"))
    ex = w.executor()
    _org, params = remediate({"ssh": False})
    foreign = w.command(SETTINGS_APPLY, params=params, camera_id="not-ours")
    assert await ex.submit(w.sign(foreign)) == "unknown_camera"
    _org, params = remediate({"telnet": False, "ssh": False})
    unsupported = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(unsupported)) == "rejected:unsupported_setting"
    assert final(w).details == {"outcome.telnet": "unsupported"}
    # in the vocabulary; Axis's APIs name no switch for anonymous ONVIF callers
    _org, params = remediate({"onvif_auth": True})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "rejected:unsupported_setting"
    restore = RestoreParams(original=unsupported.command_id, plan_id=1).to_params()
    command = w.command(SETTINGS_RESTORE, params=dict(restore))
    assert await ex.submit(w.sign(command)) == "rejected:snapshot_unknown"
    identification = "/axis-cgi/basicdeviceinfo.cgi"  # a JSON read, POSTed
    assert [r for r in writes(w.log) if r.target != identification] == []
    assert w.node.camera.settings["ssh"] is True


async def test_a_restart_in_the_middle_of_a_change_rolls_back(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """The agent stopped between the writes and the read-back (the journal says
    ``reading_back``): on start it writes the kept snapshot back and says so."""
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("hikvision"))
    camera = w.node.camera
    before = dict(camera.settings)
    _org, params = remediate({"telnet": False, "upnp": False})
    command = w.command(SETTINGS_APPLY, params=params)
    token = w.sign(command)
    assert await w.executor().submit(token) == "succeeded"  # keeps the snapshot, changes
    assert (camera.settings["telnet"], camera.settings["upnp"]) == (False, False)
    ex = w.executor()
    ex.journal.save(Entry(command_id=command.command_id, token=token.decode(), step="reading_back"))
    assert await ex.resume() == [(command.command_id, "failed:rolled_back")]
    assert camera.settings == before
    assert w.trail(command.command_id)[-2:] == ["rolling_back", "failed:rolled_back"]
    assert await banner_of(w, "telnet")
    assert list(ex.journal.pending()) == []


@pytest.mark.parametrize("persona", ["hikvision", "dahua", "axis"])
async def test_the_snmp_community_changes_and_stays_secret(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, persona: str
) -> None:
    """COM-05: the well-known community replaced (ISAPI SNMPv2c, Dahua's SNMP table, Axis
    SNMP.V1ReadCommunity); the new
    one is in no result, only the old one in the sealed snapshot; then SNMP off altogether."""
    config = lab(persona).replace("ddns = true", "ddns = true\nsnmp_public = true")
    w = await world(lab_fleet, collector_tuf, tmp_path, config)
    community = "Str0ng-Comm.1"
    org, params = remediate({"snmp_community": community})
    command = w.command(SETTINGS_APPLY, params=params)
    ex = w.executor()
    assert await ex.submit(w.sign(command)) == "succeeded"
    details = final(w).details
    assert details["outcome.snmp_community"] == "applied"
    assert details["reaudit.pass"] == "COM-05"
    assert opened(org, details["sealed"])["settings"] == {"snmp_community": "public"}
    assert w.node.camera.settings["snmp_community"] == community
    assert not [r for r in w.results() if community in json.dumps(r.details)]
    _org, params = remediate({"snmp": False})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "succeeded"
    assert (w.node.camera.settings["snmp"], final(w).details["reaudit.pass"]) == (False, "COM-05")


async def test_a_snapshot_is_sealed_only_to_the_organisations_key(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """``[rotation] escrow_kid`` pins the organisation's key for remediation too: another key,
    or a JWK that is not the one named, is refused before the camera is asked anything."""
    fleet = await lab_fleet(lab("dahua"))
    pinned = OKPKey.generate_key("X25519").thumbprint()
    w = World.make(
        tmp_path,
        collector_tuf.state,
        collector_tuf.base_url,
        fleet["cam"],
        rotation=RotationConfig(escrow_kid=pinned),
    )
    ex = w.executor()
    _org, params = remediate({"ssh": False})
    foreign = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(foreign)) == "rejected:escrow_key_not_pinned"
    params["escrow_kid"] = pinned
    mismatch = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(mismatch)) == "rejected:escrow_key_mismatch"
    assert w.log == []
    assert w.node.camera.settings["ssh"] is True


async def test_digest_only_closes_auth07_auth09_and_the_camera_refuses_basic(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-07, AUTH-09: a Hikvision camera taking Digest and Basic on its web interface and on
    RTSP (webCertificate and RTSPCertificate "digest/basic"; the agent logs in with Digest) set
    to Digest only; the re-audit passes and Basic is refused for real on both."""
    config = lab("hikvision").replace("rtsp = false", "rtsp = true")
    seeded = 'rtsp_auth = "basic"\nhttp_basic_and_digest = true'
    w = await world(
        lab_fleet, collector_tuf, tmp_path, config.replace("ddns = true", f"ddns = true\n{seeded}")
    )
    node = w.node
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    describe = (
        f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{HIK} RTSP/1.0\r\nCSeq: 2\r\n"
        f"Authorization: Basic {basic}\r\n\r\n"
    )
    anonymous = describe.replace(f"Authorization: Basic {basic}\r\n", "")
    web = f"http://{node.host}:{node.ports['http']}/ISAPI/System/deviceInfo"
    async with httpx.AsyncClient(timeout=10) as client:
        offered = await rtsp(node.host, node.ports["rtsp"], anonymous)
        assert "WWW-Authenticate: Basic" in offered
        assert "WWW-Authenticate: Digest" in offered
        taken = await rtsp(node.host, node.ports["rtsp"], describe)
        assert taken.startswith("RTSP/1.0 200 OK\r\n")  # Basic taken before the change
        challenged = await client.get(web)
        assert sorted(v.split()[0] for v in challenged.headers.get_list("WWW-Authenticate")) == [
            "Basic",
            "Digest",
        ]
        assert (await client.get(web, auth=("admin", PASSWORD))).status_code == 200
        org, params = remediate({"http_digest_only": True, "rtsp_digest_only": True})
        command = w.command(SETTINGS_APPLY, params=params)
        assert await w.executor().submit(w.sign(command)) == "succeeded"
        details = final(w).details
        assert details["outcome.http_digest_only"] == "applied"
        assert details["outcome.rtsp_digest_only"] == "applied"
        assert set(str(details["reaudit.pass"]).split(",")) == {"AUTH-07", "AUTH-09"}
        assert details["reaudit.fail"] == ""
        assert opened(org, details["sealed"])["settings"] == {
            "http_digest_only": False,
            "rtsp_digest_only": False,
        }
        challenge = await rtsp(node.host, node.ports["rtsp"], anonymous)
        assert "WWW-Authenticate: Digest" in challenge
        assert "Basic" not in challenge
        refused = await rtsp(node.host, node.ports["rtsp"], describe)
        assert refused.startswith("RTSP/1.0 401 Unauthorized\r\n")
        assert (node.camera.log[-1].auth, node.camera.log[-1].status) == ("basic", 401)
        challenged = await client.get(web)
        assert challenged.headers.get_list("WWW-Authenticate")[0].startswith("Digest ")
        assert len(challenged.headers.get_list("WWW-Authenticate")) == 1
        assert (await client.get(web, auth=("admin", PASSWORD))).status_code == 401
        digest = httpx.DigestAuth("admin", PASSWORD)
        assert (await client.get(web, auth=digest)).status_code == 200


async def _vietnam_time_applied(w: World) -> None:
    """A zone with summer time refused before any write; then NTP on and Asia/Ho_Chi_Minh
    applied, re-audited clean, the snapshot the old values, the camera keeping UTC+7."""
    ex = w.executor()
    _org, params = remediate({"time_zone": "Europe/Paris"})
    assert await ex.submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == (
        "rejected:unsupported_setting"
    )
    assert final(w).details == {"outcome.time_zone": "unsupported"}
    assert writes(w.log) == []
    org, params = remediate({"ntp": True, "time_zone": "Asia/Ho_Chi_Minh"})
    assert await ex.submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == "succeeded"
    details = final(w).details
    assert (details["outcome.ntp"], details["outcome.time_zone"]) == ("applied", "applied")
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("LOG-01", "")
    assert opened(org, details["sealed"])["settings"] == {"ntp": False, "time_zone": "UTC"}
    assert w.node.camera.settings["time_zone"] == "Etc/GMT-7"


async def test_a_hikvision_time_zone_is_written_as_its_fixed_offset(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """LOG-01: Asia/Ho_Chi_Minh goes to ISAPI Time as "CST-7:00:00" and is read back as the
    fixed offset the camera keeps ("Etc/GMT-7"); the camera's local clock moves to UTC+7 and
    the re-audit still finds it right. A zone with summer time is refused before any write."""
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("hikvision"))
    await _vietnam_time_applied(w)
    camera = w.node.camera
    url = f"http://{w.node.host}:{w.node.ports['http']}/ISAPI/System/time"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url, auth=httpx.DigestAuth("admin", PASSWORD))
    assert "<timeZone>CST-7:00:00</timeZone>" in answer.text
    local = answer.text.split("<localTime>")[1].split("</localTime>")[0]
    assert local.endswith("+07:00")
    assert abs((datetime.fromisoformat(local) - camera.now()).total_seconds()) < 60


async def test_a_dahua_time_zone_is_written_as_its_table_index(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """LOG-01: Asia/Ho_Chi_Minh goes to configManager as NTP.TimeZone=12 (GMT+07:00 in
    Dahua's table) and is read back as "Etc/GMT-7"; the camera's clock, answered in its own
    zone, moves to UTC+7 and the re-audit still finds it right. A zone with summer time is
    refused before any write."""
    w = await world(lab_fleet, collector_tuf, tmp_path, lab("dahua"))
    await _vietnam_time_applied(w)
    camera = w.node.camera
    base = f"http://{w.node.host}:{w.node.ports['http']}/cgi-bin"
    async with httpx.AsyncClient(timeout=10) as client:
        auth = httpx.DigestAuth("admin", PASSWORD)
        ntp = await client.get(f"{base}/configManager.cgi?action=getConfig&name=NTP", auth=auth)
        clock = await client.get(f"{base}/global.cgi?action=getCurrentTime", auth=auth)
    assert "table.NTP.TimeZone=12\r\n" in ntp.text
    local = datetime.strptime(clock.text.strip().removeprefix("result="), "%Y-%m-%d %H:%M:%S")
    utc_now = camera.now().replace(tzinfo=None)
    assert abs((local - utc_now).total_seconds() - 7 * 3600) < 60


async def test_a_dahua_time_zone_ignored_clamped_or_failing_half_way(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """A Dahua camera that keeps its old zone, or another one, is reported with what it kept;
    one that refuses the zone after taking NTP is rolled back to the exact snapshot."""
    config = lab("dahua", 'ignore = ["time_zone"]')
    w = await world(lab_fleet, collector_tuf, tmp_path, config)
    camera = w.node.camera
    before = dict(camera.settings)
    ex = w.executor()
    _org, params = remediate({"time_zone": "Asia/Ho_Chi_Minh"})
    assert await ex.submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == (
        "failed:not_applied"
    )
    details = final(w).details
    assert (details["outcome.time_zone"], details["got.time_zone"]) == ("ignored", "UTC")
    assert details["asked.time_zone"] == "Etc/GMT-7"  # as the camera would keep it

    camera.write_faults = WriteFaults(clamp={"time_zone": "Etc/GMT-8"})
    assert await ex.submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == (
        "failed:not_applied"
    )
    details = final(w).details
    assert (details["outcome.time_zone"], details["got.time_zone"]) == ("clamped", "Etc/GMT-8")

    camera.write_faults = WriteFaults(fail_after=1)
    camera.settings["time_zone"] = "UTC"
    _org, params = remediate({"ntp": True, "time_zone": "Asia/Ho_Chi_Minh"})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "failed:rolled_back"
    assert w.trail(command.command_id)[-3:] == ["applying", "rolling_back", "failed:rolled_back"]
    details = final(w).details
    assert (details["outcome.ntp"], details["outcome.time_zone"]) == ("rolled_back", "rolled_back")
    assert camera.settings == before


async def test_dahua_onvif_login_check_closes_auth10(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-10: a Dahua camera answering ONVIF GetUsers without credentials is set to ask for
    them (configManager UserGlobal.OnvifLoginCheck); the re-audit passes and an anonymous
    GetUsers is refused for real."""
    config = lab("dahua").replace("ddns = true", 'ddns = true\nonvif_noauth_ops = ["GetUsers"]')
    w = await world(lab_fleet, collector_tuf, tmp_path, config)
    node = w.node
    url = f"http://{node.host}:{node.ports['http']}/onvif/device_service"
    envelope = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<GetUsers xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
    )
    headers = {"Content-Type": "application/soap+xml"}
    async with httpx.AsyncClient(timeout=10) as client:
        answered = await client.post(url, content=envelope, headers=headers)
        assert answered.status_code == 200  # anonymous before the change
        org, params = remediate({"onvif_auth": True})
        command = w.command(SETTINGS_APPLY, params=params)
        assert await w.executor().submit(w.sign(command)) == "succeeded"
        details = final(w).details
        assert details["outcome.onvif_auth"] == "applied"
        assert (details["reaudit.pass"], details["reaudit.fail"]) == ("AUTH-10", "")
        assert opened(org, details["sealed"])["settings"] == {"onvif_auth": False}
        assert node.camera.settings["onvif_auth"] is True
        refused = await client.post(url, content=envelope, headers=headers)
    assert refused.status_code in (400, 401)
    assert "NotAuthorized" in refused.text


async def test_dahua_rtsp_authentication_closes_auth08(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-08: a Dahua camera streaming without credentials (configManager RTSP.AuthType
    "disable") is set to ask for them (Digest); the re-audit passes and an anonymous DESCRIBE
    is refused for real."""
    config = lab("dahua").replace("rtsp = false", "rtsp = true")
    w = await world(
        lab_fleet,
        collector_tuf,
        tmp_path,
        config.replace("ddns = true", 'ddns = true\nrtsp_auth = "none"'),
    )
    node = w.node
    anonymous = (
        f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{DAHUA} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    )
    streamed = await rtsp(node.host, node.ports["rtsp"], anonymous)
    assert streamed.startswith("RTSP/1.0 200 OK\r\n")  # anonymous before the change
    org, params = remediate({"rtsp_auth": True})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    details = final(w).details
    assert details["outcome.rtsp_auth"] == "applied"
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("AUTH-08", "")
    assert opened(org, details["sealed"])["settings"] == {"rtsp_auth": False}
    assert node.camera.settings["rtsp_auth"] is True
    refused = await rtsp(node.host, node.ports["rtsp"], anonymous)
    assert refused.startswith("RTSP/1.0 401 Unauthorized\r\n")
    assert "WWW-Authenticate: Digest" in refused


def hik_anonymous_rtsp() -> str:
    """A Hikvision camera streaming without credentials (its main stream channel's
    Transport/Security/enabled false), RTSP served."""
    config = lab("hikvision").replace("rtsp = false", "rtsp = true")
    return config.replace("ddns = true", 'ddns = true\nrtsp_auth = "none"')


async def test_hikvision_rtsp_authentication_closes_auth08(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-08: a Hikvision camera streaming without credentials is set to ask for them
    (ISAPI Streaming/channels/101 Transport/Security/enabled); the re-audit passes and an
    anonymous DESCRIBE is refused for real."""
    w = await world(lab_fleet, collector_tuf, tmp_path, hik_anonymous_rtsp())
    node = w.node
    anonymous = f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{HIK} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    streamed = await rtsp(node.host, node.ports["rtsp"], anonymous)
    assert streamed.startswith("RTSP/1.0 200 OK\r\n")  # anonymous before the change
    org, params = remediate({"rtsp_auth": True})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    details = final(w).details
    assert details["outcome.rtsp_auth"] == "applied"
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("AUTH-08", "")
    assert opened(org, details["sealed"])["settings"] == {"rtsp_auth": False}
    assert node.camera.settings["rtsp_auth"] is True
    refused = await rtsp(node.host, node.ports["rtsp"], anonymous)
    assert refused.startswith("RTSP/1.0 401 Unauthorized\r\n")
    assert "WWW-Authenticate: Digest" in refused


@pytest.mark.parametrize("fault", ["ignore", "fail_half_way"])
async def test_hikvision_rtsp_authentication_ignored_or_failing_half_way(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, fault: str
) -> None:
    """A camera that answers OK and keeps streaming to anyone is reported (ignored, AUTH-08
    still failing); one that refuses the next write after RTSP authentication was switched on
    is rolled back to its exact snapshot, anonymous streams and all."""
    faults = 'ignore = ["rtsp_auth"]' if fault == "ignore" else "fail_after = 1"
    config = hik_anonymous_rtsp().replace(
        "[camera.write_faults]\n", f"[camera.write_faults]\n{faults}"
    )
    w = await world(lab_fleet, collector_tuf, tmp_path, config)
    node, camera = w.node, w.node.camera
    before = dict(camera.settings)
    _org, params = remediate({"rtsp_auth": True, "telnet": False})
    command = w.command(SETTINGS_APPLY, params=params)
    details: Mapping[str, object]
    if fault == "ignore":
        assert await w.executor().submit(w.sign(command)) == "failed:not_applied"
        details = final(w).details
        assert (details["outcome.rtsp_auth"], details["outcome.telnet"]) == ("ignored", "applied")
        assert (details["asked.rtsp_auth"], details["got.rtsp_auth"]) == ("true", "false")
        assert details["reaudit.fail"] == "AUTH-08"  # still streaming to anyone
        assert camera.settings["rtsp_auth"] is False
    else:
        assert await w.executor().submit(w.sign(command)) == "failed:rolled_back"
        assert w.trail(command.command_id)[-2:] == ["rolling_back", "failed:rolled_back"]
        details = final(w).details
        assert (details["outcome.rtsp_auth"], details["outcome.telnet"]) == (
            "rolled_back",
            "rolled_back",
        )
        assert camera.settings == before  # RTSP authentication off again, as it was
    anonymous = f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{HIK} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    assert (await rtsp(node.host, node.ports["rtsp"], anonymous)).startswith("RTSP/1.0 200 OK\r\n")


async def test_dahua_digest_only_rtsp_closes_auth09_or_rolls_back(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-09: a Dahua camera offering Basic on RTSP (configManager RTSP.AuthType "basic") is
    set to Digest only ("digest"); the re-audit passes and a DESCRIBE is challenged with Digest
    alone. A change that fails half-way goes back to the exact snapshot, Basic offered again."""
    config = lab("dahua", "fail_after = 1").replace("rtsp = false", "rtsp = true")
    w = await world(
        lab_fleet,
        collector_tuf,
        tmp_path,
        config.replace("ddns = true", 'ddns = true\nrtsp_auth = "basic"'),
    )
    node, camera = w.node, w.node.camera
    before = dict(camera.settings)
    describe = (
        f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{DAHUA} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    )
    challenged = await rtsp(node.host, node.ports["rtsp"], describe)
    assert "WWW-Authenticate: Basic" in challenged  # Basic offered before the change
    ex = w.executor()
    _org, params = remediate({"ssh": False, "rtsp_digest_only": True})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "failed:rolled_back"
    details = final(w).details
    assert (details["outcome.ssh"], details["outcome.rtsp_digest_only"]) == (
        "rolled_back",
        "rolled_back",
    )
    assert camera.settings == before
    org, params = remediate({"rtsp_digest_only": True})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "succeeded"
    details = final(w).details
    assert details["outcome.rtsp_digest_only"] == "applied"
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("AUTH-09", "")
    assert opened(org, details["sealed"])["settings"] == {"rtsp_digest_only": False}
    assert (camera.settings["rtsp_digest_only"], camera.settings["rtsp_auth"]) == (True, True)
    challenged = await rtsp(node.host, node.ports["rtsp"], describe)
    assert challenged.startswith("RTSP/1.0 401 Unauthorized\r\n")
    assert "WWW-Authenticate: Digest" in challenged
    assert "WWW-Authenticate: Basic" not in challenged


def axis_seeded(seeds: str, faults: str = "") -> str:
    """One Axis camera with RTSP, seeded with ``seeds`` (camera keys)."""
    config = lab("axis", faults).replace("rtsp = false", "rtsp = true")
    return config.replace("ddns = true", f"ddns = true\n{seeds}")


async def test_axis_digest_only_and_snmp_off_close_auth07_auth09_com05(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-07, AUTH-09, COM-05 on Axis: a camera taking Basic on its web and RTSP servers
    (Network.HTTP.AuthenticationPolicy "basic_digest", one parameter for both) with SNMP v1/v2c
    answering "public" is set to Digest only and SNMP off in one param.cgi update; the re-audit
    passes, Basic is refused for real; a restore puts the snapshot back."""
    seeds = 'rtsp_auth = "basic"\nhttp_basic_and_digest = true\nsnmp_public = true'
    w = await world(lab_fleet, collector_tuf, tmp_path, axis_seeded(seeds))
    node, camera = w.node, w.node.camera
    before = dict(camera.settings)
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    describe = (
        f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{AXIS} RTSP/1.0\r\nCSeq: 2\r\n"
        f"Authorization: Basic {basic}\r\n\r\n"
    )
    web = f"http://{node.host}:{node.ports['http']}/axis-cgi/param.cgi?action=list&group=Brand"
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await rtsp(node.host, node.ports["rtsp"], describe)).startswith("RTSP/1.0 200 OK")
        assert (await client.get(web, auth=("admin", PASSWORD))).status_code == 200
        changes = {"http_digest_only": True, "rtsp_digest_only": True, "snmp": False}
        org, params = remediate(changes)
        applied = w.command(SETTINGS_APPLY, params=params)
        ex = w.executor()
        assert await ex.submit(w.sign(applied)) == "succeeded"
        details = final(w).details
        assert {k: details[f"outcome.{k}"] for k in changes} == dict.fromkeys(changes, "applied")
        assert set(str(details["reaudit.pass"]).split(",")) == {"AUTH-07", "AUTH-09", "COM-05"}
        assert details["reaudit.fail"] == ""
        assert opened(org, details["sealed"])["settings"] == {
            "http_digest_only": False,
            "rtsp_digest_only": False,
            "snmp": True,
        }
        refused = await rtsp(node.host, node.ports["rtsp"], describe)
        assert refused.startswith("RTSP/1.0 401 Unauthorized\r\n")
        assert "Basic" not in refused
        assert (await client.get(web, auth=("admin", PASSWORD))).status_code == 401
        assert (await client.get(web, auth=httpx.DigestAuth("admin", PASSWORD))).status_code == 200
        restore = RestoreParams(original=applied.command_id, plan_id=1).to_params()
        assert await ex.submit(w.sign(w.command(SETTINGS_RESTORE, params=dict(restore)))) == (
            "succeeded"
        )
        assert camera.settings == before
        assert (await client.get(web, auth=("admin", PASSWORD))).status_code == 200


async def test_axis_rtsp_viewers_asked_for_a_password_closes_auth08(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """AUTH-08 on Axis: anonymous RTSP viewers (Network.RTSP.ProtViewer "anonymous") are asked
    for a password; the re-audit passes and an anonymous DESCRIBE is refused for real."""
    w = await world(lab_fleet, collector_tuf, tmp_path, axis_seeded('rtsp_auth = "none"'))
    node = w.node
    anonymous = (
        f"DESCRIBE rtsp://{node.host}:{node.ports['rtsp']}{AXIS} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    )
    assert (await rtsp(node.host, node.ports["rtsp"], anonymous)).startswith("RTSP/1.0 200 OK")
    org, params = remediate({"rtsp_auth": True})
    assert await w.executor().submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == (
        "succeeded"
    )
    details = final(w).details
    assert details["outcome.rtsp_auth"] == "applied"
    assert (details["reaudit.pass"], details["reaudit.fail"]) == ("AUTH-08", "")
    assert opened(org, details["sealed"])["settings"] == {"rtsp_auth": False}
    refused = await rtsp(node.host, node.ports["rtsp"], anonymous)
    assert refused.startswith("RTSP/1.0 401 Unauthorized\r\n")


async def test_axis_ignored_clamped_and_half_way_are_reported_and_rolled_back(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """Axis: a ProtViewer write answered OK and not kept is ``ignored``, a community stored as
    another is ``clamped`` (what it became never in the result); a write refused half-way
    (the camera seeded to fail) is rolled back to the exact snapshot."""
    seeds = 'rtsp_auth = "none"\nsnmp_public = true'
    faults = 'ignore = ["rtsp_auth"]\nclamp = {snmp_community = "clamped-c0mm1"}'
    w = await world(lab_fleet, collector_tuf, tmp_path, axis_seeded(seeds, faults))
    camera = w.node.camera
    ex = w.executor()
    _org, params = remediate({"rtsp_auth": True, "snmp_community": "Str0ng-Comm.1"})
    assert await ex.submit(w.sign(w.command(SETTINGS_APPLY, params=params))) == (
        "failed:not_applied"
    )
    details = final(w).details
    assert (details["outcome.rtsp_auth"], details["got.rtsp_auth"]) == ("ignored", "false")
    assert details["outcome.snmp_community"] == "clamped"
    assert "got.snmp_community" not in details
    assert not [r for r in w.results() if "clamped-c0mm1" in json.dumps(r.details)]
    assert "AUTH-08" in str(details["reaudit.fail"]).split(",")

    camera.write_faults = WriteFaults(fail_after=1)
    before = dict(camera.settings)
    _org, params = remediate({"rtsp_auth": True, "snmp": False})
    command = w.command(SETTINGS_APPLY, params=params)
    assert await ex.submit(w.sign(command)) == "failed:rolled_back"
    assert w.trail(command.command_id)[-2:] == ["rolling_back", "failed:rolled_back"]
    assert camera.settings == before
    details = final(w).details
    assert (details["outcome.rtsp_auth"], details["outcome.snmp"]) == ("rolled_back", "rolled_back")
