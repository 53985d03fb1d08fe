"""firmware.apply through each vendor's upload path against its lab persona: ISAPI
``updateFirmware``, Dahua ``upgrader.cgi``, VAPIX ``firmwaremanagement.cgi`` and ONVIF
``StartFirmwareUpgrade`` + HTTP upload. An accepted image reboots the camera into the new
version; a refused one, an upload dropped mid-way and a camera that comes back old all end in a
clean failure with the camera on its old version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.firmware import make_image
from lab.testing import LabFactory
from tests.agent.commands.world import World, lab_config
from tests.agent.conftest import Collector
from tests.support.firmware import publish_image

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Route:
    persona: str
    vendor: str  # the agent's vendor key and the image's signed ``vendor``
    model: str
    old: str
    new: str
    upload: tuple[str, str]  # the request carrying the image: method, lab log target


PATHS = {
    "isapi": Route(
        "hikvision", "hikvision", "DS-2CD2043G2-I", "V5.5.0", "V5.7.5",
        ("PUT", "/ISAPI/System/updateFirmware"),
    ),
    "dahua_cgi": Route(
        "dahua", "dahua", "IPC-HFW2431S-S-S2", "2.800.0000000.25.R", "2.840.0000000.1.R",
        ("POST", "/cgi-bin/upgrader.cgi?action=uploadFirmware"),
    ),
    "vapix": Route(
        "axis", "axis", "P3245-LVE", "10.12.182", "11.0.89",
        ("POST", "/axis-cgi/firmwaremanagement.cgi"),
    ),
    "onvif": Route(
        "onvif-generic", "onvif", "IPC-1080P", "V2.1.4", "V3.0.0", ("POST", "FirmwareUpload")
    ),
}  # fmt: skip
TRAIL = ["accepted", "preflight", "downloading", "uploading", "rebooting", "verifying"]


async def _world(
    lab_fleet: LabFactory,
    collector: Collector,
    tmp_path: Path,
    p: Route,
    *,
    image_of: str | None = None,
    upgrade: dict[str, object],
) -> tuple[World, dict[str, object]]:
    """The lab camera on ``p.old``, and ``p.new`` published for it (an image in the format of
    ``image_of``, default its own); returns the world and the command's params."""
    lab = lab_config(persona=p.persona, camera_id="cam", model=p.model, firmware=p.old, **upgrade)
    fleet = await lab_fleet(lab)
    w = World.make(tmp_path, collector.state, collector.base_url, fleet["cam"])
    assert w.config.cameras[0].vendor == p.vendor
    image = make_image(image_of or p.persona, p.new, dt.date(2024, 6, 1), 64 * 1024, model=p.model)
    publish_image(
        w.tuf_state, collector.repo, image, version=p.new, vendor=p.vendor, models=(p.model,)
    )
    return w, w.firmware(f"{p.vendor}/{p.new}/fw-{p.new}.bin", p.new)


def _uploads(w: World, p: Route) -> list[int]:
    """Statuses of the image uploads the camera answered (digest challenges left out)."""
    return [r.status for r in w.log if (r.method, r.target) == p.upload and r.status != 401]


@pytest.mark.parametrize("path", PATHS)
async def test_accepted_image_reboots_into_the_new_version(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, path: str
) -> None:
    p = PATHS[path]
    w, params = await _world(lab_fleet, collector_tuf, tmp_path, p, upgrade={"reboot_s": 0.5})
    command = w.command(params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert w.trail(command.command_id) == [*TRAIL, "succeeded"]
    final = w.results()[-1]
    assert final.details["version"] == p.new
    assert str(final.details["previous"]).startswith(p.old)  # as reported: ONVIF adds the build
    assert final.details["rtsp"] is True  # DESCRIBE with the credential after the reboot
    assert (w.node.camera.version, w.node.camera.reboots) == (p.new, 1)
    assert _uploads(w, p) == [200]


@pytest.mark.parametrize("path", PATHS)
async def test_refused_image_fails_cleanly(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, path: str
) -> None:
    p = PATHS[path]
    other = "dahua" if p.persona == "hikvision" else "hikvision"  # wrong magic for this camera
    w, params = await _world(
        lab_fleet, collector_tuf, tmp_path, p, image_of=other, upgrade={"reboot_s": 0.5}
    )
    command = w.command(params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:camera_refused"
    assert w.trail(command.command_id) == [*TRAIL[:4], "failed:camera_refused"]
    assert (w.node.camera.version, w.node.camera.reboots) == (p.old, 0)
    assert len(_uploads(w, p)) == 1  # seen and refused (VAPIX: an error object in a 200)
    assert list(w.executor().journal.pending()) == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", ["fail_mid_upgrade", "comes_back_old"])
async def test_camera_back_on_its_old_version_fails_cleanly(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path, path: str, fault: str
) -> None:
    p = PATHS[path]
    w, params = await _world(
        lab_fleet, collector_tuf, tmp_path, p, upgrade={"reboot_s": 0.5, fault: True}
    )
    command = w.command(params=params)
    assert await w.executor().submit(w.sign(command)) == "failed:version_mismatch"
    assert w.trail(command.command_id) == [*TRAIL, "failed:version_mismatch"]
    assert (w.node.camera.version, w.node.camera.reboots) == (p.old, 1)


async def test_onvif_upload_waits_for_the_upload_delay_the_camera_names(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    # the lab camera answers an upload sent before its UploadDelay with 503
    p = PATHS["onvif"]
    w, params = await _world(
        lab_fleet, collector_tuf, tmp_path, p, upgrade={"reboot_s": 0.5, "upload_delay_s": 1.0}
    )
    command = w.command(params=params)
    assert await w.executor().submit(w.sign(command)) == "succeeded"
    assert (w.node.camera.version, _uploads(w, p)) == (p.new, [200])
