"""RTSP/1.0 client for the stream-authentication checks (AUTH-08, AUTH-09).

``describe`` sends OPTIONS and DESCRIBE without credentials on one connection and returns the
status, the offered ``WWW-Authenticate`` schemes and the SDP if the camera handed it out. Given
a credential it answers a Digest challenge once (RFC 2617 MD5, as RTSP cameras do). Basic is
answered only when the caller allows it (``basic=True``) and the camera offers no Digest: the
default-credential check does, for the public catalogue passwords it guesses (AUTH-01); the
agent's own credential is never sent with Basic, so it never crosses the network in the clear.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from agent.probes._net import Streams, camera_error, connected, read_until
from agent.vendors.base import BadResponse
from agent.vendors.models import Credential

__all__ = [
    "DEFAULT_PATHS",
    "GENERIC_PATHS",
    "Challenge",
    "RtspReply",
    "describe",
    "parse_challenges",
]

MAX_HEADER: Final = 16 * 1024
DEFAULT_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "hikvision": ("/Streaming/Channels/101",),
    "dahua": ("/cam/realmonitor?channel=1&subtype=0",),
    "axis": ("/axis-media/media.amp",),
}
GENERIC_PATHS: Final = (
    "/Streaming/Channels/101",
    "/cam/realmonitor?channel=1&subtype=0",
    "/axis-media/media.amp",
    "/stream1",
    "/live",
    "/h264",
    "/11",
)
_STATUS = re.compile(rb"^RTSP/1\.0 (\d{3})[^\r\n]*$")
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic", "digest", ...
    params: Mapping[str, str] = field(default_factory=dict)  # keys lower case


@dataclass(frozen=True, slots=True)
class RtspReply:
    uri: str
    status: int  # of the last DESCRIBE
    challenges: tuple[Challenge, ...]  # offered to the anonymous DESCRIBE
    content_type: str
    sdp: bytes
    public: str  # the methods OPTIONS listed
    authenticated: bool  # the status is that of a Digest-authenticated retry

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted({c.scheme for c in self.challenges}))

    @property
    def describes_media(self) -> bool:
        """The answer is a session description with at least one media line (RFC 8866
        ``m=``): only then is a stream open. An SDP without one describes nothing to play."""
        lines = self.sdp.splitlines()
        return (
            bool(lines) and lines[0].strip() == b"v=0" and any(x.startswith(b"m=") for x in lines)
        )


def parse_challenges(values: list[str]) -> tuple[Challenge, ...]:
    """``WWW-Authenticate`` header values as challenges (one value may hold several)."""
    out: list[Challenge] = []
    for value in values:
        # a new challenge starts at a token followed by a space and a key=value pair or the end
        for part in re.split(r",\s*(?=[A-Za-z][\w-]*\s+[\w-]+\s*=)", value.strip()):
            scheme, _, rest = part.strip().partition(" ")
            if not scheme:
                continue
            params = {
                m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                for m in _PARAM.finditer(rest)
            }
            out.append(Challenge(scheme.lower(), params))
    return tuple(out)


@dataclass(slots=True)
class _Session:
    streams: Streams
    max_bytes: int
    cseq: int = 0

    async def request(
        self, method: str, uri: str, extra: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, list[str]], bytes]:
        reader, writer = self.streams
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: camwarden-agent"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        data = await read_until(reader, b"\r\n\r\n", MAX_HEADER)
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        match = _STATUS.match(status_line)
        if match is None:
            raise BadResponse(f"not an RTSP status line: {status_line[:60]!r}")
        headers: dict[str, list[str]] = {}
        for line in header_lines:
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                raise BadResponse(f"malformed RTSP header: {line[:60]!r}")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length_text = (headers.get("content-length") or ["0"])[0]
        if not (length_text.isascii() and length_text.isdigit()):  # "²".isdigit() is true
            raise BadResponse(f"bad Content-Length {length_text[:20]!r}")
        length = int(length_text)
        if length > self.max_bytes:
            raise BadResponse(f"RTSP body of {length} bytes exceeds {self.max_bytes}")
        while len(body) < length:
            chunk = await reader.read(length - len(body))
            if not chunk:
                raise BadResponse("RTSP body truncated")
            body += chunk
        return int(match.group(1)), headers, body[:length]


def _digest(challenge: Challenge, credential: Credential, method: str, uri: str) -> dict[str, str]:
    p = challenge.params
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    if p.get("algorithm", "MD5").upper() != "MD5":
        raise BadResponse(f"unsupported digest algorithm {p.get('algorithm')!r}")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1 = md5(f"{credential.username}:{realm}:{credential.password}")
    ha2 = md5(f"{method}:{uri}")
    fields = {"username": credential.username, "realm": realm, "nonce": nonce, "uri": uri}
    if "auth" in p.get("qop", "").split(","):
        cnonce = secrets.token_hex(8)
        fields |= {"qop": "auth", "nc": "00000001", "cnonce": cnonce}
        fields["response"] = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    else:
        fields["response"] = md5(f"{ha1}:{nonce}:{ha2}")
    if "opaque" in p:
        fields["opaque"] = p["opaque"]
    unquoted = {"qop", "nc"}
    text = ", ".join(f"{k}={v}" if k in unquoted else f'{k}="{v}"' for k, v in fields.items())
    return {"Authorization": f"Digest {text}"}


def _basic(credential: Credential) -> dict[str, str]:
    token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def describe(
    host: str,
    port: int,
    path: str,
    *,
    timeout_s: float,
    max_bytes: int = 64 * 1024,
    credential: Credential | None = None,
    basic: bool = False,
) -> RtspReply:
    """OPTIONS + DESCRIBE of ``rtsp://host:port{path}`` without credentials, then once with
    ``credential`` if the camera asks for it (Digest; Basic only with ``basic``, see module
    doc)."""
    uri = f"rtsp://{host}:{port}{path}"
    try:
        async with asyncio.timeout(timeout_s), connected(host, port, timeout_s) as streams:
            session = _Session(streams, max_bytes)
            _, options, _ = await session.request("OPTIONS", uri)
            accept = {"Accept": "application/sdp"}
            status, headers, body = await session.request("DESCRIBE", uri, accept)
            challenges = parse_challenges(headers.get("www-authenticate", []))
            authenticated = False
            digest = next((c for c in challenges if c.scheme == "digest"), None)
            offered_basic = any(c.scheme == "basic" for c in challenges)
            if status == 401 and credential is not None:
                auth: dict[str, str] | None = None
                if digest is not None:
                    auth = _digest(digest, credential, "DESCRIBE", uri)
                elif basic and offered_basic:
                    auth = _basic(credential)
                if auth is not None:
                    status, headers, body = await session.request("DESCRIBE", uri, accept | auth)
                    authenticated = True
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise camera_error(exc) from exc
    content_type = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    return RtspReply(
        uri=uri,
        status=status,
        challenges=challenges,
        content_type=content_type,
        sdp=body if content_type == "application/sdp" else b"",
        public=", ".join(options.get("public", [])),
        authenticated=authenticated,
    )
