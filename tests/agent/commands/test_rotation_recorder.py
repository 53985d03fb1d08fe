"""password.rotate of a camera on a recorder's channel, against the lab's Hikvision and Dahua
NVR personas: the recorder stores the new password and lists the channel online again; a
rotation the recorder would not follow is refused before the camera is touched; a recorder
that does not follow gets the camera's old password set back (or, when that fails too, the
camera keeps the new one, sealed and handed over). The recorder's own password rotates like a
camera's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import msgspec
import pytest
from joserfc import jwe

from agent.vendors.versions import api_vendor, canonical_vendor
from lab.camera import Channel
from lab.fleet import CameraNode
from lab.testing import LabFactory
from protocol.commands import PASSWORD_ROTATE
from tests.agent.commands.test_rotation import escrow
from tests.agent.commands.world import PASSWORD, World
from tests.agent.conftest import Collector

pytestmark = pytest.mark.integration

TRAIL = [
    "accepted", "preflight", "generating", "applying", "verifying", "recorder", "sealing",
    "succeeded",
]  # fmt: skip
# recorder persona -> camera persona, the request that stored the channel login (path prefix)
RECORDERS = {
    "hikvision-nvr": ("hikvision", ("PUT", "/ISAPI/ContentMgmt/InputProxy/channels/1")),
    "dahua-nvr": ("dahua", ("GET", "/cgi-bin/configManager.cgi?action=setConfig")),
    # an OEM brand configured as such: the maker's API (Dahua's) stores the login
    "kbvision-nvr": ("kbvision", ("GET", "/cgi-bin/configManager.cgi?action=setConfig")),
}


def lab(recorder: str, camera: str) -> str:
    return f"""
[lab]
rtsp = false

[[camera]]
id = "nvr"
persona = "{recorder}"
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]

