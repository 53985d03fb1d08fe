"""Peak RSS of ``camwarden-agent scan --once`` against one ONVIF camera that answers
GetDeviceInformation with 1 GiB (chunked, no length), next to the same camera answering
normally.

Two processes: the camera (this script with ``--serve``: an aiohttp server on loopback that
answers the SOAP operations of an audit, ONVIF only) and the audit, whose peak RSS is read with
``wait4`` (``bench.audit.measured``). Prints figures; exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.audit import PORT_SHIFT, agent_config, measured
from tests.support.onvif_answers import CLOCK, INFO, envelope

BIN = Path(sys.executable).parent
FLOOD_BYTES = 1024**3


async def _serve(host: str, port: int, *, flood: bool) -> None:
    from aiohttp import web  # noqa: PLC0415  # the camera's process only

    async def soap(request: web.Request) -> web.StreamResponse:
        found = re.search(rb"Body[^>]*>\s*<(?:\w+:)?(\w+)", await request.read())
        op = found.group(1).decode() if found else ""
        kind = "application/soap+xml"
        if op == "GetSystemDateAndTime":
            return web.Response(body=envelope(op, CLOCK).encode(), content_type=kind)
        if op != "GetDeviceInformation":
            return web.Response(status=400)
        if not flood:
            return web.Response(
                body=envelope(op, INFO.format(model="M-1")).encode(), content_type=kind
            )
        response = web.StreamResponse(headers={"Content-Type": kind})
        await response.prepare(request)
        chunk = b"A" * (1024 * 1024)
        sent = 0
        try:
            await response.write(envelope(op, "<tds:Model>").encode().split(b"</tds:Model>")[0])
            for _ in range(FLOOD_BYTES // len(chunk)):
                await response.write(chunk)
                sent += len(chunk)
        except ConnectionError:
            pass  # the agent hung up
        print(f"  camera: {sent / 1024**2:.0f} MiB of GetDeviceInformation sent", file=sys.stderr)
        return response

    app = web.Application()
    app.router.add_post("/onvif/device_service", soap)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await asyncio.Event().wait()


def _camera(host: str, *, flood: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.onvif_flood", "--serve", host]
    proc = subprocess.Popen([*argv, *(["--flood"] if flood else [])])
    time.sleep(2.0)  # aiohttp's import and bind
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", metavar="HOST", help=argparse.SUPPRESS)
    parser.add_argument("--flood", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default=f"127.{100 + os.getpid() % 100}.251.10")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, 80 + PORT_SHIFT, flood=args.flood))
        return 0
    argv = [str(BIN / "camwarden-agent"), "--log-level", "ERROR", "scan", "--once", "--json"]
    with tempfile.TemporaryDirectory(prefix="camwarden-onvif-flood-") as tmp:
        for flood in (False, True):
            camera = _camera(args.host, flood=flood)
            try:
                name = "flood" if flood else "normal"
                config = agent_config(Path(tmp) / name, {"cam": (args.host, "Generic")}, 1)
                wall, peak, out, cpu = measured([*argv, "--config", str(config)])
            finally:
                camera.terminate()
                camera.wait(timeout=30)
            [audited] = json.loads(out)["cameras"]
            answer = f"{FLOOD_BYTES // 1024**2} MiB" if flood else "a normal"
            print(
                f"scan --once, one ONVIF camera, {answer} GetDeviceInformation answer:"
                f" peak RSS {peak:5.1f} MiB, {wall:5.1f} s wall, {cpu:5.1f} s CPU"
            )
            print(f"  audit: {audited['audit']} ({audited.get('audit_reason')})")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
