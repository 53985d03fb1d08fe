"""The camera's RTSP front: logins, per-interface accounts, the one lockout, the vendor's dress,
and the request log (as a file and through ``camwarden-lab log``), checked with ffprobe, curl
and raw sockets."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from lab.camera import RequestRecord
from lab.cli import main
from lab.fleet import Fleet
from lab.requestlog import RequestLog, read_log
from lab.services.rtsp import SYSTEM_PYTHON
from lab.testing import LabFactory
from tests.lab_services.test_rtsp import ffprobe

pytestmark = [
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (ffmpeg) is not installed"),
    pytest.mark.skipif(
        not Path(SYSTEM_PYTHON).exists(), reason="Debian's python3 with python3-gi is missing"
    ),
]
HIK = "/Streaming/Channels/101"
DAHUA = "/cam/realmonitor?channel=1&subtype=0"
LAB = """
[[camera]]
id = "hik"
persona = "hikvision"
[[camera]]
id = "dahua"
persona = "dahua"
rtsp_auth = "basic"
[[camera]]
id = "open"
persona = "onvif-generic"
anonymous_rtsp = true
[[camera]]
id = "split"
persona = "hikvision"
lockout = {threshold = 3, window_s = 30, lock_s = 2}
users = [{name = "admin", password = "Web-Pass-7x"}]
rtsp_users = [{name = "viewer", password = "Rtsp-Pass-9y"}]
[[camera]]
id = "nomedia"
persona = "onvif-generic"
anonymous_rtsp = true
rtsp_no_media = true
"""


@pytest.fixture
async def fleet(lab_fleet: LabFactory, tmp_path: Path) -> Fleet:
    log = tmp_path / "requests.jsonl"
    return await lab_fleet(f'[lab]\nrequest_log = "{log}"\n{LAB}')


async def rtsp(host: str, port: int, request: str) -> str:
    """Send one raw request; the answer's head."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    return head.decode("latin-1")


def stream_ok(result: tuple[int, str]) -> bool:
    return result[0] == 0 and "stream|codec_name=" in result[1]


async def test_logins_paths_and_streams(fleet: Fleet) -> None:
    hik, dahua, open_ = (fleet[c] for c in ("hik", "dahua", "open"))

    def at(node: str) -> str:
        return f"{fleet[node].host}:{fleet[node].ports['rtsp']}"

    probes = {
        "digest ok": f"rtsp://admin:12345@{at('hik')}{HIK}",
        "digest wrong": f"rtsp://admin:54321@{at('hik')}{HIK}",
        "digest anonymous": f"rtsp://{at('hik')}{HIK}",
        "unknown path": f"rtsp://{at('hik')}/live",
        "basic ok": f"rtsp://admin:admin@{at('dahua')}{DAHUA}",
        "basic wrong": f"rtsp://admin:nimda@{at('dahua')}{DAHUA}",
        "anonymous camera": f"rtsp://{at('open')}/stream1",
    }
    results = dict(zip(probes, await asyncio.gather(*map(ffprobe, probes.values())), strict=True))
    for name in ("digest ok", "basic ok", "anonymous camera"):
        assert stream_ok(results[name]), (name, results[name])
    for name in ("digest wrong", "digest anonymous", "basic wrong"):
        assert results[name][0] != 0, name
        assert "401 Unauthorized" in results[name][1], name
    assert "404 Not Found" in results["unknown path"][1]
    described = [r for r in hik.camera.log if r.interface == "rtsp" and r.method == "DESCRIBE"]
    assert any(r.status == 200 and r.user == "admin" and r.auth == "digest" for r in described)
    assert any(r.status == 401 and r.user is None for r in described)
    assert all("12345" not in r.target for r in hik.camera.log)
    assert any(r.method == "PLAY" and r.status == 200 for r in dahua.camera.log)
    assert any(r.method == "DESCRIBE" and r.auth == "none" for r in open_.camera.log)


async def test_options_answer_as_the_vendor_server_does(fleet: Fleet) -> None:
    hik, dahua = fleet["hik"], fleet["dahua"]
    options = "OPTIONS rtsp://{host}:{port}{path} RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    hik_head = await rtsp(hik.host, hik.ports["rtsp"], options.format(**vars_of(hik, HIK)))
    assert hik_head.startswith("RTSP/1.0 200 OK\r\nCSeq: 2\r\n")
    assert "Public: OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN" in hik_head
    assert "Server:" not in hik_head  # the recorded Hikvision answer has none
    dahua_head = await rtsp(
        dahua.host, dahua.ports["rtsp"], options.format(**vars_of(dahua, DAHUA))
    )
    assert dahua_head.startswith("RTSP/1.0 401 Unauthorized\r\n")  # Dahua: OPTIONS needs a login
    assert "Server: Rtsp Server/3.0\r\n" in dahua_head
    nmap_probe = await rtsp(hik.host, hik.ports["rtsp"], "OPTIONS / RTSP/1.0\r\n\r\n")
    assert nmap_probe.startswith("RTSP/1.0 200 OK\r\n")
    dahua_probe = await rtsp(dahua.host, dahua.ports["rtsp"], "OPTIONS / RTSP/1.0\r\n\r\n")
    assert dahua_probe.startswith("RTSP/1.0 401 Unauthorized\r\n")
    http_probe = await rtsp(hik.host, hik.ports["rtsp"], "GET / HTTP/1.0\r\n\r\n")
    assert http_probe.startswith("RTSP/1.0 400 Bad Request\r\n")
    heads = hik_head + dahua_head + nmap_probe + http_probe
    assert "GStreamer" not in heads
    described = await ffprobe(f"rtsp://admin:admin@{dahua.host}:{dahua.ports['rtsp']}{DAHUA}")
    assert stream_ok(described)  # the Server header on GStreamer's own answers is Dahua's too


