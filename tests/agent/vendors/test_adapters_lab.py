"""Every adapter against the running camera lab: identity equals the lab's persona, wrong
passwords are False, locks are respected, faulty cameras give the right ``CameraError`` in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agent.audit.identify import identify
from agent.vendors.axis.adapter import AxisAdapter
from agent.vendors.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    BadResponse,
    CameraError,
    Timeout,
    Unreachable,
)
from agent.vendors.dahua.adapter import DahuaAdapter
from agent.vendors.hikvision.adapter import HikvisionAdapter
from agent.vendors.models import Credential, Interface, LockoutPolicy, Target
from agent.vendors.onvif.adapter import OnvifAdapter
from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory

pytestmark = pytest.mark.integration

PASSWORD = "Adm1n!pass"
LAB = f"""
[[camera]]
id = "hik"
persona = "hikvision"
model = "DS-2CD2043G2-I"
firmware = "V5.5.0"
build_date = 2021-06-28
ssh = true
not_activated = true
clock_skew_s = -900
lockout = {{threshold = 4, window_s = 30, lock_s = 60}}
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
[[camera]]
id = "dahua"
persona = "dahua"
p2p = true
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
[[camera]]
id = "axis"
persona = "axis"
upnp = true
users = [{{name = "root", password = "{PASSWORD}", role = "admin"}}]
[[camera]]
id = "gen"
persona = "onvif-generic"
ddns = true
onvif_noauth_ops = ["GetStreamUri"]
users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]
[[camera]]
id = "hang"
persona = "hikvision"
faults = {{hang = true}}
[[camera]]
id = "slow"
persona = "dahua"
faults = {{slow_ms = 3000}}
[[camera]]
id = "drop"
persona = "axis"
faults = {{drop = true}}
[[camera]]
id = "truncated"
persona = "hikvision"
faults = {{garbage = "truncated"}}
[[camera]]
id = "content-type"
persona = "hikvision"
faults = {{garbage = "content_type"}}
[[camera]]
id = "huge"
persona = "dahua"
faults = {{garbage = "huge"}}
"""
ADMIN = {"hik": "admin", "dahua": "admin", "axis": "root", "gen": "admin"}
CONFIG = AdapterConfig(timeout_s=2.0, max_response_bytes=256 * 1024)


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    return await lab_fleet(LAB)


def target(node: CameraNode) -> Target:
    return Target(node.id, node.host, {Interface.HTTP: node.ports["http"]})


def admin(node: CameraNode) -> Credential:
    return Credential(ADMIN.get(node.id, "admin"), PASSWORD)


@pytest.fixture
async def adapters(fleet: Fleet) -> AsyncIterator[dict[str, Adapter]]:
    made: dict[str, Adapter] = {
        "hik": HikvisionAdapter(target(fleet["hik"]), CONFIG, admin(fleet["hik"])),
        "dahua": DahuaAdapter(target(fleet["dahua"]), CONFIG, admin(fleet["dahua"])),
        "axis": AxisAdapter(target(fleet["axis"]), CONFIG, admin(fleet["axis"])),
        **{
            f"onvif-{cam}": OnvifAdapter(target(fleet[cam]), CONFIG, admin(fleet[cam]))
            for cam in ("hik", "dahua", "axis", "gen")
        },
    }
    yield made
    for adapter in made.values():
        await adapter.close()


@pytest.mark.parametrize(
    ("key", "camera", "firmware"),
    [
        ("hik", "hik", "V5.5.0"),
        ("dahua", "dahua", "2.800.0000000.25.R"),
        ("axis", "axis", "10.12.182"),
        ("onvif-hik", "hik", "V5.5.0 build 210628"),
        ("onvif-gen", "gen", "V2.1.4 build 20220301"),
    ],
)
async def test_identity_matches_the_lab(
    fleet: Fleet, adapters: dict[str, Adapter], key: str, camera: str, firmware: str
) -> None:
    node = fleet[camera]
    identity = await adapters[key].identify()
    assert identity.model == node.spec.model
    assert identity.serial == node.camera.serial
    assert identity.firmware == firmware
    if camera != "gen":  # the generic OEM's "YYYYMMDD" build is not a known scheme
        assert identity.build_date == node.spec.build_date
    if key in ("hik", "axis"):
        assert identity.mac == node.camera.mac


async def test_reads_match_the_lab(fleet: Fleet, adapters: dict[str, Adapter]) -> None:
    hik = adapters["hik"]
    assert isinstance(hik, HikvisionAdapter)
    assert await hik.activated() is False
    assert (await hik.services()).ssh is True
    assert await hik.lockout_policy() == LockoutPolicy(True, 4, None, 60.0)
    assert [a.name for a in await hik.accounts()] == ["admin"]
    assert (await adapters["dahua"].services()).p2p is True
    assert (await adapters["axis"].services()).upnp is True
    # brute-force blocking off: a lab camera without a lockout
    assert (await adapters["axis"].lockout_policy()).enabled is False
    assert (await adapters["onvif-gen"].services()).ddns is True
    streams = await adapters["onvif-gen"].streams()
    assert [s.rtsp_uri.rsplit("/", 1)[1] for s in streams] == ["stream1", "stream2"]
    clock = await adapters["onvif-hik"].time()  # the camera runs 15 min behind
    assert clock.camera_utc is not None
    assert abs((datetime.now(UTC) - clock.camera_utc).total_seconds() - 900) < 5


async def test_unauthenticated_onvif_operations(adapters: dict[str, Adapter]) -> None:
    gen = adapters["onvif-gen"]
    assert isinstance(gen, OnvifAdapter)
    assert await gen.unauthenticated_operations() == {
        "GetDeviceInformation": False,
        "GetProfiles": False,
        "GetStreamUri": True,  # seeded weakness of this camera
        "GetNetworkInterfaces": False,
        "GetUsers": False,
    }


@pytest.mark.parametrize(
    ("key", "interface"),
    [
        ("hik", Interface.HTTP),
        ("dahua", Interface.HTTP),
        ("axis", Interface.HTTP),
        ("onvif-gen", Interface.ONVIF),
        ("onvif-hik", Interface.ONVIF),  # 401 persona
    ],
)
async def test_try_login(
    fleet: Fleet, adapters: dict[str, Adapter], key: str, interface: Interface
) -> None:
    adapter = adapters[key]
    user = adapter.credential.username if adapter.credential else "admin"
    assert await adapter.try_login(interface, user, PASSWORD) is True
    before = len(fleet[adapter.target.camera_id].camera.log)
    assert await adapter.try_login(interface, user, "wrong-password") is False
    sent = fleet[adapter.target.camera_id].camera.log[before:]
    assert sum(1 for r in sent if r.user is None and r.auth != "none") == 1  # tried once


async def test_wrong_agent_credential_is_auth_failed(fleet: Fleet) -> None:
    for cls, cam in ((HikvisionAdapter, "hik"), (DahuaAdapter, "dahua"), (OnvifAdapter, "gen")):
        async with cls(target(fleet[cam]), CONFIG, Credential("admin", "nope")) as adapter:
            with pytest.raises(AuthFailed):
                await adapter.identify()


async def test_lockout_is_never_exceeded(fleet: Fleet) -> None:
    """Lab bug worked around: a locked lab account answers exactly like a wrong password
    (plain 401), so ``LockedOut`` cannot be seen; the test reads the camera's policy and stays
    below it, and checks on the lab side that no lock happened."""
    node = fleet["hik"]
    async with HikvisionAdapter(target(node), CONFIG, admin(node)) as adapter:
        policy = await adapter.lockout_policy()
        assert policy.threshold is not None
        for n in range(policy.threshold - 1):
            assert await adapter.try_login(Interface.HTTP, "admin", f"guess-{n}") is False
        assert not node.camera.locked("admin")
        assert await adapter.try_login(Interface.HTTP, "admin", PASSWORD) is True
    failures = [r for r in node.camera.log if r.auth == "digest" and r.user is None]
    assert len(failures) == policy.threshold - 1


@pytest.mark.parametrize(
    ("camera", "cls", "error"),
    [
        ("hang", HikvisionAdapter, Timeout),
        ("hang", OnvifAdapter, Timeout),
        ("slow", DahuaAdapter, Timeout),
        ("drop", AxisAdapter, Unreachable),
        ("drop", OnvifAdapter, Unreachable),
        ("truncated", HikvisionAdapter, BadResponse),
        ("content-type", HikvisionAdapter, BadResponse),
        ("huge", DahuaAdapter, BadResponse),
    ],
)
async def test_faulty_cameras(
    fleet: Fleet, camera: str, cls: type[Adapter], error: type[CameraError]
) -> None:
    node = fleet[camera]
    started = time.monotonic()
    async with cls(target(node), CONFIG, Credential("admin", "12345")) as adapter:
        with pytest.raises(error):
            await adapter.identify()
    assert time.monotonic() - started < CONFIG.timeout_s + 1.0


async def test_identify_picks_the_richest_adapter(fleet: Fleet) -> None:
    for cam, source in (
        ("hik", "hikvision/isapi"),
        ("dahua", "dahua/cgi"),
        ("axis", "axis/basicdeviceinfo.getAllProperties"),
        ("gen", "onvif"),
    ):
        found = await identify(target(fleet[cam]), CONFIG, admin(fleet[cam]))
        assert found.adapter is not None
        await found.adapter.close()
        assert found.identity.source == source
        assert found.identity.serial == fleet[cam].camera.serial


VENDOR_PATHS = {
    "hikvision": "/ISAPI/System/deviceInfo",
    "dahua": "/cgi-bin/magicBox.cgi",
    "axis": "/axis-cgi/basicdeviceinfo.cgi",
}


def vendors_asked(node: CameraNode) -> list[str]:
    """The vendor APIs the camera was asked on, in order (first request on each)."""
    asked: list[str] = []
    for record in node.camera.log:
        for vendor, path in VENDOR_PATHS.items():
            if record.target.startswith(path) and vendor not in asked:
                asked.append(vendor)
    return asked


async def test_identify_asks_the_vendor_its_server_header_names(fleet: Fleet) -> None:
    """The camera's ``Server`` header (the lab personas' web servers) picks the adapter tried
    first; a banner no vendor adapter knows (gSOAP) keeps the registry order before ONVIF, and
    a vendor hint still comes before the banner."""
    for cam, asked in (
        ("hik", ["hikvision"]),
        ("dahua", ["dahua"]),
        ("axis", ["axis"]),
        ("gen", ["hikvision", "dahua", "axis"]),
    ):
        node = fleet[cam]
        node.camera.log.clear()
        found = await identify(target(node), CONFIG, admin(node))
        assert found.adapter is not None
        await found.adapter.close()
        assert vendors_asked(node) == asked, cam
        assert sum(1 for r in node.camera.log if r.target == "/") == 1, cam  # asked once
    node = fleet["axis"]
    node.camera.log.clear()
    hinted = Target(node.id, node.host, {Interface.HTTP: node.ports["http"]}, vendor_hint="Dahua")
    found = await identify(hinted, CONFIG, admin(node))
    assert found.adapter is not None
    await found.adapter.close()
    assert found.identity.source == "axis/basicdeviceinfo.getAllProperties"
    assert vendors_asked(node) == ["dahua", "axis"]


async def test_identify_without_credentials(fleet: Fleet) -> None:
    axis = await identify(target(fleet["axis"]), CONFIG)
    assert axis.identity.source == "axis/basicdeviceinfo.getAllUnrestrictedProperties"
    assert axis.adapter is not None
    await axis.adapter.close()
    gen = await identify(target(fleet["gen"]), CONFIG)
    assert gen.adapter is None
    assert gen.identity.source == "banner:gSOAP/2.8"


async def test_identify_errors(fleet: Fleet) -> None:
    with pytest.raises(Timeout):
        await identify(target(fleet["hang"]), CONFIG)
    with pytest.raises(Unreachable):
        await identify(Target("nobody", "127.0.0.1", {Interface.HTTP: 9}), CONFIG)