[[camera]]
id = "cam"
persona = "{camera}"
recorder = "nvr"
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
"""


def world(
    tmp_path: Path, collector: Collector, cam: CameraNode, nvr: CameraNode, *, with_login: bool
) -> World:
    """The agent knows the camera on the recorder and (``with_login``) the recorder's login;
    both are configured with their brand (``kbvision``, not ``dahua``)."""
    w = World.make(tmp_path, collector.state, collector.base_url, cam, others=[nvr])
    brands = {node.id: canonical_vendor(node.vendor) for node in (cam, nvr)}
    cameras = tuple(
        msgspec.structs.replace(
            c, vendor=brands[c.id], recorder="nvr" if c.id == "cam" else c.recorder
        )
        for c in w.config.cameras
    )
    w.config = msgspec.structs.replace(
        w.config,
        cameras=cameras,
        rotation=msgspec.structs.replace(w.config.rotation, recorder_poll_s=0.2),
    )
    if not with_login:
        w.credentials.delete("nvr")
    assert api_vendor(nvr.vendor) in ("hikvision", "dahua")
    return w


def seat(nvr: CameraNode) -> Channel:
    return nvr.camera.channels[0]


def opened(w: World, org: object) -> dict[str, str]:
    sealed = w.results()[-1].details["sealed"]
    assert isinstance(sealed, str)
    return json.loads(jwe.decrypt_compact(sealed, org).plaintext or b"")  # type: ignore[arg-type,no-any-return]


@pytest.mark.parametrize("recorder", RECORDERS)
async def test_the_recorder_follows_the_new_password(
    lab_fleet: LabFactory,
    collector_tuf: Collector,
    tmp_path: Path,
    recorder: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    persona, request = RECORDERS[recorder]
    org, params = escrow()
    fleet = await lab_fleet(lab(recorder, persona))
    nvr = fleet["nvr"]
    w = world(tmp_path, collector_tuf, fleet["cam"], nvr, with_login=True)
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == TRAIL
    new = opened(w, org)["password"]
    final = w.results()[-1].details
    assert (final["recorder"], final["recorder_channel"]) == ("nvr", 1)
    assert w.node.camera.users["admin"].password == new
    assert (seat(nvr).password, seat(nvr).online) == (new, True)
    stored = [r for r in nvr.camera.log if (r.method, r.target.split("&")[0]) == request]
    assert [r.status for r in stored] == [200]
    assert w.credentials.credential("cam.previous") is None
    camera_side = ("lab", "aiohttp.access", "aiohttp.server", "aiohttp.web")
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(camera_side)]
    logged = "\n".join([*ours, *(r.target for r in nvr.camera.log)])
    assert new not in logged
    assert PASSWORD not in logged


async def test_refused_without_the_recorders_login(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    _org, params = escrow()
    fleet = await lab_fleet(lab("hikvision-nvr", "hikvision"))
    w = world(tmp_path, collector_tuf, fleet["cam"], fleet["nvr"], with_login=False)
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "rejected:recorder_no_credential"
    assert w.trail(command.command_id)[-2:] == ["preflight", "rejected:recorder_no_credential"]
    assert w.node.camera.users["admin"].password == PASSWORD
    assert seat(fleet["nvr"]).online


async def test_refused_when_the_recorder_does_not_answer(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    _org, params = escrow()
    fleet = await lab_fleet(lab("dahua-nvr", "dahua"))
    nvr = fleet["nvr"]
    w = world(tmp_path, collector_tuf, fleet["cam"], nvr, with_login=True)
    await nvr.close()
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "rejected:recorder_unreachable"
    assert w.node.camera.users["admin"].password == PASSWORD
    assert w.credentials.credential("cam.pending") is None


async def test_a_recorder_that_does_not_follow_gets_the_old_password_back(
    lab_fleet: LabFactory,
    collector_tuf: Collector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _org, params = escrow()
    fleet = await lab_fleet(lab("hikvision-nvr", "hikvision"))
    nvr = fleet["nvr"]
    w = world(tmp_path, collector_tuf, fleet["cam"], nvr, with_login=True)
    monkeypatch.setattr(nvr.camera, "set_channel", lambda _n, _p: False)  # the NVR refuses
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:recorder_update_failed"
    assert w.trail(command.command_id)[-3:] == [
        "verifying", "recorder", "failed:recorder_update_failed",
    ]  # fmt: skip
    assert w.node.camera.users["admin"].password == PASSWORD
    assert (seat(nvr).password, seat(nvr).online) == (PASSWORD, True)
    stored = w.credentials.credential("cam")
    assert stored is not None
    assert stored.password == PASSWORD
    assert w.credentials.credential("cam.previous") is None
    assert "sealed" not in w.results()[-1].details


async def test_a_camera_that_cannot_be_set_back_keeps_the_escrow(
    lab_fleet: LabFactory,
    collector_tuf: Collector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org, params = escrow()
    fleet = await lab_fleet(lab("dahua-nvr", "dahua"))
    nvr, cam = fleet["nvr"], fleet["cam"]
    w = world(tmp_path, collector_tuf, cam, nvr, with_login=True)
    monkeypatch.setattr(nvr.camera, "set_channel", lambda _n, _p: False)
    changes = iter([True])  # the camera takes one change (the rotation), then refuses
    real = cam.camera.set_password
    monkeypatch.setattr(
        cam.camera, "set_password", lambda *a, **k: next(changes, False) and real(*a, **k)
    )
    command = w.command(PASSWORD_ROTATE, params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:recorder_out_of_sync"
    new = opened(w, org)["password"]
    assert cam.camera.users["admin"].password == new
    stored = w.credentials.credential("cam")
    assert stored is not None
    assert stored.password == new
    assert not seat(nvr).online  # what the failure reports: the recorder lost the camera


async def test_the_recorders_own_password(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    org, params = escrow()
    fleet = await lab_fleet(lab("hikvision-nvr", "hikvision"))
    nvr = fleet["nvr"]
    w = world(tmp_path, collector_tuf, fleet["cam"], nvr, with_login=True)
    command = w.command(PASSWORD_ROTATE, params=params, camera_id="nvr")
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert "recorder" not in w.trail(command.command_id)
    new = opened(w, org)["password"]
    assert nvr.camera.users["admin"].password == new
    assert seat(nvr).online  # the channel login is the camera's, untouched
