"""OEM brands on their maker's API: a camera configured as HiLook or EZVIZ (Hikvision firmware)
is audited through ISAPI, a KBVision or Imou one (Dahua firmware) through the Dahua HTTP API;
the brand-to-maker table is the one that picks the firmware version scheme."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.onvif.adapter import OnvifAdapter
from agent.vendors.registry import adapter_for
from lab.testing import LabFactory
from tests.agent.audit_lab import AUDIT, audit, prepare


@pytest.mark.parametrize(
    ("brand", "adapter"),
    [
        ("kbvision", DahuaAdapter),
        ("KBVision", DahuaAdapter),
        ("imou", DahuaAdapter),
        ("dahua", DahuaAdapter),
        ("ezviz", HikvisionAdapter),
        ("HiLook", HikvisionAdapter),
        ("hikvision", HikvisionAdapter),
        ("onvif", OnvifAdapter),
        ("reolink", None),
    ],
)
def test_a_brand_gets_its_makers_adapter(brand: str, adapter: type[object] | None) -> None:
    assert adapter_for(brand) is adapter


LAB = """
[lab]
rtsp = false
[[camera]]
id = "hilook"
persona = "hilook"
users = [{ name = "admin", password = "Hl-2026!xyz" }]
[[camera]]
id = "ezviz"
persona = "ezviz"
users = [{ name = "admin", password = "Ez-2026!xyz" }]
"""


@pytest.mark.integration
async def test_hikvision_brands_are_audited_through_isapi(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    fleet = await lab_fleet(LAB)
    no_guessing = AUDIT.replace(
        "guess_default_credentials = true", "guess_default_credentials = false"
    )
    config = prepare(fleet, tmp_path, discovery=False, audit=no_guessing)
    config = msgspec.structs.replace(
        config, cameras=tuple(msgspec.structs.replace(c, vendor=c.id) for c in config.cameras)
    )
    cameras = {c.camera_id: c for c in (await audit(config)).cameras}
    for brand in ("hilook", "ezviz"):
        node, camera = fleet[brand], cameras[brand]
        assert camera.identity.source == "hikvision/isapi"
        assert camera.identity.serial == node.camera.serial
        asked = [r.target for r in node.camera.log if r.user]
        assert any(t.startswith("/ISAPI/") for t in asked)
        assert not any(t.startswith("/cgi-bin/") for t in asked)  # never the Dahua API
