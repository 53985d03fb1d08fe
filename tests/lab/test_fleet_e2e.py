"""The whole fleet on loopback, checked with clients nobody here wrote.

onvif-zeep-async, ffprobe, nmap, curl and Python's ``ssl`` talk to a ``Fleet`` started from a
LAB.toml (one camera per persona and the seeded TLS weaknesses); expected values come from the
config and the personas, not from the simulator's code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import shutil
import socket
import ssl
import sys
import warnings
from typing import Any

import httpx
import onvif
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lab.config import CameraSpec
from lab.errors import ServiceUnavailable
from lab.firmware import make_image
from lab.fleet import CameraNode, Fleet
from lab.services.rtsp import GstreamerMissing, RtspFleet
from lab.testing import LabFactory

pytestmark = pytest.mark.integration
WSDL = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
TOOLS = ("nmap", "ffprobe", "curl")
LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
telnet = true
ftp = true
ssh = true
upnp = true
https = true
firmware_upgrade = { reboot_s = 2 }
[[camera]]
id = "dahua"
persona = "dahua"
rtsp_auth = "basic"
[[camera]]
id = "axis"
persona = "axis"
https = true
tls = { versions = ["TLSv1", "TLSv1.1", "TLSv1.2"], weak_key = true }
[[camera]]
id = "shared"
persona = "axis"
count = 2
https = true
tls = { shared_key_group = "factory", expired = true }
[[camera]]
id = "gen"
persona = "onvif-generic"
anonymous_rtsp = true
"""
PERSONA_CAMERAS = ("hik", "dahua", "axis", "gen")
TCP_KINDS = ("http", "https", "rtsp", "sdk", "tcp", "telnet", "ftp", "ssh", "upnp_http")


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/install-system-deps.sh test)")
    return await lab_fleet(LAB)


def expected_tcp(node: CameraNode) -> set[int]:
    """The TCP ports a camera must show, from its config and persona alone."""
    spec = node.spec
    on = {"http", "rtsp", "sdk", "tcp"} & set(spec.persona.ports)
    on |= {kind for kind in ("https", "telnet", "ftp", "ssh") if getattr(spec, kind)}
    if spec.upnp:
        on.add("upnp_http")
    return {node.ports[kind] for kind in on}


