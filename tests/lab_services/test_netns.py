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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab import netns
from lab.services import Service
from lab.services.banners import start_banner
from lab.services.rtsp import RtspFleet, RtspStream

pytestmark = pytest.mark.skipif(
    not netns.available(),
    reason="ip netns is not permitted here: run as root or via `python -m lab.netns -- pytest`",
)
ROOT = Path(netns.__file__).resolve().parents[1]
CAMERAS = ["10.99.0.11", "10.99.0.12", "10.99.0.13"]
OPEN = {("10.99.0.11", 22), ("10.99.0.11", 23), ("10.99.0.12", 21)}


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def link_names() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in ip("-o", "link").splitlines()}


@pytest.fixture
async def lab() -> AsyncIterator[netns.NetnsLab]:
    links_before = link_names()
    lab = netns.NetnsLab(CAMERAS)
    async with lab:
        binder = lab.binder()
        services: list[Service] = [
            await start_banner(binder.tcp("10.99.0.11", 22), "ssh", "SSH-2.0-dropbear_2019.78"),
            await start_banner(binder.tcp("10.99.0.11", 23), "telnet", "IPC "),
            await start_banner(binder.tcp("10.99.0.12", 21), "ftp", "(vsFTPd 3.0.3)"),
        ]
        try:
            yield lab
        finally:
            for service in services:
                await service.close()
    assert not [n for n in ip("netns", "list").split() if n.startswith(lab.prefix)]
    assert link_names() == links_before


def open_ports(grepable: str) -> set[tuple[str, int]]:
    found = set()
    for line in grepable.splitlines():
        if line.startswith("Host:") and "Ports:" in line:
            host = line.split()[1]
            for entry in line.split("Ports:")[1].split(","):
                port, state = entry.strip().split("/")[:2]
                if state == "open":
                    found.add((host, int(port)))
    return found


async def test_agent_reaches_cameras_and_nmap_sees_exactly_the_services(
    lab: netns.NetnsLab,
) -> None:
    grab = "import socket; print(socket.create_connection(('10.99.0.11', 22), 5).recv(64))"
    async with asyncio.timeout(60):
        banner = await netns.arun_in(lab.agent.namespace, [sys.executable, "-c", grab])
        assert banner.stdout.strip() == repr(b"SSH-2.0-dropbear_2019.78\r\n")
        for scan in ("-sT", "-sS"):
            done = await netns.arun_in(
                lab.agent.namespace,
                ["nmap", "-n", scan, "-p", "21-23,80,554", "-oG", "-", "10.99.0.11-13"],
            )
            assert open_ports(done.stdout) == OPEN, (scan, done.stdout, done.stderr)


async def test_the_callers_namespace_has_no_way_into_the_lab(lab: netns.NetnsLab) -> None:
    """Checked on addresses and routes: no packet towards 10.99.x is sent from here."""
    assert "10.99." not in ip("-o", "addr")
    assert "10.99." not in ip("route")
    assert not {netns.BRIDGE, *(h.port for h in lab.hosts)} & link_names()
    with netns.entered(lab.agent.namespace):
        assert "default" not in ip("route")


async def test_rtsp_server_inside_a_camera_namespace(lab: netns.NetnsLab) -> None:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    fleet = RtspFleet()
    ns = lab.namespace_of("10.99.0.13")
    try:
        await fleet.start([RtspStream(ns, "10.99.0.13", 554, ("/live",))])
        probe = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]
        async with asyncio.timeout(30):
            ok = await netns.arun_in(lab.agent.namespace, [*probe, "rtsp://10.99.0.13/live"])
            missing = await netns.arun_in(lab.agent.namespace, [*probe, "rtsp://10.99.0.13/x"])
    finally:
        await fleet.close()
    assert ok.stdout.strip() in {"h264", "mjpeg"}, ok.stderr
    assert "404 Not Found" in missing.stderr


def test_a_failed_create_removes_only_its_own_namespaces() -> None:
    with netns.NetnsLab(["10.99.0.11"]) as first:
        clash = netns.NetnsLab(["10.99.0.11"], run_id=first.prefix)
        with pytest.raises(netns.NetnsError, match="File exists"):
            clash.create()
        assert set(first.namespaces) <= set(ip("netns", "list").split())
    assert not [n for n in ip("netns", "list").split() if n.startswith(first.prefix)]


def test_addresses_outside_the_subnet_are_refused() -> None:
    with pytest.raises(ValueError, match="not a host address"):
        netns.NetnsLab(["10.98.0.11"])


SCENARIO = """
import asyncio, json, os, socket, subprocess
from lab.netns import NetnsLab, arun_in
from lab.services.banners import start_banner

async def main():
    report = {"uid_outside": int(open("/proc/self/uid_map").read().split()[1])}
    async with NetnsLab(["10.99.0.11", "10.99.0.12"]) as lab:
        service = await start_banner(lab.binder().tcp("10.99.0.11", 23), "telnet", "IPC ")
        nmap = ["nmap", "-n", "-sS", "-p", "22,23,554", "-oG", "-", "10.99.0.11-12"]
        scan = await arun_in(lab.agent.namespace, nmap)
        report["nmap"] = scan.stdout + scan.stderr
        try:
            socket.create_connection(("10.99.0.11", 23), 2).close()
            report["outside"] = "connected"
        except OSError as exc:
            report["outside"] = exc.errno
        await service.close()
    report["left"] = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    print(json.dumps(report))

asyncio.run(main())
"""


SEARCH_PATH = f"{ROOT}{os.pathsep}{sysconfig.get_paths()['purelib']}"  # lab and its packages


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_rootless_scenario_as_nobody() -> None:
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*drop, *netns.UNSHARE, "true"], capture_output=True, check=False).returncode:
        pytest.skip("unprivileged user namespaces are not permitted on this kernel")
    # The scenario needs lab and the packages it imports (this environment's, readable by
    # everyone); use an interpreter nobody may run.
    python = sys.executable
    probe = [*drop, *netns.UNSHARE, python, "-c", ""]
    if subprocess.run(probe, capture_output=True, check=False).returncode:
        python = "/usr/bin/python3"
    done = subprocess.run(
        [*drop, *netns.rootless_argv([python, "-c", SCENARIO], python=python)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": SEARCH_PATH},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["uid_outside"] == 65534
    assert open_ports(report["nmap"]) == {("10.99.0.11", 23)}, report["nmap"]
    assert report["outside"] == 101  # ENETUNREACH: the user namespace's own network has only lo
    assert report["left"] == ""


def test_teardown_is_batched_and_kills_what_was_left_inside() -> None:
    hosts = [f"10.99.{n // 250}.{n % 250 + 3}" for n in range(200)]
    lab = netns.NetnsLab(hosts, subnet="10.99.0.0/16").create()
    inside = lab.cameras[hosts[-1]].namespace
    sleeper = subprocess.Popen(netns.netns_argv(inside, ["sleep", "60"]))
    try:
        while not ip("netns", "pids", inside).split():
            time.sleep(0.01)
        started = time.monotonic()
        lab.close()
        elapsed = time.monotonic() - started
    finally:
        lab.close()
    assert sleeper.wait(5) == -signal.SIGKILL
    assert not [n for n in ip("netns", "list").split() if n.startswith(lab.prefix)]
    assert elapsed < 2, elapsed  # one ip call per namespace took ~6 s for 200
