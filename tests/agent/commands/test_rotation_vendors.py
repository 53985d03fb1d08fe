"""password.rotate through each vendor's own API against its lab persona, with ONVIF user
management turned off on the camera: ISAPI users, Dahua modifyPassword, VAPIX pwdgrp; ONVIF
SetUser for an ONVIF-only camera and as the fallback when the vendor API cannot do it. The
camera's one credential changes (HTTP, ONVIF and RTSP take the new password and refuse the old
one), and no password reaches a log line, the camera's request log or the agent's state."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from joserfc import jwe

from agent.commands.journal import Entry
from agent.probes.rtsp import describe
from agent.vendors.models import Credential
from lab.fleet import CameraNode
from lab.testing import LabFactory
from protocol.commands import PASSWORD_ROTATE
from tests.agent.commands.test_rotation import escrow
from tests.agent.commands.world import PASSWORD, World
from tests.agent.conftest import Collector

pytestmark = pytest.mark.integration

TRAIL = ["accepted", "preflight", "generating", "applying", "verifying", "sealing", "succeeded"]
# persona -> (the agent's vendor key, the request that changed the password in the lab's log)
VENDOR_API = {
    "hikvision": ("hikvision", ("PUT", "/ISAPI/Security/users/1")),
    "dahua": ("dahua", ("GET", "/cgi-bin/userManager.cgi?action=modifyPassword&name=admin")),
    "axis": ("axis", ("GET", "/axis-cgi/pwdgrp.cgi?action=update&user=admin")),
    "onvif-generic": ("onvif", ("POST", "SetUser")),
}


def lab(persona: str, *, onvif_user_management: bool) -> str:
    return f"""
[[camera]]
id = "cam"
persona = "{persona}"
onvif_user_management = {json.dumps(onvif_user_management)}
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}},
         {{name = "op", password = "Op-pass.3", role = "operator"}}]
"""


async def rtsp_status(node: CameraNode, password: str) -> int:
    path = node.spec.persona.stream_uris[0]
    reply = await describe(
        node.host, node.ports["rtsp"], path, timeout_s=5.0, credential=Credential("admin", password)
    )
    return reply.status


def opened(w: World, org: object) -> dict[str, str]:
    sealed = w.results()[-1].details["sealed"]
    assert isinstance(sealed, str)
    payload: dict[str, str] = json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")  # type: ignore[arg-type]
    return payload


@pytest.mark.parametrize("persona", VENDOR_API)
async def test_rotation_through_the_vendor_api(
    lab_fleet: LabFactory,
    collector_tuf: Collector,
    tmp_path: Path,
    persona: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug lines included
    vendor, request = VENDOR_API[persona]
    org, params = escrow()
    fleet = await lab_fleet(lab(persona, onvif_user_management=persona == "onvif-generic"))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["cam"])
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == TRAIL
    new = opened(w, org)["password"]
    final = w.results()[-1].details
    assert final["via"] == vendor
    assert final["verified"] == ("onvif" if vendor == "onvif" else f"{vendor},onvif")
    changes = [r for r in w.log if (r.method, r.target) == request and r.status == 200]
    assert len(changes) == 1
    camera = w.node.camera
    assert camera.users["admin"].password == new
    assert camera.users["op"].password == "Op-pass.3"
    stored = w.credentials.credential("cam")
    assert stored is not None
    assert stored.password == new
    assert (await rtsp_status(w.node, new), await rtsp_status(w.node, PASSWORD)) == (200, 401)
    camera_side = ("lab", "aiohttp.access", "aiohttp.server", "aiohttp.web")
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(camera_side)]
    logged = "\n".join([*ours, *(r.target for r in camera.log)])
    assert "Envelope" not in logged  # no SOAP envelope (SetUser's password) is logged
    assert new not in logged
    assert PASSWORD not in logged
    for path in w.state.rglob("*"):
        if path.is_file():
            assert new.encode() not in path.read_bytes(), path  # only the vault has it


async def test_onvif_set_user_when_the_vendor_api_cannot(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    """Dahua's modifyPassword needs the account's current password: for an account the vault
    does not know, the rotation goes through ONVIF SetUser and is verified there."""
    org, params = escrow()
    params["username"] = "op"
    fleet = await lab_fleet(lab("dahua", onvif_user_management=True))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["cam"])
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    final = w.results()[-1].details
    assert (final["via"], final["verified"]) == ("onvif", "onvif")
    new = opened(w, org)["password"]
    assert w.node.camera.users["op"].password == new
    assert w.node.camera.users["admin"].password == PASSWORD
    assert [r.target for r in w.log if r.target == "SetUser"] == ["SetUser"]
    stored = w.credentials.credential("cam/op")
    assert stored is not None
    assert stored.password == new


async def test_refused_everywhere_fails_cleanly(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    _org, params = escrow()
    params["username"] = "op"
    fleet = await lab_fleet(lab("dahua", onvif_user_management=False))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["cam"])
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:camera_refused"
    assert w.trail(command.command_id)[-2:] == ["applying", "failed:camera_refused"]
    assert w.node.camera.users["op"].password == "Op-pass.3"
    assert w.credentials.credential("cam/op.pending") is None
    assert w.credentials.credential("cam/op") is None


@pytest.mark.parametrize("taken", [True, False])
async def test_resume_at_applying_asks_the_camera(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, taken: bool
) -> None:
    """Killed after the change was sent: the pending password decides. Taken (the vendor API
    accepts it) -> verified and sealed; not taken -> failed cleanly, camera and vault as before."""
    org, params = escrow()
    fleet = await lab_fleet(lab("axis", onvif_user_management=False))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["cam"])
    command = w.command(PASSWORD_ROTATE, params=params)
    token = w.sign(command)
    pending = "Pending-pass.4-xyzXYZ"
    w.credentials.set("cam.pending", "admin", pending)
    if taken:
        w.node.camera.set_password("admin", pending)  # every interface, RTSP too, at once
    entry = Entry(command_id=command.command_id, token=token.decode(), step="applying")
    entry.data["onvif"] = "yes"
    ex = w.executor()
    ex.journal.save(entry)
    assert await ex.resume() == [
        (command.command_id, "succeeded" if taken else "failed:interrupted")
    ]
    assert w.credentials.credential("cam.pending") is None
    stored = w.credentials.credential("cam")
    assert stored is not None
    if taken:
        assert stored.password == pending == opened(w, org)["password"]
        assert w.results()[-1].details["verified"] == "axis,onvif"
    else:
        assert stored.password == PASSWORD == w.node.camera.users["admin"].password
    assert list(ex.journal.pending()) == []
