"""Camera lab figures: start time and RSS for 100 and 500 cameras, and requests/second.

Start-up is measured in a fresh subprocess per size (``camwarden-lab up``); throughput is driven
from this process with httpx (bounded: at most REQUESTS requests or SECONDS seconds per target)
against the lab subprocess of 100 cameras, so the client does not share the lab's event loop.
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


def lab_config(cameras: int, base: str) -> str:
    per = cameras // 4
    personas = ("hikvision", "dahua", "axis", "onvif-generic")
    blocks = [f'[[camera]]\nid = "{p}"\npersona = "{p}"\ncount = {per}\n' for p in personas]
    return f'[lab]\nloopback_base = "{base}"\n' + "".join(blocks)


def start_lab(workdir: Path, cameras: int, base: str) -> tuple[subprocess.Popen[str], Path, float]:
    config, state = workdir / f"lab{cameras}.toml", workdir / f"lab{cameras}.json"
    config.write_text(lab_config(cameras, base))
    started = time.monotonic()
    proc = subprocess.Popen(
        [CLI, "up", "--config", config, "--state", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    while not state.exists():
        if proc.poll() is not None or time.monotonic() - started > 60:
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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="camwarden-lab-bench-") as tmp:
        workdir = Path(tmp)
        for n, cameras in enumerate((100, 500)):
            proc, state, elapsed = start_lab(workdir, cameras, f"127.{90 + n}.0.0")
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
            print(f"lab start: {cameras} cameras in {elapsed:.2f} s, RSS {rss:.0f} MiB")
            if cameras == 100:
                hosts = json.loads(state.read_text())["cameras"]
                hik = [f"http://{hosts[f'hikvision-{i}']}:10080" for i in range(1, 26)]
                isapi = [h + "/ISAPI/System/deviceInfo" for h in hik]
                onvif = [h + "/onvif/device_service" for h in hik]
                digest = httpx.DigestAuth("admin", "12345")
                rate = asyncio.run(throughput(isapi, soap=False, auth=digest))
                print(f"ISAPI deviceInfo (digest, new challenge per request): {rate:.0f} req/s")
                rate = asyncio.run(throughput(onvif, soap=True, auth=digest))
                print(f"ONVIF GetDeviceInformation (HTTP digest): {rate:.0f} req/s")
            stop_lab(proc)
    print(
        f"(client: httpx, {CONCURRENCY} concurrent, <= {REQUESTS} requests / {SECONDS:.0f} s; "
        f"host: {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
