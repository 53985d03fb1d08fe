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
     +-- FeedStateUnreadable   the remembered state cannot be read: refused, never forgotten

``FeedState`` (version and digest of the newest accepted feed) is remembered across restarts in
``<state_dir>/advisory-feed.json`` (``FeedStateStore``): each load is checked against it and a
feed that moved forward is written back atomically, so an older signed feed is refused after a
restart too. The state is small and public.

Two feeds can be at hand: the one the package ships and the one last installed from the
collector (``install_feed``, ``<state_dir>/advisories.jws``, see ``agent.advisories.refresh``).
``newest_feed`` gives audits the newest of them that verifies: a package upgrade's newer feed
wins over an older download, a newer download over the package's. Both hold
``<state_dir>/advisory-feed.lock`` from reading the state to writing it, as the daemon's refresh
and an audit worker may load at the same time.
"""

from __future__ import annotations

import fcntl
import importlib.resources
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
from joserfc.jwk import OKPKey

from agent.advisories.match import MatchResult, Rule, compile_rule, match_identity
from agent.advisories.model import Feed, decode
from agent.errors import StorageError
from agent.state import atomic_write
from agent.vendors.models import DeviceIdentity
from protocol.envelope import FEED_TYP, MAX_FEED_BYTES, read_header, verify
from protocol.errors import MalformedMessage, ProtocolError, UnknownKey
from protocol.keys import import_public_jwk

logger = logging.getLogger(__name__)

DEFAULT_MAX_SKEW = timedelta(minutes=5)
FEED_STATE_FILE: Final = "advisory-feed.json"
INSTALLED_FEED_FILE: Final = "advisories.jws"
FEED_LOCK_FILE: Final = "advisory-feed.lock"


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


class FeedStateUnreadable(FeedError):
    reason = "state"


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
    return _key_set(text)


def pinned_feed_keys(keys_file: Path | None) -> dict[str, OKPKey]:
    """The shipped feed keys plus the organisation's, from ``keys_file`` (a JWK Set, ``[advisories]
    feed_keys_file``); ``FeedSignatureError`` if that file cannot be read as one."""
    keys = shipped_feed_keys()
    if keys_file is not None:
        try:
            keys.update(_key_set(keys_file.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError, MalformedMessage) as exc:
            raise FeedSignatureError(f"feed keys {keys_file}: {exc}") from exc
    return keys


def _key_set(text: str) -> dict[str, OKPKey]:
    keys = [import_public_jwk(jwk) for jwk in json.loads(text)["keys"]]
    return {key.thumbprint(): key for key in keys}


class FeedStateStore:
    """``<state_dir>/advisory-feed.json``: the newest feed this agent accepted."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FEED_STATE_FILE

    def load(self) -> FeedState | None:
        """The remembered state, None before the first feed; ``FeedStateUnreadable`` if the
        file exists but cannot be read or decoded (anti-rollback must not silently reset)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FeedStateUnreadable(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return msgspec.json.decode(data, type=FeedState, strict=True)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FeedStateUnreadable(f"{self.path} is corrupt: {exc}") from exc

    def save(self, state: FeedState) -> None:
        atomic_write(self.path, msgspec.json.encode(state), mode=0o644)


def _remember(store: FeedStateStore, feed: AdvisoryFeed, last: FeedState | None) -> None:
    if feed.state != last:
        try:
            store.save(feed.state)
        except StorageError as exc:
            logger.warning("advisory feed %d not remembered: %s", feed.version, exc)


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Hold ``<state_dir>/advisory-feed.lock``; without a state directory, go on unlocked (the
    state is then not remembered either, as ``_remember`` logs)."""
    try:
        fd = os.open(state_dir / FEED_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        logger.warning("advisory feed state not locked: %s", exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def newest_feed(state_dir: Path, trusted: Mapping[str, OKPKey], *, now: datetime) -> AdvisoryFeed:
    """The feed audits use: the newest that verifies of the installed and the shipped feed,
    remembered; the installed one's error (else the shipped one's) when neither does."""
    tokens = [shipped_feed()]
    try:
        tokens.insert(0, (state_dir / INSTALLED_FEED_FILE).read_bytes())
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("installed advisory feed unreadable, using the shipped one: %s", exc)
    store = FeedStateStore(state_dir)
    with _locked(state_dir):
        last = store.load()
        loaded: list[AdvisoryFeed] = []
        errors: list[FeedError] = []
        for token in tokens:
            try:
                loaded.append(load_feed(token, trusted, now=now, last=last))
            except FeedError as exc:
                errors.append(exc)
        if not loaded:
            raise errors[0]
        feed = max(loaded, key=lambda f: f.version)
        _remember(store, feed, last)
    return feed


def configured_feed(state_dir: Path, keys_file: str | None, *, now: datetime) -> AdvisoryFeed:
    """The feed audits and surveys judge firmware with: ``newest_feed`` under the pinned keys
    (the shipped ones and ``[advisories] feed_keys_file``); a ``FeedError`` when none verifies."""
    trusted = pinned_feed_keys(Path(keys_file) if keys_file else None)
    return newest_feed(state_dir, trusted, now=now)


def install_feed(
    token: bytes, state_dir: Path, trusted: Mapping[str, OKPKey], *, now: datetime
) -> tuple[AdvisoryFeed, bool]:
    """Verify ``token`` against the remembered state and keep it as the installed feed; return
    it and whether the installed file changed. The file is written (atomically) before the state
    moves forward, so a crash in between leaves a feed the next load accepts."""
    store, path = FeedStateStore(state_dir), state_dir / INSTALLED_FEED_FILE
    with _locked(state_dir):
        last = store.load()
        feed = load_feed(token, trusted, now=now, last=last)
        try:
            changed = path.read_bytes() != token
        except FileNotFoundError:
            changed = True
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
        if changed:
            atomic_write(path, token, mode=0o644)
        _remember(store, feed, last)
    return feed, changed
