"""Camera lab figures: start time and RSS for 100 and 500 cameras, and requests/second.

Start-up is measured in a fresh subprocess per size (``camwarden-lab up``) with every service a
camera can run switched on (RTSP through the GStreamer worker, telnet, FTP, SSH, SNMP, UPnP,
WS-Discovery, HTTPS), on loopback and, when namespaces can be made here, in netns mode. RSS is
the lab process plus its GStreamer worker. Throughput is driven from this process with httpx
(bounded: at most REQUESTS requests or SECONDS seconds per target) against the loopback lab of
100 cameras, so the client does not share the lab's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

CLI = Path(sys.executable).parent / "camwarden-lab"
REQUESTS = 3000
SECONDS = 10.0
CONCURRENCY = 32
SOAP = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)


ALL_SERVICES = (
    "telnet = true\nftp = true\nssh = true\nsnmp_public = true\nupnp = true\nhttps = true\n"
)


def lab_config(cameras: int, lab: str) -> str:
    per = cameras // 4
    personas = ("hikvision", "dahua", "axis", "onvif-generic")
    blocks = [
        f'[[camera]]\nid = "{p}"\npersona = "{p}"\ncount = {per}\n{ALL_SERVICES}' for p in personas
    ]
    return f"[lab]\n{lab}\n" + "".join(blocks)


def start_lab(workdir: Path, cameras: int, lab: str) -> tuple[subprocess.Popen[str], Path, float]:
    config, state = workdir / f"lab{cameras}.toml", workdir / f"lab{cameras}.json"
    config.write_text(lab_config(cameras, lab))
    started = time.monotonic()
    proc = subprocess.Popen(
        [CLI, "up", "--config", config, "--state", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    while not state.exists():
        if proc.poll() is not None or time.monotonic() - started > 120:
            proc.kill()
            raise RuntimeError("lab did not start")
        time.sleep(0.02)
    return proc, state, time.monotonic() - started


def stop_lab(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


async def throughput(urls: list[str], *, soap: bool, auth: httpx.Auth | None) -> float:
    done = 0
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        nonlocal done
        while done < REQUESTS and time.monotonic() < deadline:
            url = urls[(n + done) % len(urls)]
            reply = await (client.post(url, content=SOAP) if soap else client.get(url))
            reply.raise_for_status()
            done += 1

    async with httpx.AsyncClient(auth=auth, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client, n) for n in range(CONCURRENCY)))
        return done / (time.monotonic() - started)


def rss_mib(pid: int) -> tuple[float, float]:
    """RSS of the lab process and of its children (the GStreamer worker), in MiB."""
    lab = psutil.Process(pid)
    children = sum(c.memory_info().rss for c in lab.children(recursive=True))
    return lab.memory_info().rss / 2**20, children / 2**20


def stop_timed(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    stop_lab(proc)
    return time.monotonic() - started


def main() -> int:
    modes = [("loopback", 'loopback_base = "127.{n}.0.0"')]
    if os.geteuid() == 0:  # without root: python -m lab.netns -- python bench/lab.py
        modes.append(("netns", 'mode = "netns"\nsubnet = "10.99.0.0/22"'))
    with tempfile.TemporaryDirectory(prefix="camwarden-lab-bench-") as tmp:
        workdir = Path(tmp)
        for mode, lab in modes:
            for n, cameras in enumerate((100, 500)):
                proc, _state, elapsed = start_lab(workdir, cameras, lab.format(n=90 + n))
                own, worker = rss_mib(proc.pid)
                stopped = stop_timed(proc)
                print(
                    f"lab start ({mode}, all services): {cameras} cameras in {elapsed:.2f} s, "
                    f"RSS {own:.0f} MiB + GStreamer worker {worker:.0f} MiB; stop {stopped:.2f} s"
                )
        proc, state, _elapsed = start_lab(workdir, 100, 'loopback_base = "127.92.0.0"')
        try:
            hosts = json.loads(state.read_text())["cameras"]
            hik = [f"http://{hosts[f'hikvision-{i}']['address']}:10080" for i in range(1, 26)]
            isapi = [h + "/ISAPI/System/deviceInfo" for h in hik]
            onvif = [h + "/onvif/device_service" for h in hik]
            digest = httpx.DigestAuth("admin", "12345")
            rate = asyncio.run(throughput(isapi, soap=False, auth=digest))
            print(f"ISAPI deviceInfo (digest, new challenge per request): {rate:.0f} req/s")
            rate = asyncio.run(throughput(onvif, soap=True, auth=digest))
            print(f"ONVIF GetDeviceInformation (HTTP digest): {rate:.0f} req/s")
        finally:
            stop_lab(proc)
    print(
        f"(client: httpx, {CONCURRENCY} concurrent, <= {REQUESTS} requests / {SECONDS:.0f} s; "
        f"host: {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
