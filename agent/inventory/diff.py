"""What changed between two inventories (pure): new, vanished, changed and swapped devices.

A device is followed by its identity, not its address: its MAC and serial number (from the
vendors' discovery answers or its identification), else its stable endpoint (WS-Discovery EPR /
UPnP UDN). Pairing, in this order:

1. a shared identifier (MAC, serial or endpoint): the same device, wherever it is now; one that
   moved to another address is "changed" (``address`` among the fields), never
   "vanished + new", so it keeps its history;
2. the same address, where neither side knows an identifier that contradicts the other's (one
   side has none yet): the same device, learning its identity;
3. the same address with contradicting identifiers (another MAC, serial or endpoint): a
   different device took the address: "swapped" (before, after);
4. whatever is left is new or vanished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.inventory.discover import Host

__all__ = ["InventoryDiff", "diff", "key"]


def _identifiers(host: Host) -> dict[str, str]:
    found = {"mac": host.mac, "serial": host.serial, "endpoint": host.endpoint}
    return {kind: value for kind, value in found.items() if value}


def key(host: Host) -> str:
    """The identity a device is followed by: MAC, else serial, else endpoint, else address."""
    kind, value = next(iter(_identifiers(host).items()), ("ip", host.address))
    return value if kind == "endpoint" else f"{kind}:{value}"


def _conflict(a: Host, b: Host) -> bool:
    ours, theirs = _identifiers(a), _identifiers(b)
    return any(theirs[kind] != value for kind, value in ours.items() if kind in theirs)


def _shared(a: Host, b: Host) -> bool:
    ours, theirs = _identifiers(a), _identifiers(b)
    return any(theirs.get(kind) == value for kind, value in ours.items())


@dataclass(frozen=True, slots=True)
class InventoryDiff:
    new: tuple[Host, ...]
    vanished: tuple[Host, ...]
    changed: tuple[tuple[Host, Host, tuple[str, ...]], ...]  # before, after, changed fields
    swapped: tuple[tuple[Host, Host], ...] = ()  # before, after: another device, same address

    @property
    def empty(self) -> bool:
        return not (self.new or self.vanished or self.changed or self.swapped)


_COMPARED = ("address", "vendor_hint", "open_ports", "xaddrs")


def diff(previous: Iterable[Host], current: Iterable[Host]) -> InventoryDiff:
    before = sorted(previous, key=key)
    after = sorted(current, key=key)
    pairs: list[tuple[Host, Host]] = []
    swapped: list[tuple[Host, Host]] = []

    def pair(rule: Callable[[Host, Host], bool], into: list[tuple[Host, Host]]) -> None:
        for now in list(after):
            then = next((h for h in before if rule(h, now)), None)
            if then is not None:
                before.remove(then)
                after.remove(now)
                into.append((then, now))

    pair(_shared, pairs)
    pair(lambda a, b: a.address == b.address and not _conflict(a, b), pairs)
    pair(lambda a, b: a.address == b.address, swapped)
    changed = []
    for then, now in pairs:
        fields = tuple(f for f in _COMPARED if getattr(then, f) != getattr(now, f))
        if fields:
            changed.append((then, now, fields))
    return InventoryDiff(
        new=tuple(after), vanished=tuple(before), changed=tuple(changed), swapped=tuple(swapped)
    )
