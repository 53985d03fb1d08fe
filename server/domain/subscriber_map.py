"""Which subscriber held an address when: the provider's map, its CSV, and attribution (pure).

Addresses move between subscribers, so each line of the map holds an address or prefix for a
subscriber over a validity period ``[valid_from, valid_to)`` (``valid_to`` empty: still held).
A finding is attributed to the line that held its address at the survey's time; where lines
nest, the most specific prefix wins (a business line inside a residential pool).

The CSV (``COLUMNS``, read by ``server.domain.csvtable``) gives dates (``2026-12-01``) or times
with their offset (``2026-12-01T08:00:00+07:00``); a date starts at midnight UTC. Periods of
the same prefix must not overlap, and a prefix must lie inside one the provider declared.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from server.domain import csvtable
from server.domain.csvtable import LineError
from server.domain.survey_plan import Address, Network

LIMITS: Final[dict[str, int]] = {
    "prefix": 64,
    "subscriber_id": 64,
    "name": 200,
    "contact": 200,
    "province": 100,
    "district": 100,
    "valid_from": 32,
    "valid_to": 32,
}
COLUMNS: Final = tuple(LIMITS)
REQUIRED: Final = ("prefix", "subscriber_id", "valid_from")
# its base64 rides in the preview page's form (1 MiB a field): larger maps go in several files
TABLE: Final = csvtable.Table(LIMITS, REQUIRED, max_bytes=600 * 1024, max_rows=10_000)
MAP_CODES: Final = ("prefix", "outside", "period", "period_overlap")  # survey.e.<code>


@dataclass(frozen=True, slots=True)
class Holding:
    """One line of the map: ``network`` held by ``subscriber_id`` from ``valid_from`` until
    ``valid_to`` (excluded; None: still held)."""

    network: Network
    subscriber_id: str
    name: str
    contact: str
    province: str
    district: str
    valid_from: datetime
    valid_to: datetime | None

    def key(self) -> tuple[str, datetime]:
        return str(self.network), self.valid_from

    def holds(self, address: Address, at: datetime) -> bool:
        return (
            address.version == self.network.version
            and address in self.network
            and self.valid_from <= at
            and (self.valid_to is None or at < self.valid_to)
        )


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        if "T" in text or " " in text:
            raise ValueError("a time needs its offset")
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _holding(line: int, values: dict[str, str]) -> tuple[Holding | None, list[LineError]]:
    errors: list[LineError] = []
    network: Network | None = None
    try:
        network = ipaddress.ip_network(values["prefix"], strict=True)
    except ValueError:
        errors.append(LineError(line, "prefix", {"value": values["prefix"]}))
    times: dict[str, datetime | None] = {}
    for column in ("valid_from", "valid_to"):
        text = values.get(column, "")
        try:
            times[column] = _time(text) if text else None
        except ValueError:
            errors.append(LineError(line, "date", {"column": column, "value": text}))
    start, end = times.get("valid_from"), times.get("valid_to")
    if start is not None and end is not None and end <= start:
        errors.append(LineError(line, "period", {}))
    if errors or network is None or start is None:
        return None, errors
    return Holding(
        network,
        values["subscriber_id"],
        values.get("name", ""),
        values.get("contact", ""),
        values.get("province", ""),
        values.get("district", ""),
        start,
        end,
    ), []


def parse(
    data: bytes, declared: Sequence[Network]
) -> tuple[list[tuple[int, Holding]], list[LineError]]:
    """Every line checked (also: inside a declared prefix; no two periods of a prefix overlap);
    the holdings only when no line has an error."""
    rows, errors = csvtable.read(data, TABLE, _holding, Holding.key)
    for line, h in rows:
        if not any(_inside(h.network, d) for d in declared):
            errors.append(LineError(line, "outside", {"value": str(h.network)}))
    by_prefix: dict[str, list[tuple[int, Holding]]] = {}
    for line, h in rows:
        by_prefix.setdefault(str(h.network), []).append((line, h))
    for same in by_prefix.values():
        same.sort(key=lambda lh: lh[1].valid_from)
        for (first, a), (line, b) in itertools.pairwise(same):
            if a.valid_to is None or a.valid_to > b.valid_from:
                errors.append(LineError(line, "period_overlap", {"first": first}))
    errors.sort(key=lambda e: e.line)
    return ([] if errors else rows), errors


def _inside(net: Network, outer: Network) -> bool:
    return net.version == outer.version and net.subnet_of(outer)  # type: ignore[arg-type]


def holder(address: Address, at: datetime, holdings: Sequence[Holding]) -> Holding | None:
    """Who held ``address`` at ``at``: the most specific line valid then (None: nobody)."""
    held = [h for h in holdings if h.holds(address, at)]
    return max(held, key=lambda h: (h.network.prefixlen, h.valid_from), default=None)
