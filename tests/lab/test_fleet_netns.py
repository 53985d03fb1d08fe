"""The fleet in namespace mode: standard ports on 10.x addresses, seen from the agent namespace.

Needs root (or root of a user namespace: ``python -m lab.netns -- pytest``); the rootless test
drops to ``nobody`` and builds its own user namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from lab import netns
from lab.fleet import CameraNode, Fleet
from lab.testing import LabFactory
from tests.lab.test_fleet_e2e import PROBE, credentials, expected_tcp, open_ports, rtsp_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not netns.available(),
        reason="ip netns is not permitted here: run as root or via `python -m lab.netns -- pytest`",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "camwarden-lab"
LAB = """
[lab]
mode = "netns"
[[camera]]
id = "hik"
persona = "hikvision"
telnet = true
snmp_public = true
upnp = true
https = true
[[camera]]
id = "dahua"
persona = "dahua"
[[camera]]
id = "axis"
persona = "axis"
[[camera]]
id = "gen"
persona = "onvif-generic"
anonymous_rtsp = true
[[router]]
id = "gw"
port_mappings = [{ external_port = 8080, camera = "hik", internal_port = 80 }]
"""
STANDARD_TCP = (21, 22, 23, 80, 443, 554, 5000, 8000, 37777, 49152)


def namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}


@pytest.fixture
async def fleet(lab_fleet: LabFactory) -> Fleet:
    if shutil.which("nmap") is None or shutil.which("ffprobe") is None:
        pytest.skip("nmap and ffprobe are needed (scripts/install-system-deps.sh test)")
    return await lab_fleet(LAB)


async def test_each_camera_has_its_namespace_address_and_standard_ports(fleet: Fleet) -> None:
    assert fleet.netlab is not None
    assert fleet.agent_namespace == fleet.netlab.agent.namespace
    hosts = [n.host for n in fleet.cameras.values()]
    assert hosts == ["10.99.0.11", "10.99.0.12", "10.99.0.13", "10.99.0.14"]
    assert fleet.routers["gw"].host == "10.99.0.15"
    assert all(n.ports["http"] == 80 and n.ports["rtsp"] == 554 for n in fleet.cameras.values())
    assert {fleet.netlab.namespace_of(h) for h in hosts} <= namespaces()
    ports = ",".join(map(str, STANDARD_TCP))
    async with asyncio.timeout(120):
        tcp = await fleet.run_in_agent(["nmap", "-n", "-sS", "-p", ports, "-oG", "-", *hosts])
        udp = await fleet.run_in_agent(
            ["nmap", "-n", "-sU", "-p", "161,1900", "-oG", "-", fleet["hik"].host]
        )
    assert open_ports(tcp.stdout) == {n.host: expected_tcp(n) for n in fleet.cameras.values()}
    assert {n.ports["http"] for n in fleet.cameras.values()} == {80}
    assert open_ports(udp.stdout) == {fleet["hik"].host: {161, 1900}}, udp.stdout
    dahua = fleet["dahua"]  # every port: GStreamer behind the RTSP front is not reachable
    async with asyncio.timeout(120):
        every = await fleet.run_in_agent(["nmap", "-n", "-sS", "-p-", "-oG", "-", dahua.host])
    assert open_ports(every.stdout) == {dahua.host: expected_tcp(dahua)}, every.stdout


async def test_rtsp_and_digest_from_the_agent_namespace(fleet: Fleet) -> None:
    node = fleet["dahua"]
    user, password = credentials(node.spec)
    url = node.url("/cgi-bin/magicBox.cgi?action=getSystemInfo")
    async with asyncio.timeout(60):
        stream = await fleet.run_in_agent([*PROBE, rtsp_url(node, (user, password))])
        refused = await fleet.run_in_agent([*PROBE, rtsp_url(node, None)])
        anonymous = await fleet.run_in_agent([*PROBE, rtsp_url(fleet["gen"], None)])
        curl = await fleet.run_in_agent(
            ["curl", "-sS", "--digest", "-u", f"{user}:{password}", url]
        )
    assert stream.stdout.strip() in {"h264", "mjpeg"}, stream.stderr
    assert "401 Unauthorized" in refused.stderr
    assert anonymous.stdout.strip() == stream.stdout.strip(), anonymous.stderr
    assert "serialNumber=" in curl.stdout, curl.stderr


WSD_CLIENT = """
import json
from wsdiscovery import QName
from wsdiscovery.discovery import ThreadedWSDiscovery
wsd = ThreadedWSDiscovery()
wsd.start()
try:
    found = wsd.searchServices(
        types=[QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter")],
        timeout=3,
    )
    print(json.dumps({s.getEPR(): s.getXAddrs() for s in found}))
finally:
    wsd.stop()
"""
M_SEARCH = """
import json, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.settimeout(0.5)
s.sendto(b'M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\nMAN: "ssdp:discover"\\r\\n'
         b'MX: 1\\r\\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\\r\\n\\r\\n',
         ("239.255.255.250", 1900))
replies, deadline = [], time.monotonic() + 2
while time.monotonic() < deadline:
    try:
        data, (host, _) = s.recvfrom(65536)
    except TimeoutError:
        continue
    headers = dict(l.split(": ", 1) for l in data.decode().split("\\r\\n")[1:] if ": " in l)
    replies.append([host, {k.upper(): v for k, v in headers.items()}.get("LOCATION", "")])
print(json.dumps(replies))
"""


async def test_multicast_discovery_from_the_agent_namespace(fleet: Fleet) -> None:
    async with asyncio.timeout(60):
        wsd = await fleet.run_in_agent([sys.executable, "-c", WSD_CLIENT])
        igd = await fleet.run_in_agent([sys.executable, "-c", M_SEARCH])
    assert wsd.returncode == 0, wsd.stderr
    assert json.loads(wsd.stdout) == {
        f"urn:uuid:{n.camera.uuid}": [n.url("/onvif/device_service")]
        for n in fleet.cameras.values()
    }
    router = fleet.routers["gw"]
    assert igd.returncode == 0, igd.stderr
    [[host, location]] = json.loads(igd.stdout)
    assert host == router.host
    assert location.startswith(f"http://{router.host}:{router.ports['igd_http']}/")


async def test_a_rebooting_camera_refuses_connections_in_its_namespace(fleet: Fleet) -> None:
    node: CameraNode = fleet["axis"]
    scan = ["nmap", "-n", "-sS", "-p", "80,554", "-oG", "-", node.host]
    reboot = asyncio.create_task(node.reboot(3.0))
    try:
        await asyncio.sleep(0.5)
        down = await fleet.run_in_agent(scan)
        assert open_ports(down.stdout).get(node.host, set()) == set(), down.stdout
    finally:
        await reboot
    up = await fleet.run_in_agent(scan)
    assert open_ports(up.stdout) == {node.host: {80, 554}}


def test_cli_up_and_down_leave_no_namespace(tmp_path: Path) -> None:
    config, state = tmp_path / "lab.toml", tmp_path / "lab.json"
    config.write_text(LAB)
    before = namespaces()
    proc = subprocess.Popen(
        [CLI, "up", "--config", config, "--state", state],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert state.exists(), proc.stderr.read() if proc.stderr else ""
        running = json.loads(state.read_text())
        assert set(running["namespaces"]) <= namespaces()
        assert running["agent_namespace"] in running["namespaces"]
        down = subprocess.run([CLI, "down", "--state", state], capture_output=True, check=False)
        assert down.returncode == 0, down.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "10.99.0.11" in out
    assert f"agent namespace {running['agent_namespace']}" in out
    assert namespaces() == before


ROOTLESS = """
import asyncio, json, subprocess
from lab.config import parse_config
from lab.fleet import Fleet

LAB = '''
[lab]
mode = "netns"
[[camera]]
id = "hik"
persona = "hikvision"
telnet = true
[[camera]]
id = "gen"
persona = "onvif-generic"
'''

async def main():
    fleet = await Fleet.start(parse_config(LAB))
    try:
        scan = ["nmap", "-n", "-sS", "-p", "23,80,554,8000", "-oG", "-", "10.99.0.11-12"]
        nmap = await asyncio.wait_for(fleet.run_in_agent(scan), 60)
        probe = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                 "stream=codec_name", "-of", "csv=p=0", "rtsp://admin:12345@10.99.0.11/Streaming/Channels/101"]
        stream = await asyncio.wait_for(fleet.run_in_agent(probe), 60)
    finally:
        await fleet.stop()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    uid = int(open("/proc/self/uid_map").read().split()[1])
    print(json.dumps({"uid": uid, "nmap": nmap.stdout, "codec": stream.stdout.strip(),
                      "stream_err": stream.stderr, "left": left}))

