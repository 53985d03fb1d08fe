"""An Internet provider's survey, the pure part: which prefixes it may survey, how a survey is cut
into shards for several survey agents, and how far it has come.

Directive 23/CT-TTg asks providers to find insecure cameras on their own network. A provider
(an organisation unit of the tree) declares the prefixes it holds; ``check_prefix`` accepts a
proper CIDR (host bits clear) of at most ``MAX_PREFIX_ADDRESSES`` addresses that is neither
loopback, multicast, link-local, unspecified nor reserved; ``overlapping`` names the declared
prefixes a new one would overlap (no address is ever held by two organisations, or twice by one).

``split`` cuts the ordered union of a survey's prefixes into contiguous shards of at most
``shard_max`` addresses, as even as possible, each written as the fewest CIDR blocks: every
address of the prefixes is in exactly one shard (no gap, no overlap; checked by property tests).
``assign`` gives each shard to the least-loaded live agent, so that a provider scales out by
adding agents; a shard whose agent went silent is given again the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# a /12 of IPv4 (about a million addresses): more is cut into several declarations
MAX_PREFIX_ADDRESSES: Final = 1 << 20
MAX_PREFIX_TEXT: Final = 64
# addresses one survey command covers (a shard); more shards than agents keep re-issue small
DEFAULT_SHARD_MAX: Final = 4096
MAX_SHARDS: Final = 4096  # of one survey


class PrefixRejected(ValueError):
    """A prefix that cannot be declared: ``code`` (``survey.e.<code>`` in the catalogue)."""

    def __init__(self, code: str, **params: str | int) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def check_prefix(text: str) -> Network:
    """The network ``text`` names, or ``PrefixRejected`` saying why it cannot be surveyed."""
    text = text.strip()
    if not text or len(text) > MAX_PREFIX_TEXT or "/" not in text:
        raise PrefixRejected("prefix_syntax", value=text[:MAX_PREFIX_TEXT])
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PrefixRejected("prefix_syntax", value=text) from exc
    for refused, code in (
        (net.is_loopback, "prefix_loopback"),
        (net.is_multicast, "prefix_multicast"),
        (net.is_link_local, "prefix_link_local"),
        (net.is_unspecified, "prefix_unspecified"),
        (net.is_reserved, "prefix_reserved"),
    ):
        if refused:
            raise PrefixRejected(code, value=str(net))
    if net.num_addresses > MAX_PREFIX_ADDRESSES:
        raise PrefixRejected("prefix_too_big", value=str(net), limit=MAX_PREFIX_ADDRESSES)
    return net


def overlapping(net: Network, declared: Iterable[Network]) -> list[Network]:
    """The declared prefixes that share an address with ``net``."""
    return [d for d in declared if d.version == net.version and d.overlaps(net)]


@dataclass(frozen=True, slots=True)
class Shard:
    """Contiguous addresses of a survey: ``blocks`` in address order, ``addresses`` in all."""

    position: int
    blocks: tuple[Network, ...]
    addresses: int


def _pieces(prefixes: Sequence[Network]) -> list[tuple[int, int, int]]:
    """(version, first, last) integer ranges of the prefixes, in order, adjacent ones joined."""
    ranges = sorted((n.version, int(n.network_address), int(n.broadcast_address)) for n in prefixes)
    joined: list[tuple[int, int, int]] = []
    for version, first, last in ranges:
        if joined and joined[-1][0] == version and joined[-1][2] + 1 >= first:
            if last > joined[-1][2]:
                joined[-1] = (version, joined[-1][1], last)
            continue
        joined.append((version, first, last))
    return joined


def _blocks(version: int, first: int, last: int) -> Iterator[Network]:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return ipaddress.summarize_address_range(make(first), make(last))


def split(prefixes: Sequence[Network], shard_max: int = DEFAULT_SHARD_MAX) -> list[Shard]:
    """The prefixes cut into at most ``MAX_SHARDS`` shards of at most ``shard_max`` addresses
    (more when the cap needs it), as even as possible; see the module's docstring."""
    if shard_max < 1:
        raise ValueError("shard_max must be positive")
    pieces = _pieces(prefixes)
    total = sum(last - first + 1 for _, first, last in pieces)
    if total == 0:
        return []
    count = min(max(1, -(-total // shard_max)), MAX_SHARDS)
    base, extra = divmod(total, count)
    sizes = [base + (1 if i < extra else 0) for i in range(count)]
    shards: list[Shard] = []
    blocks: list[Network] = []
    want = sizes[0]
    taken = 0
    for version, first, last in pieces:
        at = first
        while at <= last:
            step = min(last - at + 1, want - taken)
            blocks.extend(_blocks(version, at, at + step - 1))
            at += step
            taken += step
            if taken == want:
                shards.append(Shard(len(shards), tuple(blocks), taken))
                blocks, taken = [], 0
                want = sizes[len(shards)] if len(shards) < count else 0
    return shards


def assign(shards: Sequence[int], agents: Sequence[str], load: dict[str, int]) -> dict[int, str]:
    """Each shard (by its address count, keyed by position) to the agent with the fewest
    addresses so far (``load``: what they hold already); ties go to the agent listed first."""
    if not agents:
        raise ValueError("no survey agent to give the shards to")
    held = {a: load.get(a, 0) for a in agents}
    result: dict[int, str] = {}
    for position, size in enumerate(shards):
        agent = min(agents, key=lambda a: held[a])
        result[position] = agent
        held[agent] += size
    return result


def silent(last_heard: datetime | None, now: datetime, after: timedelta) -> bool:
    """An agent not heard from for ``after`` (or never) is silent: its open shards go elsewhere."""
    return last_heard is None or now - last_heard >= after


def eta(done: int, total: int, started_at: datetime, now: datetime) -> timedelta | None:
    """The time left at the rate so far (None before the first address is done)."""
    if done <= 0 or total <= 0:
        return None
    if done >= total:
        return timedelta(0)
    elapsed = (now - started_at).total_seconds()
    return timedelta(seconds=max(0.0, elapsed) * (total - done) / done)
