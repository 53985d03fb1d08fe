"""HTTP authentication as cameras do it: RFC 7616 Digest (MD5 or SHA-256, qop=auth) and Basic.

Every HTTP interface of every persona (ONVIF, ISAPI, CGI, VAPIX) uses this one module. Nonces
are stateless (timestamp + HMAC under the camera's secret) and expire after ``NONCE_TTL_S``.
``parse`` never sees the stored password: it returns a checker the camera calls with it, so the
camera's lockout bookkeeping sits in one place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["NONCE_TTL_S", "Presented", "challenge", "parse"]

NONCE_TTL_S = 300
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}


@dataclass(frozen=True, slots=True)
class Presented:
    """Credentials a client presented: who it claims to be and how to check the password."""

    scheme: Literal["basic", "digest"]
    username: str
    check: Callable[[str], bool]


def challenge(realm: str, secret: bytes, now: float, *, basic: bool) -> str:
    """The ``WWW-Authenticate`` value a camera sends with a 401."""
    if basic:
        return f'Basic realm="{realm}"'
    return (
        f'Digest realm="{realm}", qop="auth", nonce="{_nonce(secret, now)}", '
        f'opaque="{_mac(secret, "opaque")[:16]}", algorithm=MD5, stale=FALSE'
    )


def parse(header: str, method: str, realm: str, secret: bytes, now: float) -> Presented | None:
    """Parse an ``Authorization`` header; ``None`` if absent, malformed or with a stale nonce."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "basic":
        return _basic(rest.strip())
    if scheme.lower() != "digest":
        return None
    p = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    algorithm = p.get("algorithm", "MD5").upper()
    needed = ("username", "nonce", "uri", "response")
    if (
        algorithm not in _HASHES
        or any(k not in p for k in needed)
        or not _fresh(p["nonce"], secret, now)
    ):
        return None
    if p.get("realm") != realm:
        return Presented("digest", p["username"], lambda _password: False)
    h = _HASHES[algorithm]

    def hexdigest(text: str) -> str:
        return h(text.encode()).hexdigest()

    def check(password: str) -> bool:
        ha1 = hexdigest(f"{p['username']}:{realm}:{password}")
        ha2 = hexdigest(f"{method}:{p['uri']}")
        if p.get("qop"):
            tail = f"{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}"
        else:
            tail = f"{p['nonce']}:{ha2}"
        return hmac.compare_digest(hexdigest(f"{ha1}:{tail}"), p["response"].lower())

    return Presented("digest", p["username"], check)


def _basic(token: str) -> Presented | None:
    try:
        username, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not sep:
        return None
    return Presented("basic", username, lambda stored: hmac.compare_digest(stored, password))


def _mac(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def _nonce(secret: bytes, now: float) -> str:
    stamp = f"{int(now):x}"
    return f"{stamp}{_mac(secret, stamp)[:24]}"


def _fresh(nonce: str, secret: bytes, now: float) -> bool:
    stamp, mac = nonce[:-24], nonce[-24:]
    try:
        issued = int(stamp, 16)
    except ValueError:
        return False
    return hmac.compare_digest(mac, _mac(secret, stamp)[:24]) and 0 <= now - issued <= NONCE_TTL_S