asyncio.run(main())
"""


DROP = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def interpreter_for_nobody() -> tuple[str, str]:
    """(python, PYTHONPATH) that user nobody can run inside a user namespace.

    This virtualenv's interpreter may live where nobody cannot reach it (a pyenv under a 0700
    home); then the system python of the same version runs with the virtualenv's packages.
    """
    probe = [*DROP, *netns.UNSHARE, sys.executable, "-c", "import lab.fleet"]
    if subprocess.run(probe, capture_output=True, check=False, cwd="/").returncode == 0:
        return sys.executable, str(ROOT)
    system = "/usr/bin/python3"
    version = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip(f"nobody can run neither {sys.executable} nor a {system} of its version")
    return system, f"{ROOT}{os.pathsep}{sysconfig.get_paths()['purelib']}"


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_rootless_fleet_as_nobody() -> None:
    if subprocess.run([*DROP, *netns.UNSHARE, "true"], capture_output=True, check=False).returncode:
        pytest.skip("unprivileged user namespaces are not permitted on this kernel")
    python, path = interpreter_for_nobody()
    done = subprocess.run(
        [*DROP, *netns.rootless_argv([python, "-c", ROOTLESS], python=python)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        env={"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["uid"] == 65534
    assert open_ports(report["nmap"]) == {
        "10.99.0.11": {23, 80, 554, 8000},
        "10.99.0.12": {80, 554},
    }, report["nmap"]
    assert report["codec"] in {"h264", "mjpeg"}, report["stream_err"]
    assert report["left"] == ""
