"""The advisory feed payload, as signed: strict types, unknown fields rejected.

Version bounds are vendor firmware strings (``agent.vendors.versions``); they are parsed and
the model patterns compiled when the feed is loaded, so a bad rule rejects the whole feed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal

import msgspec

from protocol.messages import Severity

SCHEMA: Final = "camwarden-advisories/1"

Cve = Annotated[str, msgspec.Meta(pattern=r"^CVE-\d{4}-\d{4,7}$")]
RuleId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")]
# exact: the vendor lists the model and range; probable: a heuristic (e.g. build date before the
# fix for models the rule cannot list); unscoped: KEV names the product but no version scope.
Scope = Literal["exact", "probable", "unscoped"]


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Kev(_Strict, frozen=True, kw_only=True):
    date_added: date
    due_date: date | None = None
    ransomware: bool = False


class Advisory(_Strict, frozen=True, kw_only=True):
    id: RuleId
    cve: Cve
    vendor: str  # canonical vendor key (agent.vendors.versions.canonical_vendor)
    product: str  # human-readable product scope
    models: list[str] = []  # regular expressions, full match, case-insensitive; [] = any model
    affected_from: str | None = None  # inclusive firmware version
    affected_through: str | None = None  # inclusive firmware version
    fixed_in: str | None = None  # first fixed version: exclusive upper bound and upgrade hint
    built_from: date | None = None  # inclusive build date
    built_before: date | None = None  # exclusive build date
    scope: Scope = "exact"
    severity: Severity
    no_fix: bool = False  # the vendor will not fix it: replace the device
    kev: Kev | None = None
    source: str  # where the range comes from (advisory id / URL)
    note: str | None = None


class FeedSource(_Strict, frozen=True, kw_only=True):
    name: str
    version: str
    license: str


class Feed(_Strict, frozen=True, kw_only=True):
    schema: Literal["camwarden-advisories/1"] = SCHEMA
    version: Annotated[int, msgspec.Meta(ge=1)]
    issued_at: Annotated[datetime, msgspec.Meta(tz=True)]
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)]
    sources: list[FeedSource]
    advisories: list[Advisory]


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(Feed)


def encode(feed: Feed) -> bytes:
    return _encoder.encode(feed)


def decode(payload: bytes) -> Feed:
    """Raise ``msgspec.ValidationError``/``DecodeError``; the loader translates them."""
    return _decoder.decode(payload)
