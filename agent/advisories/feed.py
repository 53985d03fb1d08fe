"""Verify and load a signed advisory feed (docs/adr/0006-advisory-feed.md).

Order, as in python-tuf: check the exact bytes first, parse after. Size and JWS shape, then the
signature against a pinned feed key (the kid must be one of ``trusted``; ``typ`` must be
``camwarden-feed+jws``, so no other signed camwarden object passes as a feed), then the payload is
decoded strictly, then freshness: not expired, not issued in the future beyond the allowed skew,
and never older than the last feed accepted (anti-rollback). A replacement with the same version
must be byte-identical. Only then are the rules compiled; one bad rule rejects the feed.

Errors::

    FeedError                  the feed was rejected; ``reason`` is stable (metrics, findings)
     +-- FeedSignatureError    not a JWS, unknown key, or the signature does not verify
     +-- FeedMalformed         signed, but the payload or a rule is invalid
     +-- FeedExpired           ``expires_at`` has passed, or ``issued_at`` is in the future
     +-- FeedRollback          older than the last accepted feed, or same version, other bytes

The caller persists ``FeedState`` (version and digest of the last accepted feed) and passes it
back on the next load; the state is small, public and written atomically by the caller.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from joserfc.jwk import OKPKey

from agent.advisories.match import MatchResult, Rule, compile_rule, match_identity
from agent.advisories.model import Feed, decode
from agent.vendors.models import DeviceIdentity
from protocol.envelope import read_header, verify
from protocol.errors import MalformedMessage, ProtocolError, UnknownKey
from protocol.keys import import_public_jwk

FEED_TYP = "camwarden-feed+jws"
MAX_FEED_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_SKEW = timedelta(minutes=5)


class FeedError(Exception):
    reason = "feed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class FeedSignatureError(FeedError):
    reason = "signature"


class FeedMalformed(FeedError):
    reason = "malformed"


class FeedExpired(FeedError):
    reason = "expired"


class FeedRollback(FeedError):
    reason = "rollback"


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the agent remembers of the last accepted feed."""

    version: int
    digest: str  # SHA-256 hex of the JWS bytes


@dataclass(frozen=True, slots=True)
class AdvisoryFeed:
    """A verified feed with its rules compiled, ready to match identities."""

    feed: Feed
    rules: tuple[Rule, ...]
    state: FeedState
    kid: str

    @property
    def version(self) -> int:
        return self.feed.version

    def match(self, identity: DeviceIdentity) -> MatchResult:
        return match_identity(self.rules, identity)


def load_feed(
    token: bytes,
    trusted: Mapping[str, OKPKey],
    *,
    now: datetime,
    last: FeedState | None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> AdvisoryFeed:
    """Verify ``token`` and return the loaded feed, or raise a ``FeedError``."""

    def resolve(kid: str) -> OKPKey:
        key = trusted.get(kid)
        if key is None:
            raise UnknownKey(f"feed key {kid} is not pinned")
        return key

    try:
        if read_header(token, MAX_FEED_BYTES).get("typ") != FEED_TYP:
            raise MalformedMessage(f"typ must be {FEED_TYP}")
        verified = verify(token, resolve, max_bytes=MAX_FEED_BYTES)
    except ProtocolError as exc:
        raise FeedSignatureError(f"{exc.reason}: {exc.detail}") from exc
    try:
        feed = decode(verified.payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise FeedMalformed(str(exc)) from exc
    if feed.expires_at <= now:
        raise FeedExpired(f"feed {feed.version} expired at {feed.expires_at.isoformat()}")
    if feed.issued_at > now + max_skew:
        raise FeedExpired(f"feed {feed.version} is issued in the future")
    if last is not None:
        if feed.version < last.version:
            raise FeedRollback(f"feed {feed.version} is older than the accepted {last.version}")
        if feed.version == last.version and verified.digest != last.digest:
            raise FeedRollback(
                f"feed {feed.version} differs from the accepted feed of that version"
            )
    try:
        rules = tuple(compile_rule(advisory) for advisory in feed.advisories)
    except ValueError as exc:
        raise FeedMalformed(str(exc)) from exc
    return AdvisoryFeed(feed, rules, FeedState(feed.version, verified.digest), verified.kid)


def shipped_feed() -> bytes:
    """The feed shipped in the package (``agent/data/advisories.jws``)."""
    return importlib.resources.files("agent").joinpath("data/advisories.jws").read_bytes()


def shipped_feed_keys() -> dict[str, OKPKey]:
    """The feed keys shipped in the package: the development key only (see ADR 0006)."""
    text = importlib.resources.files("agent").joinpath("data/feed-keys.json").read_text("utf-8")
    keys = [import_public_jwk(jwk) for jwk in json.loads(text)["keys"]]
    return {key.thumbprint(): key for key in keys}
