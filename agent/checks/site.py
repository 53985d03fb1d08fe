"""Site checks: judged over the whole audit, after every camera's own checks ran.

A site check sees every camera's result and, for a full audit, the inventory (what answered
this time and what changed since the last audit); it returns findings to add to cameras and
findings about the site itself. Pure: the audit gathers what they see and stores the inventory.
``SITE_CHECKS`` in ``agent.checks`` is the explicit list of what runs, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from agent.inventory.diff import InventoryDiff
from agent.inventory.discover import Host
from protocol.messages import Camera, Finding


@dataclass(frozen=True, slots=True)
class SiteInventory:
    """The inventory of a full audit: hosts that answered, by address, and the change since
    the last inventory; ``registered`` holds the configured cameras' addresses."""

    current: Mapping[str, Host]
    change: InventoryDiff
    registered: frozenset[str]


@dataclass(frozen=True, slots=True)
class Site:
    cameras: Sequence[Camera]
    inventory: SiteInventory | None  # None: an audit of chosen cameras, no inventory


@dataclass(frozen=True, slots=True)
class SiteFindings:
    cameras: Mapping[str, Sequence[Finding]] = field(default_factory=dict)  # by camera id
    site: Sequence[Finding] = ()


class SiteCheck(ABC):
    id: ClassVar[str]
    controls: ClassVar[tuple[str, ...]]

    @abstractmethod
    def run(self, site: Site) -> SiteFindings: ...