def vars_of(node: object, path: str) -> dict[str, object]:
    return {"host": node.host, "port": node.ports["rtsp"], "path": path}  # type: ignore[attr-defined]


async def test_rtsp_has_its_own_accounts_and_counts_toward_the_lockout(fleet: Fleet) -> None:
    node = fleet["split"]
    at = f"{node.host}:{node.ports['rtsp']}"
    assert stream_ok(await ffprobe(f"rtsp://viewer:Rtsp-Pass-9y@{at}{HIK}"))
    web = node.url("/ISAPI/System/deviceInfo")
    async with httpx.AsyncClient() as client:
        assert (
            await client.get(web, auth=httpx.DigestAuth("viewer", "Rtsp-Pass-9y"))
        ).status_code == 401
        assert (
            await client.get(web, auth=httpx.DigestAuth("admin", "Web-Pass-7x"))
        ).status_code == 200
        # the web account is not an RTSP account: three RTSP failures lock admin everywhere
        for _ in range(3):
            refused = await ffprobe(f"rtsp://admin:Web-Pass-7x@{at}{HIK}")
            assert "401 Unauthorized" in refused[1]
        assert node.camera.locked("admin")
        assert [e.user for e in node.camera.lock_events] == ["admin"]
        locked = await client.get(web, auth=httpx.DigestAuth("admin", "Web-Pass-7x"))
        assert locked.status_code == 401
        await asyncio.sleep(2.1)
        assert (
            await client.get(web, auth=httpx.DigestAuth("admin", "Web-Pass-7x"))
        ).status_code == 200
    failures = [
        r
        for r in node.camera.log
        if r.interface == "rtsp" and r.user is None and r.auth == "digest"
    ]
    assert len(failures) == 3


async def test_request_log_file_and_log_command(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hik = fleet["hik"]
    await ffprobe(f"rtsp://admin:wrong@{hik.host}:{hik.ports['rtsp']}{HIK}")
    async with httpx.AsyncClient() as client:
        await client.get(fleet["dahua"].url("/cgi-bin/magicBox.cgi?action=getSerialNo"))
    path = tmp_path / "requests.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert {e["camera"] for e in entries} == {"hik", "dahua"}
    assert any(
        e["interface"] == "rtsp" and e["method"] == "DESCRIBE" and e["status"] == 401
        for e in entries
    )
    assert "wrong" not in path.read_text()
    capsys.readouterr()
    assert main(["log", "--file", str(path), "--camera", "dahua"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed
    assert all(e["camera"] == "dahua" for e in printed)
    assert printed[0]["target"] == "/cgi-bin/magicBox.cgi?action=getSerialNo"
    assert printed[0]["status"] == 401


async def test_lock_events_reach_the_request_log(fleet: Fleet, tmp_path: Path) -> None:
    node = fleet["split"]
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            await client.get(
                node.url("/ISAPI/System/deviceInfo"), auth=httpx.DigestAuth("admin", "nope")
            )
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    locks = [json.loads(line) for line in lines if '"event": "lock"' in line]
    assert len(locks) == 1
    assert locks[0]["camera"] == "split"
    assert locks[0]["user"] == "admin"
    assert locks[0]["until"] - locks[0]["at"] == pytest.approx(2.0)


def test_the_request_log_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path, max_bytes=2000)
    for n in range(100):
        log.write("cam", float(n), RequestRecord("http", "GET", f"/x/{n}", "none", None, 200))
    log.close()
    assert path.stat().st_size <= 2200
    assert (tmp_path / "requests.jsonl.1").stat().st_size <= 2200
    targets = [entry["target"] for entry in read_log(path)]
    assert targets == sorted(targets, key=lambda t: int(t.rsplit("/", 1)[1]))
    assert targets[-1] == "/x/99"
    fresh = RequestLog(path)  # a new lab run starts afresh
    fresh.close()
    assert path.stat().st_size == 0


async def test_a_describe_without_media_is_no_stream(fleet: Fleet) -> None:
    """``rtsp_no_media``: DESCRIBE answers 200 with an SDP that has no ``m=`` line; no client
    finds a stream there, and the lab's truth seeds no open stream (AUTH-08)."""
    node = fleet["nomedia"]
    url = f"rtsp://{node.host}:{node.ports['rtsp']}/stream1"
    reader, writer = await asyncio.open_connection(node.host, node.ports["rtsp"])
    try:
        writer.write(
            f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 3\r\nAccept: application/sdp\r\n\r\n".encode()
        )
        await writer.drain()
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
        length = int(head.split("Content-Length: ", 1)[1].split("\r\n", 1)[0])
        body = (await asyncio.wait_for(reader.readexactly(length), 10)).decode("latin-1")
    finally:
        writer.close()
    assert head.startswith("RTSP/1.0 200 OK\r\nCSeq: 3\r\n")
    assert "Content-Type: application/sdp" in head
    assert body.startswith("v=0\r\n")
    assert "m=" not in body
    assert not stream_ok(await ffprobe(url))
    assert "AUTH-08" not in node.weaknesses
    assert "AUTH-08" in fleet["open"].weaknesses
    assert any(
        r.method == "DESCRIBE" and r.status == 200 and r.auth == "none" for r in node.camera.log
    )
