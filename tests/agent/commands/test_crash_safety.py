"""kill -9 of a real agent process mid-download and mid-reboot: the journal holds the step,
the next start resumes (the download continues with a Range request and is verified whole)
and the command ends ``succeeded``; never an unknown state."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from lab.firmware import make_image
from lab.testing import LabFactory
from protocol import write_private_key
from tests.agent.commands.world import MODEL, World, lab_config, writes
from tests.agent.conftest import Collector
from tests.support.firmware import publish_image

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
IMAGE_BYTES = 24 * 1024 * 1024


@contextlib.asynccontextmanager
async def throttled(upstream_port: int, bytes_per_s: int) -> AsyncIterator[int]:
    """A loopback TCP proxy slowing the server's answers down (a slow site uplink)."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: int) -> None:
        try:
            while data := await reader.read(64 * 1024):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(pump(client_r, up_w, 0), pump(up_r, client_w, bytes_per_s))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


class AgentProcess:
    def __init__(self, w: World, tmp: Path, collector_url: str) -> None:
        self.w = w
        config = msgspec.structs.replace(w.config, collector_url=collector_url)
        self.config_path = tmp / "agent-config.json"
        self.config_path.write_bytes(msgspec.json.encode(config))
        self.key_path = tmp / "agent.key"
        if not self.key_path.exists():
            write_private_key(self.key_path, w.agent_key)
        self.log = tmp / "agent.log"

    async def start(self, command: bytes | None = None) -> asyncio.subprocess.Process:
        args = [str(self.config_path), str(self.key_path), str(self.w.credentials.path)]
        if command is not None:
            (self.config_path.parent / "command.jws").write_bytes(command)
            args.append(str(self.config_path.parent / "command.jws"))
        with self.log.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.agent.commands.run_agent", *args,
                cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip

    def step(self) -> str | None:
        entries = list((self.w.state / "commands" / "journal").glob("*.json"))
        if not entries:
            return None
        return str(json.loads(entries[0].read_bytes())["step"])


async def until(predicate: object) -> None:
    assert callable(predicate)
    async with asyncio.timeout(30):
        while not predicate():  # noqa: ASYNC110  # polls files another process writes
            await asyncio.sleep(0.02)


def partial_size(w: World) -> int:
    files = list((w.state / "firmware" / "partial").glob("*.part"))
    return files[0].stat().st_size if files else 0


async def test_kill_9_mid_download_then_resume(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    fleet = await lab_fleet(lab_config(reboot_s=1.0))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["hik"])
    big = make_image("hikvision", "V5.8.0", dt.date(2024, 6, 1), IMAGE_BYTES, model=MODEL)
    view = publish_image(w.tuf_state, collector_tuf.repo, big, version="V5.8.0")
    token = w.sign(w.command(params=w.firmware(view.target_path, "V5.8.0")))
    port = int(collector_tuf.base_url.rsplit(":", 1)[1])
    async with throttled(port, 4 * 1024 * 1024) as slow:
        agent = AgentProcess(w, tmp_path, f"http://127.0.0.1:{slow}")
        proc = await agent.start(token)
        await until(lambda: partial_size(w) > IMAGE_BYTES // 4)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    killed_at = partial_size(w)
    assert 0 < killed_at < IMAGE_BYTES
    assert agent.step() == "downloading"
    assert writes(w.log) == []  # nothing reached the camera
    agent = AgentProcess(w, tmp_path, collector_tuf.base_url)
    proc = await agent.start()
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    text = agent.log.read_text()
    assert "resuming" in text
    assert "succeeded" in text, text
    assert w.node.camera.version == "V5.8.0"
    assert agent.step() is None
    trail = w.trail(json.loads(msgspec.json.encode(w.results()[0]))["command_id"])
    assert trail == [
        "accepted", "preflight", "downloading",  # killed here
        "preflight", "downloading", "uploading", "rebooting", "verifying", "succeeded",
    ]  # fmt: skip


async def test_kill_9_mid_reboot_then_resume(
    lab_fleet: LabFactory, collector_tuf: Collector, tmp_path: Path
) -> None:
    fleet = await lab_fleet(lab_config(reboot_s=3.0))
    w = World.make(tmp_path, collector_tuf.state, collector_tuf.base_url, fleet["hik"])
    agent = AgentProcess(w, tmp_path, collector_tuf.base_url)
    command = w.command()
    proc = await agent.start(w.sign(command))
    await until(lambda: agent.step() == "rebooting")
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    uploads = [r for r in w.log if r.method == "PUT"]
    assert len(uploads) == 1
    proc = await agent.start()
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert "succeeded" in agent.log.read_text()
    assert w.node.camera.version == "V5.7.3"
    assert [r for r in w.log if r.method == "PUT"] == uploads  # not uploaded twice
    assert w.trail(command.command_id)[-3:] == ["rebooting", "verifying", "succeeded"]
