"""A small real RTSP server on loopback for tests: OPTIONS answered as cameras do, DESCRIBE
answered by a function of the request (method line and headers), over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

# (status, reason, extra header lines, body) for one DESCRIBE
Reply = tuple[int, str, list[str], bytes]
Describe = Callable[[str, dict[str, str]], Reply]

SESSION = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nt=0 0\r\n"
MEDIA = b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n"


def sdp(body: bytes) -> Reply:
    return 200, "OK", ["Content-Type: application/sdp"], body


async def _serve(
    describe: Describe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            first, *rest = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in rest:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            cseq = headers.get("cseq", "0")
            if first.startswith("OPTIONS "):
                status, reason, extra, body = 200, "OK", ["Public: OPTIONS, DESCRIBE"], b""
            else:
                status, reason, extra, body = describe(first, headers)
            lines = [f"RTSP/1.0 {status} {reason}", f"CSeq: {cseq}", *extra]
            lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def rtsp_server(describe: Describe, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Serve on ``host`` (a free port, yielded) until the block ends."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve(describe, reader, writer)

    server = await asyncio.start_server(handler, host, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
