"""The shipped default-credential catalogue (``agent/data/default-credentials.json``).

Built by ``python -m agent.credentials.build`` from MIT-licensed sources and publicly documented
vendor defaults; every entry names its vendors, whether it is generic (tried on any camera) and
its sources. The passwords here are public factory defaults, not secrets, but they are still
never put in findings: a hit is reported by entry id.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final

import msgspec

from agent.vendors.versions import canonical_vendor

SCHEMA: Final = "camwarden-default-credentials/1"


class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str
    location: str  # repository and path, or the vendor document
    revision: str | None = None
    license: str


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^dc-[0-9]{3}$")]
    username: str
    password: str
    vendors: list[str]  # canonical vendor keys whose devices ship with it
    generic: bool  # also tried on cameras of any vendor
    sources: list[str]


class Catalogue(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    schema: str = SCHEMA
    sources: list[Source]
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class DefaultCredential:
    id: str
    username: str
    password: str = field(repr=False)
    vendors: tuple[str, ...] = ()
    generic: bool = False


def load_catalogue(data: bytes | None = None) -> tuple[DefaultCredential, ...]:
    """Decode the catalogue (the shipped one by default); strict, unknown fields rejected."""
    if data is None:
        files = importlib.resources.files("agent")
        data = files.joinpath("data/default-credentials.json").read_bytes()
    catalogue = msgspec.json.decode(data, type=Catalogue)
    return tuple(
        DefaultCredential(e.id, e.username, e.password, tuple(e.vendors), e.generic)
        for e in catalogue.entries
    )


def candidates(
    catalogue: Sequence[DefaultCredential], vendor: str | None
) -> list[DefaultCredential]:
    """The entries to try on a camera of ``vendor``: its own defaults first, then generic ones.
    Other vendors' defaults are not tried."""
    key = canonical_vendor(vendor)
    own = [c for c in catalogue if key is not None and key in c.vendors]
    generic = [c for c in catalogue if c.generic and c not in own]
    return own + generic
