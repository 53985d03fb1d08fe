"""The vendor HTTP client's own guarantees, against raw answers no camera lab persona gives:
a password passed as a query parameter reaches the camera as it is and never an error, and a
digest challenge whose body was not read is released before the request is sent again."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from agent.vendors.base import AdapterConfig, AuthFailed, BadResponse
from agent.vendors.http import digest, fetch, make_session
from agent.vendors.models import Credential, Interface, Target

CONFIG = AdapterConfig(timeout_s=2.0, max_response_bytes=64 * 1024)
SECRET = "S3cret-Pa55"
CHALLENGE = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Digest realm="cam", nonce="abc123", qop="auth"\r\n'
    b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
)
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def _serve(answer: Answer) -> AsyncIterator[Target]:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield Target("raw", "127.0.0.1", {Interface.HTTP: port})


@pytest.fixture
async def malformed() -> AsyncIterator[Target]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        await writer.drain()
        writer.close()

    async for target in _serve(answer):
        yield target


@pytest.fixture
async def big_challenges() -> AsyncIterator[Target]:
    """A 401 with a digest challenge and a 1 MiB body to every request, on a kept connection."""
    body = b"x" * (1024 * 1024)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await _read_head(reader)
                writer.write(CHALLENGE % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async for target in _serve(answer):
        yield target


async def test_a_secret_query_parameter_never_reaches_the_error(malformed: Target) -> None:
    async with make_session(malformed, CONFIG, None) as session:
        with pytest.raises(BadResponse) as refused:
            await fetch(
                session,
                "GET",
                "/axis-cgi/pwdgrp.cgi?action=update&user=root",
                max_bytes=1024,
                accept={"text/plain"},
                secret_params={"pwd": SECRET},
            )
    assert refused.value.detail.startswith("/axis-cgi/pwdgrp.cgi?action=update&user=root: ")
    assert SECRET not in str(refused.value)
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__


@pytest.fixture
async def echo_query() -> AsyncIterator[tuple[Target, list[bytes]]]:
    """Keeps each request's target (path and query, as sent) and answers OK."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await _read_head(reader)).split(b" ")[1])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK")
        await writer.drain()
        writer.close()

    async for target in _serve(answer):
        yield target, seen


@pytest.mark.parametrize("password", ["Ab1%cd-x", "Ab1%41+x", "a#b?c=d&e f", "Mật-khẩu%zz"])
async def test_a_secret_query_parameter_reaches_the_camera_as_it_is(
    echo_query: tuple[Target, list[bytes]], password: str
) -> None:
    """On the wire, each secret value is percent-encoded whole after the query already there:
    "%" before two hex digits, "+", "#", "&" and non-ASCII letters reach the camera, which
    decodes the query once, as they are."""
    target, seen = echo_query
    async with make_session(target, CONFIG, None) as session:
        await fetch(
            session,
            "GET",
            "/cgi-bin/userManager.cgi?action=modifyPassword&name=admin",
            max_bytes=1024,
            accept={"text/plain"},
            secret_params={"pwdOld": "old%20", "pwd": password},
        )
    query = dict(parse_qsl(urlsplit(seen[0].decode("ascii")).query, keep_blank_values=True))
    assert query == {
        "action": "modifyPassword",
        "name": "admin",
        "pwdOld": "old%20",
        "pwd": password,
    }


async def test_an_unread_challenge_is_released_before_the_retry(big_challenges: Target) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with make_session(big_challenges, CONFIG, None) as session:
            for attempt in range(4):  # twice the pool: a held connection would stall the rest
                with pytest.raises(AuthFailed):
                    await asyncio.wait_for(
                        fetch(
                            session,
                            "GET",
                            "/ISAPI/System/deviceInfo",
                            max_bytes=2 * 1024 * 1024,
                            accept={"text/plain"},
                            auth=digest(Credential("admin", f"guess-{attempt}")),
                        ),
                        CONFIG.timeout_s,
                    )
        gc.collect()
    unclosed = [w for w in caught if "Unclosed" in str(w.message)]
    assert unclosed == []
