"""Fetch the advisory feed the collector publishes and install it (docs/adr/0006-advisory-feed.md).

``camwarden-agent run`` calls ``refresh`` every ``[advisories] refresh_s``. The collector is
trusted with delivery only: the feed must verify against the pinned feed keys, be fresh and be
no older than the last feed accepted (``install_feed``) before it is kept; anything else is
refused with the ``FeedError`` that says why, and the audits go on with the feed they had.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.advisories.feed import (
    FeedError,
    FeedSignatureError,
    install_feed,
    pinned_feed_keys,
)
from agent.config import AgentConfig
from protocol.envelope import MAX_FEED_BYTES

TIMEOUT_S = 30.0


class FeedUnavailable(FeedError):
    """The collector could not be asked, or did not answer with a feed."""

    reason = "unavailable"


@dataclass(frozen=True, slots=True)
class Refreshed:
    version: int | None  # None: the collector publishes no feed
    installed: bool  # the installed feed changed


def fetch_feed(url: str, timeout_s: float = TIMEOUT_S) -> bytes | None:
    """The feed at ``url``, None when none is published (404); at most ``MAX_FEED_BYTES``."""
    if not url.startswith(("http://", "https://")):
        raise FeedUnavailable(f"{url}: only http and https URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/jose"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            data: bytes = response.read(MAX_FEED_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise FeedUnavailable(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FeedUnavailable(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    if len(data) > MAX_FEED_BYTES:
        raise FeedSignatureError(f"{url}: more than {MAX_FEED_BYTES} bytes")
    return data.strip()


def refresh(config: AgentConfig, now: datetime) -> Refreshed:
    """Fetch ``config.feed_url`` and install what verifies; ``FeedError`` otherwise."""
    url = config.feed_url
    if url is None:
        raise FeedUnavailable("no feed URL: set [advisories] feed_url or collector_url")
    keys_file = config.advisories.feed_keys_file
    trusted = pinned_feed_keys(Path(keys_file) if keys_file else None)
    token = fetch_feed(url)
    if token is None:
        return Refreshed(None, installed=False)
    feed, installed = install_feed(token, config.state_path, trusted, now=now)
    return Refreshed(feed.version, installed)
