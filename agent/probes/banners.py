"""Banner grab for clear-text and console services (telnet, FTP, SSH): connect, listen, leave.

Nothing is sent: no login, no client identification line. The first bytes the server volunteers
are classified and returned as printable text (telnet option negotiation removed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Literal

from agent.probes._net import camera_error, connected

__all__ = ["Banner", "BannerKind", "classify", "grab"]

BannerKind = Literal["ssh", "ftp", "telnet", "unknown", "silent"]
IAC: Final = 0xFF
SETTLE_S: Final = 0.3  # after the first bytes, how long to wait for the rest of the greeting


@dataclass(frozen=True, slots=True)
class Banner:
    kind: BannerKind
    text: str  # printable, at most 120 characters


def _strip_telnet(data: bytes) -> tuple[bytes, bool]:
    out, i, negotiated = bytearray(), 0, False
    while i < len(data):
        if data[i] != IAC:
            out.append(data[i])
            i += 1
            continue
        negotiated = True
        command = data[i + 1] if i + 1 < len(data) else 0
        i += 3 if 0xFB <= command <= 0xFE else 2
    return bytes(out), negotiated


def classify(data: bytes) -> Banner:
    text_bytes, negotiated = _strip_telnet(data)
    text = "".join(c if c.isprintable() else " " for c in text_bytes.decode("latin-1"))
    text = " ".join(text.split())[:120]
    kind: BannerKind
    if not data:
        kind = "silent"
    elif data.startswith(b"SSH-"):
        kind = "ssh"
    elif data[:4] in (b"220 ", b"220-"):
        kind = "ftp"
    elif negotiated or text.lower().endswith(("login:", "username:", "password:")):
        kind = "telnet"
    else:
        kind = "unknown"
    return Banner(kind, text)


async def grab(host: str, port: int, *, timeout_s: float, max_bytes: int = 1024) -> Banner:
    """The greeting of the service on ``host:port`` (``silent`` if it says nothing in time)."""
    data = bytearray()
    try:
        async with connected(host, port, timeout_s) as (reader, _):
            try:
                async with asyncio.timeout(timeout_s):
                    data += await reader.read(max_bytes)
                async with asyncio.timeout(SETTLE_S):
                    while len(data) < max_bytes and (chunk := await reader.read(max_bytes)):
                        data += chunk
            except TimeoutError:
                pass  # a silent or slow service: classify what arrived
    except (OSError, TimeoutError) as exc:
        raise camera_error(exc) from exc
    return classify(bytes(data[:max_bytes]))
