"""What changed between two inventories (pure): new, vanished and changed cameras.

A camera is keyed by its stable endpoint (WS-Discovery EPR / UPnP UDN) when it has one, else by
its address, so a camera that moved to another address is "changed", not "vanished + new".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.inventory.discover import Host

__all__ = ["InventoryDiff", "diff", "key"]


def key(host: Host) -> str:
    return host.endpoint or f"ip:{host.address}"


@dataclass(frozen=True, slots=True)
class InventoryDiff:
    new: tuple[Host, ...]
    vanished: tuple[Host, ...]
    changed: tuple[tuple[Host, Host, tuple[str, ...]], ...]  # before, after, changed fields

    @property
    def empty(self) -> bool:
        return not (self.new or self.vanished or self.changed)


_COMPARED = ("address", "vendor_hint", "open_ports", "xaddrs")


def diff(previous: Iterable[Host], current: Iterable[Host]) -> InventoryDiff:
    before = {key(h): h for h in previous}
    after = {key(h): h for h in current}
    changed = []
    for k in sorted(before.keys() & after.keys()):
        fields = tuple(f for f in _COMPARED if getattr(before[k], f) != getattr(after[k], f))
        if fields:
            changed.append((before[k], after[k], fields))
    return InventoryDiff(
        new=tuple(after[k] for k in sorted(after.keys() - before.keys())),
        vanished=tuple(before[k] for k in sorted(before.keys() - after.keys())),
        changed=tuple(changed),
    )
