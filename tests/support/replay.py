"""A loopback HTTP server that replays recorded device answers (``tests/fixtures/real``).

Answers are looked up by method and path with its query (``GET /axis-cgi/param.cgi?...``), and
SOAP requests (``POST`` to any path) by the operation named by the first element of the body
(``GetDeviceInformation``). A SOAP fault is sent with HTTP 500, as ONVIF devices do. Anything
not recorded is a 404, which the adapters read as "this device lacks the endpoint". No
credential is asked for: the replay tests what the adapters make of the answers, not the login.
Every request is logged in ``requests`` (method, path with query, SOAP operation or "").
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from lxml import etree

REAL = Path(__file__).parents[1] / "fixtures" / "real"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One answer: a body from the corpus (``file`` under ``tests/fixtures/real``)."""

    file: str
    content_type: str = "text/plain"
    status: int = 200

    def body(self) -> bytes:
        return (REAL / self.file).read_bytes()


@dataclass(slots=True)
class Replay:
    """The running server's port and the requests it answered."""

    port: int
    requests: list[tuple[str, str, str]] = field(default_factory=list)


def _operation(body: bytes) -> str:
    """The local name of the SOAP Body's first element ("" when the body is no envelope)."""
    try:
        envelope = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return ""
    for child in envelope:
        if etree.QName(child).localname == "Body" and len(child):
            return str(etree.QName(child[0]).localname)
    return ""


@asynccontextmanager
async def replay(
    paths: Mapping[str, Recorded],
    soap: Mapping[str, Recorded] | None = None,
    server: str = "",
) -> AsyncIterator[Replay]:
    """Serve ``paths`` (``"GET /path?query"`` -> answer) and ``soap`` (operation -> answer) on
    127.0.0.1; ``server`` is the ``Server`` header sent with every answer."""
    state = Replay(port=0)
    headers = {"Server": server} if server else {}

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        operation = _operation(body) if request.method == "POST" and soap else ""
        state.requests.append((request.method, request.path_qs, operation))
        answer = (soap or {}).get(operation) if operation else None
        answer = answer or paths.get(f"{request.method} {request.path_qs}")
        if answer is None:
            return web.Response(status=404, text="Not Found", headers=headers)
        data = answer.body()
        status = 500 if operation and b"Fault>" in data else answer.status
        return web.Response(
            status=status, body=data, content_type=answer.content_type, headers=headers
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    state.port = listener.getsockname()[1]
    await web.SockSite(runner, listener).start()
    try:
        yield state
    finally:
        await runner.cleanup()
        listener.close()
