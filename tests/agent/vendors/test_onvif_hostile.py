"""The ONVIF client against a hostile camera served on loopback: an answer without end, a
media service on another host, a redirect elsewhere, a DTD in UTF-16.

The camera is a small aiohttp server that answers the SOAP operations the adapter sends as a
camera would (shapes of the ONVIF WSDLs), and misbehaves in one way per test. A listener on
another loopback block stands for the host the camera names: it counts every connection.
"""

from __future__ import annotations

import re
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from agent.audit.auditor import Auditor
from agent.config import load_config
from agent.scope import ForeignUrl
from agent.vendors.base import AdapterConfig, BadResponse
from agent.vendors.models import Credential, Interface, Target
from agent.vendors.onvif.adapter import OnvifAdapter
from lab.testing import private_base
from tests.agent.listeners import Listeners, listening
from tests.support.onvif_answers import CLOCK, INFO, envelope

pytestmark = pytest.mark.integration

CONFIG = AdapterConfig(timeout_s=10.0, max_response_bytes=1024 * 1024)
CREDENTIAL = Credential("admin", "Kq7!vR2#mZ9x")


def soap(text: str, encoding: str = "utf-8") -> web.Response:
    return web.Response(
        body=text.encode(encoding), content_type="application/soap+xml", charset=encoding
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Camera:
    """What the hostile camera answers, by operation (defaults: a well-behaved camera)."""

    foreign: str = ""  # base URL of the host the camera names as its media service
    special: dict[str, Handler] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)

    async def soap(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        found = re.search(rb"Body[^>]*>\s*<(?:\w+:)?(\w+)", body)
        op = found.group(1).decode() if found else ""
        self.operations.append(op)
        if op in self.special:
            return await self.special[op](request)
        if op == "GetSystemDateAndTime":
            return soap(envelope(op, CLOCK))
        if op == "GetCapabilities":
            xaddr = f"{self.foreign}/onvif/media_service"
            media = f"<tds:Capabilities><tt:Media><tt:XAddr>{xaddr}</tt:XAddr></tt:Media>"
            return soap(envelope(op, media + "</tds:Capabilities>"))
        if op == "GetDeviceInformation":
            return soap(envelope(op, INFO.format(model="M-1")))
        return web.Response(status=400)


@dataclass
class Foreign:
    url: str
    counts: Listeners

    @property
    def connections(self) -> int:
        return self.counts.reached


@pytest.fixture
async def foreign() -> AsyncIterator[Foreign]:
    """A listener on another loopback block: the host a camera names in a URL it supplies."""
    async with listening(str(private_base() + 20), tcp=[0]) as counts:
        yield Foreign(f"http://{counts.host}:{next(iter(counts.tcp))}", counts)


@pytest.fixture
async def camera(foreign: Foreign) -> AsyncIterator[tuple[Camera, OnvifAdapter]]:
    behaviour = Camera(foreign=foreign.url)
    app = web.Application()
    app.router.add_post("/onvif/device_service", behaviour.soap)
    app.router.add_post("/onvif/media_service", behaviour.soap)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host = str(private_base() + 10)
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    adapter = OnvifAdapter(Target("hostile", host, {Interface.HTTP: port}), CONFIG, CREDENTIAL)
    try:
        yield behaviour, adapter
    finally:
        await adapter.close()
        await runner.cleanup()


async def test_a_media_service_on_another_host_is_refused_and_gets_nothing(
    camera: tuple[Camera, OnvifAdapter], foreign: Foreign
) -> None:
    _, adapter = camera
    with pytest.raises(ForeignUrl, match="not on the camera's address"):
        await adapter.streams()
    with pytest.raises(ForeignUrl):
        await adapter.unauthenticated_operations()
    assert foreign.connections == 0


async def test_a_redirect_elsewhere_is_not_followed(
    camera: tuple[Camera, OnvifAdapter], foreign: Foreign
) -> None:
    behaviour, adapter = camera

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(foreign.url + "/onvif/device_service")

    behaviour.special["GetDeviceInformation"] = redirect
    with pytest.raises(BadResponse):
        await adapter.identify()
    assert foreign.connections == 0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_an_answer_without_end_is_cut_at_the_cap(
    camera: tuple[Camera, OnvifAdapter],
) -> None:
    """256 MiB of answer, chunked without a length: refused after the cap, memory unmoved."""
    behaviour, adapter = camera
    chunk = b"<tds:Model>" + b"A" * (1024 * 1024) + b"</tds:Model>"
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml"})
        await response.prepare(request)
        head = envelope("GetDeviceInformation", "").split("</tds:GetDeviceInformationResponse>")
        await response.write(head[0].encode())
        try:
            for _ in range(256):
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    await adapter.identify()  # the WSDLs parsed and the connection made: not charged below
    behaviour.special["GetDeviceInformation"] = endless
    before = _peak_mib()
    with pytest.raises(BadResponse, match="exceeds"):
        await adapter.identify()
    assert _peak_mib() - before < 32
    assert sum(sent) < 64 * 1024 * 1024  # the agent hung up; the camera stopped early


async def test_a_declared_length_over_the_cap_is_refused_before_reading(
    camera: tuple[Camera, OnvifAdapter],
) -> None:
    behaviour, adapter = camera

    async def declared(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml"})
        response.content_length = 1024**3
        await response.prepare(request)
        return response

    behaviour.special["GetDeviceInformation"] = declared
    with pytest.raises(BadResponse, match="1073741824 bytes exceeds"):
        await adapter.identify()


@pytest.mark.parametrize(
    ("encoding", "declared", "refusal"),
    [
        ("utf-8", "UTF-8", "DTD"),
        ("utf-16", "UTF-16", "DTD"),  # with a byte-order mark
        ("utf-16-le", "UTF-16", "DTD"),  # without one
        ("utf-32", "UTF-32", "malformed"),  # unreadable to the check: refused all the same
        ("iso-8859-1", "ISO-8859-1", "DTD"),
    ],
)
async def test_a_dtd_is_refused_in_any_encoding(
    camera: tuple[Camera, OnvifAdapter], encoding: str, declared: str, refusal: str
) -> None:
    """A DTD without an entity: what onvif-zeep-async's settings let through."""
    behaviour, adapter = camera
    prolog = f'<?xml version="1.0" encoding="{declared}"?><!DOCTYPE env:Envelope>'

    async def with_dtd(request: web.Request) -> web.StreamResponse:
        text = envelope("GetDeviceInformation", INFO.format(model="M-1"), prolog)
        return soap(text, encoding)

    behaviour.special["GetDeviceInformation"] = with_dtd
    with pytest.raises(BadResponse, match=refusal):
        await adapter.identify()


async def test_a_well_behaved_answer_still_parses(camera: tuple[Camera, OnvifAdapter]) -> None:
    _, adapter = camera
    identity = await adapter.identify()
    assert (identity.model, identity.serial) == ("M-1", "SN1")


async def test_an_audit_of_the_camera_sends_nothing_to_the_host_it_names(
    camera: tuple[Camera, OnvifAdapter], foreign: Foreign, tmp_path: Path
) -> None:
    """The whole audit, every check: the foreign media service is refused where it is named
    (finding evidence ``foreign_url``) and the listener there sees no connection."""
    _, adapter = camera
    target = adapter.target
    path = tmp_path / "agent.toml"
    path.write_text(
        f'agent_id = "a"\nsite = "s"\nstate_dir = "{tmp_path / "state"}"\n'
        "[audit]\nrequest_timeout_s = 5\ncheck_timeout_s = 30\ncamera_timeout_s = 120\n"
        f'[network]\ncamera_subnets = ["{target.address}/32"]\n'
        "probe_timeout_s = 1\nudp_window_s = 0.2\n"
        f'[[cameras]]\nid = "hostile"\naddress = "{target.address}"\n'
        f'http_port = {target.ports[Interface.HTTP]}\ncredentials_ref = "cam"\n'
    )
    config = load_config(path)
    config.state_path.mkdir()
    auditor = Auditor(config, credentials={"cam": CREDENTIAL}, site_key=None)
    result = await auditor.run()
    [audited] = result.cameras
    assert audited.identity.model == "M-1"
    refused = [f for f in audited.findings if f.evidence.get("error") == "foreign_url"]
    assert refused, [(f.code, f.reason) for f in audited.findings]
    assert all("not on the camera's address" in str(f.reason) for f in refused)
    assert foreign.connections == 0
