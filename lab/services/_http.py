"""Just enough HTTP/1.1 for UPnP description documents and SOAP control: one request per
connection, Content-Length bodies only, ``Connection: close``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from lab.services._net import TcpService

MAX_HEAD: Final = 16 * 1024
MAX_BODY: Final = 64 * 1024
READ_TIMEOUT: Final = 10.0
XML: Final = 'text/xml; charset="utf-8"'


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = XML


Route = Callable[[HttpRequest], HttpResponse]


async def read_request(reader: asyncio.StreamReader) -> HttpRequest:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    if len(head) > MAX_HEAD:
        raise ValueError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if not 0 <= length <= MAX_BODY:
        raise ValueError("bad Content-Length")
    body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    return HttpRequest(method, path.split("?", 1)[0], headers, body)


def encode_response(response: HttpResponse, server: str) -> bytes:
    reason = HTTPStatus(response.status).phrase
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Server: {server}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + response.body


async def serve_http(sock: socket.socket, route: Route, *, server: str) -> TcpService:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
        except ValueError:
            response = HttpResponse(HTTPStatus.BAD_REQUEST, b"", "text/plain")
        else:
            response = route(request)
        writer.write(encode_response(response, server))
        await writer.drain()

    return await TcpService(handle).start(sock)


def location(http: socket.socket, path: str) -> str:
    """The URL of ``path`` on the HTTP socket, as the UPnP LOCATION header names it."""
    host, port = http.getsockname()[:2]
    return f"http://{host}:{port}{path}"
