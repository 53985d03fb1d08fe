"""The advisory feed the collector hands to its agents (docs/adr/0006-advisory-feed.md).

Feeds are built and signed offline with the organisation's feed key (``python -m
agent.advisories.build``). ``camwarden-server advisories publish FILE`` checks that the file is a
signed feed before it replaces the published one: size, JWS shape, ``typ``, and the signature when
``[advisories] feed_keys_file`` names the feed keys (the JWK Set the agents pin). ``GET
/advisories/feed`` serves it unauthenticated, as ``/tuf/`` serves firmware metadata: agents verify
it against their pinned keys, freshness and anti-rollback, so the collector is trusted with
delivery only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from joserfc.jwk import OKPKey

from protocol import MalformedMessage, ProtocolError, UnknownKey, import_public_jwk
from protocol.envelope import FEED_TYP, MAX_FEED_BYTES, read_header, unverified_payload, verify
from service.files import atomic_write

FEED_FILE: Final = "advisories.jws"
MEDIA_TYPE: Final = "application/jose"


class FeedRefused(Exception):
    """The file is not a feed this collector will publish; the message says why."""


@dataclass(frozen=True, slots=True)
class FeedInfo:
    version: int
    issued_at: datetime
    expires_at: datetime
    kid: str
    signature_checked: bool


def feed_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / FEED_FILE


def pinned_keys(path: Path) -> dict[str, OKPKey]:
    """The feed keys of a JWK Set file (``{"keys": [...]}``), by thumbprint."""
    try:
        keys = json.loads(path.read_bytes())["keys"]
        found = [import_public_jwk(jwk) for jwk in keys]
    except (OSError, ValueError, KeyError, TypeError, MalformedMessage) as exc:
        raise FeedRefused(f"{path}: not a JWK Set of feed keys: {exc}") from exc
    return {key.thumbprint(): key for key in found}


def inspect_feed(token: bytes, keys: dict[str, OKPKey] | None) -> FeedInfo:
    """What a publisher must know of ``token`` before it goes out; ``FeedRefused`` if it is not
    a signed feed (or, with ``keys``, not signed by one of them)."""

    def resolve(kid: str) -> OKPKey:
        if keys is None or kid not in keys:
            raise UnknownKey(f"feed key {kid} is not in the pinned feed keys")
        return keys[kid]

    token = token.strip()
    try:
        header = read_header(token, MAX_FEED_BYTES)
        if header.get("typ") != FEED_TYP:
            raise FeedRefused(f"typ is {header.get('typ')!r}, a feed's is {FEED_TYP}")
        if keys is not None:
            payload = verify(token, resolve, max_bytes=MAX_FEED_BYTES).payload
        else:
            payload = unverified_payload(token, MAX_FEED_BYTES)
        body = json.loads(payload)
        return FeedInfo(
            version=int(body["version"]),
            issued_at=datetime.fromisoformat(body["issued_at"]),
            expires_at=datetime.fromisoformat(body["expires_at"]),
            kid=header["kid"],
            signature_checked=keys is not None,
        )
    except ProtocolError as exc:
        raise FeedRefused(f"{exc.reason}: {exc.detail}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedRefused(f"not a camwarden advisory feed: {exc}") from exc


def publish(state_dir: str | Path, token: bytes, keys: dict[str, OKPKey] | None) -> FeedInfo:
    """Check ``token`` and make it the published feed (atomically: agents fetching meanwhile get
    the old feed or the new one)."""
    info = inspect_feed(token, keys)
    atomic_write(feed_path(state_dir), token.strip(), 0o644)
    return info