def open_ports(grepable: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for line in grepable.splitlines():
        if line.startswith("Host:") and "Ports:" in line:
            ports = found.setdefault(line.split()[1], set())
            for entry in line.split("Ports:")[1].split(","):
                port, state = entry.strip().split("/")[:2]
                if state == "open":
                    ports.add(int(port))
    return found


def credentials(spec: CameraSpec) -> tuple[str, str]:
    return spec.users[0].name, spec.users[0].password


# nmap -sV costs a NULL-probe wait (6 s) per silent port and more per probe, run in parallel per
# port: the ports are split so that no scan waits for probes that prove nothing here.
# Telnet is left out of -sV: nmap only soft-matches BusyBox telnetd (as on real cameras) and then
# tries every probe it has, ~48 s; the telnet greeting is checked in test_fidelity. HTTPS and the
# UPnP description server (~18 s each) are left out too: HTTPS is the same aiohttp server as
# HTTP, and its answer to a malformed request is checked below with a raw TLS client.
LIGHT_KINDS = ("http", "rtsp", "sdk", "tcp", "ftp", "ssh")


async def test_nmap_service_scan_sees_exactly_the_configured_ports(fleet: Fleet) -> None:
    nodes = list(fleet.cameras.values())
    hosts = [n.host for n in nodes]

    def ports(kinds: tuple[str, ...]) -> str:
        found = {n.ports[k] for n in nodes for k in kinds if k in n.ports}
        return ",".join(map(str, sorted(found)))

    base = ["nmap", "-n", "-sT", "-oG", "-"]
    async with asyncio.timeout(120):
        scan, light = await asyncio.gather(
            fleet.run_in_agent([*base, "-p", ports(TCP_KINDS), *hosts]),
            fleet.run_in_agent([*base, "-sV", "--version-light", "-p", ports(LIGHT_KINDS), *hosts]),
        )
    for done in (scan, light):
        assert done.returncode == 0, done.stderr
    assert open_ports(scan.stdout) == {n.host: expected_tcp(n) for n in nodes}, scan.stdout
    hik = fleet["hik"]
    services = light.stdout.split(f"Host: {hik.host} ()\tPorts:")[1]
    for port, name in [(hik.ports["rtsp"], "rtsp"), (hik.ports["ssh"], "ssh")]:
        assert f"{port}/open/tcp//{name}//" in services
    assert "aiohttp" not in light.stdout
    bad = await asyncio.to_thread(malformed_over_tls, hik)
    assert bad.split(b" ", 2)[1] == b"400", bad
    assert f"Server: {hik.camera.persona.banners['http']}\r\n".encode() in bad
    assert b"aiohttp" not in bad


def malformed_over_tls(node: CameraNode) -> bytes:
    """What the HTTPS port answers to a request line no HTTP client would send."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((node.host, node.ports["https"]), 10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"\x16NOT HTTP\r\n\r\n")
        return tls.recv(4096)


async def _onvif(node: CameraNode) -> dict[str, Any]:
    user, password = credentials(node.spec)
    cam = onvif.ONVIFCamera(node.host, node.ports["http"], user, password, wsdl_dir=WSDL)
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        info = await dev.GetDeviceInformation()
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        uri = await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": profiles[0].token})
    finally:
        await cam.close()
    return {"manufacturer": info.Manufacturer, "firmware": info.FirmwareVersion, "uri": uri.Uri}


async def test_onvif_zeep_parses_every_persona(fleet: Fleet) -> None:
    for camera_id in PERSONA_CAMERAS:
        node = fleet[camera_id]
        got = await _onvif(node)
        persona = node.spec.persona
        assert got["manufacturer"] == persona.onvif_manufacturer
        assert got["uri"] == f"rtsp://{node.host}:{node.ports['rtsp']}{persona.stream_uris[0]}"
    dahua = fleet["dahua"]
    assert (await _onvif(dahua))["uri"].endswith("/cam/realmonitor?channel=1&subtype=0")


PROBE = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries"]
PROBE += ["stream=codec_name", "-of", "csv=p=0"]


def rtsp_url(node: CameraNode, login: tuple[str, str] | None) -> str:
    userinfo = f"{login[0]}:{login[1]}@" if login else ""
    path = node.spec.persona.stream_uris[0]
    return f"rtsp://{userinfo}{node.host}:{node.ports['rtsp']}{path}"


async def test_ffprobe_pulls_every_persona_stream_and_is_refused_without_credentials(
    fleet: Fleet,
) -> None:
    async def probe(node: CameraNode, login: tuple[str, str] | None) -> tuple[str, str]:
        done = await fleet.run_in_agent([*PROBE, rtsp_url(node, login)])
        return done.stdout.strip(), done.stderr

    nodes = [fleet[c] for c in PERSONA_CAMERAS]
    async with asyncio.timeout(120):
        with_login = await asyncio.gather(*(probe(n, credentials(n.spec)) for n in nodes))
        anonymous = await asyncio.gather(*(probe(n, None) for n in nodes))
    for node, (codec, err), (anon_codec, anon_err) in zip(
        nodes, with_login, anonymous, strict=True
    ):
        assert codec in {"h264", "mjpeg"}, (node.id, err)
        if node.spec.anonymous_rtsp:
            assert anon_codec == codec, (node.id, anon_err)
        else:
            assert (anon_codec, "401 Unauthorized" in anon_err) == ("", True), node.id


async def test_curl_digest_on_the_vendor_endpoints(fleet: Fleet) -> None:
    endpoints = {
        "hik": ("/ISAPI/System/deviceInfo", "<DeviceInfo"),
        "dahua": ("/cgi-bin/magicBox.cgi?action=getSystemInfo", "serialNumber="),
        "axis": ("/axis-cgi/param.cgi?action=list&group=Properties", "Properties.Firmware"),
    }
    for camera_id, (path, marker) in endpoints.items():
        node = fleet[camera_id]
        user, password = credentials(node.spec)
        curl = ["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", node.url(path)]
        async with asyncio.timeout(60):
            good = await fleet.run_in_agent([*curl, "--digest", "-u", f"{user}:{password}"])
            bad = await fleet.run_in_agent([*curl, "--digest", "-u", f"{user}:wrong"])
            none = await fleet.run_in_agent(curl)
        body, _, status = good.stdout.rpartition("\n")
        assert (status, marker in body) == ("200", True), (camera_id, good.stdout)
        assert bad.stdout.rpartition("\n")[2] == "401", camera_id
        assert none.stdout.rpartition("\n")[2] == "401", camera_id


def handshake(node: CameraNode, version: ssl.TLSVersion) -> bytes | None:
    """The server certificate (DER) if ``node`` completes a handshake at ``version``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the certificate is what is inspected
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # probing for TLS 1.0/1.1 on purpose
        ctx.minimum_version = ctx.maximum_version = version
    try:
        with (
            socket.create_connection((node.host, node.ports["https"]), 10) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (ssl.SSLError, ConnectionResetError):
        return None


def accepted(node: CameraNode) -> dict[str, x509.Certificate]:
    versions = (
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    )
    return {
        v.name: x509.load_der_x509_certificate(der)
        for v in versions
        if (der := handshake(node, v)) is not None
    }


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


async def test_tls_weaknesses_seen_in_the_handshake(fleet: Fleet) -> None:
    names = ("hik", "axis", "shared-1", "shared-2")
    seen = dict(
        zip(
            names,
            await asyncio.gather(*(asyncio.to_thread(accepted, fleet[n]) for n in names)),
            strict=True,
        )
    )
    now = dt.datetime.now(dt.UTC)
    hik = seen["hik"]
    assert set(hik) == {"TLSv1_2", "TLSv1_3"}
    cert = hik["TLSv1_3"]
    assert cert.issuer == cert.subject  # self-signed, the default
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    axis = seen["axis"]
    assert set(axis) == {"TLSv1", "TLSv1_1", "TLSv1_2"}
    key = axis["TLSv1"].public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 1024
    first, second = seen["shared-1"]["TLSv1_3"], seen["shared-2"]["TLSv1_3"]
    assert first.not_valid_after_utc < now
    assert spki_sha256(first) == spki_sha256(second) != spki_sha256(cert)
    assert first.serial_number != second.serial_number


async def _refused(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_firmware_upgrade_takes_the_camera_offline_and_back_newer(fleet: Fleet) -> None:
    node = fleet["hik"]
    ports = [node.ports[k] for k in ("http", "https", "rtsp", "sdk", "telnet")]
    nmap = ["nmap", "-n", "-sT", "-oG", "-", "-p", ",".join(map(str, ports)), node.host]
    image = make_image("hikvision", "V5.7.3", dt.date(2023, 1, 1))
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", "12345")) as client:
        reply = await client.put(node.url("/ISAPI/System/updateFirmware"), content=image)
        assert reply.status_code == 200
        await asyncio.sleep(0.3)
        assert [await _refused(node.host, p) for p in ports] == [True] * len(ports)
        down = await fleet.run_in_agent(nmap)
        assert open_ports(down.stdout).get(node.host, set()) == set(), down.stdout
        for _ in range(300):  # reboot_s = 2; generous for a busy machine
            if node.camera.online:
                break
            await asyncio.sleep(0.1)
    up = await fleet.run_in_agent(nmap)
    assert open_ports(up.stdout)[node.host] == set(ports)
    assert (await _onvif(node))["firmware"].startswith("V5.7.3")
    stream = await fleet.run_in_agent([*PROBE, rtsp_url(node, ("admin", "12345"))])
    assert stream.stdout.strip() in {"h264", "mjpeg"}, stream.stderr


async def test_missing_gstreamer_fails_fast_naming_the_packages() -> None:
    for python in (sys.executable, "/nonexistent/python3"):  # the venv has no python3-gi
        with pytest.raises(ServiceUnavailable) as caught:
            await RtspFleet(python=python).start([])
        assert isinstance(caught.value, GstreamerMissing)
        assert "gir1.2-gst-rtsp-server-1.0" in str(caught.value)
        assert "rtsp = false" in str(caught.value)


async def test_rtsp_can_be_switched_off(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet('[lab]\nrtsp = false\n[[camera]]\nid = "c"\npersona = "axis"\n')
    node = fleet["c"]
    assert fleet.rtsp is None
    assert await _refused(node.host, node.ports["rtsp"])
    async with httpx.AsyncClient() as client:
        assert (await client.get(node.url("/axis-cgi/jpg/image.cgi"))).status_code == 401
