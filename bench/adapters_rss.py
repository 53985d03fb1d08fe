# ruff: noqa: PLC0415  # imports are the thing measured: each one happens between two readings
"""Agent-side RSS of the vendor adapters: after each import, and identifying 100 lab cameras.

The lab (25 cameras per persona) runs in a subprocess (``camwarden-lab up``) so that only the
agent's memory is measured here. Identification uses bounded concurrency (``CONCURRENCY``), as
the agent's audit loop does; a second pass holds ``HELD`` ONVIF clients open at once to show the
cost of one more camera's ONVIF client.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CLI = Path(sys.executable).parent / "camwarden-lab"
CONCURRENCY = 10
HELD = 50
PERSONAS = {
    "hikvision": ("admin", "12345"),
    "dahua": ("admin", "admin"),
    "axis": ("root", "pass"),
    "onvif-generic": ("admin", "123456"),
}


def rss() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(step: str, before: float | None = None) -> float:
    now = rss()
    delta = f" (+{now - before:.1f})" if before is not None else ""
    print(f"{step:<58} RSS {now:6.1f} MiB{delta}  peak {peak():6.1f} MiB")
    return now


def start_lab(workdir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    blocks = [f'[[camera]]\nid = "{p}"\npersona = "{p}"\ncount = 25\n' for p in PERSONAS]
    config, state = workdir / "lab.toml", workdir / "lab.json"
    config.write_text('[lab]\nloopback_base = "127.95.0.0"\n' + "".join(blocks))
    proc = subprocess.Popen(
        [CLI, "up", "--config", config, "--state", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    started = time.monotonic()
    while not state.exists():
        if proc.poll() is not None or time.monotonic() - started > 60:
            raise RuntimeError("lab did not start")
        time.sleep(0.05)
    hosts: dict[str, str] = json.loads(state.read_text())["cameras"]
    return proc, hosts


async def identify_all(hosts: dict[str, str]) -> dict[str, int]:
    from agent.audit.identify import identify
    from agent.vendors.base import AdapterConfig, CameraError
    from agent.vendors.models import Credential, Interface, Target

    config = AdapterConfig(timeout_s=10.0)
    gate = asyncio.Semaphore(CONCURRENCY)
    sources: dict[str, int] = {}

    async def one(cam_id: str, host: str) -> None:
        persona = cam_id.rsplit("-", 1)[0]
        target = Target(cam_id, host, {Interface.HTTP: 10080})
        async with gate:
            try:
                found = await identify(target, config, Credential(*PERSONAS[persona]))
            except CameraError as exc:
                sources[exc.code] = sources.get(exc.code, 0) + 1
                return
            if found.adapter is not None:
                await found.adapter.close()
            key = found.identity.source or "?"
            sources[key] = sources.get(key, 0) + 1

    await asyncio.gather(*(one(cam_id, host) for cam_id, host in hosts.items()))
    return sources


async def hold_onvif(hosts: dict[str, str]) -> float:
    """Open ``HELD`` ONVIF adapters at once (identify each, keep them open), then close."""
    from agent.vendors.base import AdapterConfig
    from agent.vendors.models import Credential, Interface, Target
    from agent.vendors.onvif.adapter import OnvifAdapter

    adapters = []
    for cam_id, host in list(hosts.items())[:HELD]:
        persona = cam_id.rsplit("-", 1)[0]
        target = Target(cam_id, host, {Interface.HTTP: 10080})
        adapters.append(OnvifAdapter(target, AdapterConfig(), Credential(*PERSONAS[persona])))
    before = rss()
    await asyncio.gather(*(a.identify() for a in adapters))
    held = rss()
    for adapter in adapters:
        await adapter.close()
    return (held - before) / HELD


def main() -> int:
    start = report("bare interpreter + psutil")
    import agent.vendors.base

    last = report("agent.vendors.base", start)
    import agent.vendors.http

    last = report("agent.vendors.http (httpx)", last)
    import agent.vendors.hikvision.adapter

    last = report("hikvision adapter", last)
    import agent.vendors.dahua.adapter

    last = report("dahua adapter", last)
    import agent.vendors.axis.adapter

    last = report("axis adapter", last)
    import agent.audit.identify  # noqa: F401  # registry: the ONVIF adapter module, not onvif itself

    last = report("registry + identify (onvif library not loaded yet)", last)
    import onvif  # noqa: F401

    last = report("onvif-zeep-async imported (what the first ONVIF use loads)", last)
    with tempfile.TemporaryDirectory(prefix="camwarden-adapters-bench-") as tmp:
        proc, hosts = start_lab(Path(tmp))
        try:
            started = time.monotonic()
            sources = asyncio.run(identify_all(hosts))
            elapsed = time.monotonic() - started
            last = report(f"identified {len(hosts)} cameras ({CONCURRENCY} at a time)", last)
            print(f"  in {elapsed:.1f} s: {json.dumps(sources, sort_keys=True)}")
            per_camera = asyncio.run(hold_onvif(hosts))
            report(f"after holding {HELD} ONVIF clients open at once", last)
            print(f"  one more open ONVIF client: {per_camera * 1024:.0f} KiB")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
