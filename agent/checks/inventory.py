"""INV-04: every camera that answered is in the configured inventory, and nothing changed or
vanished since the last inventory (a site check).

A registered camera passes (evidence: new or unchanged); a camera that answered but is not
configured fails (high); a registered camera whose ports or endpoint changed fails (medium);
a host of the last inventory that no longer answers is a site finding (medium).

Devices are followed by MAC and serial (``agent.inventory.diff``): one the last inventory knew
that answers at another address now moved (``inv.changed`` naming ``address``, medium), even
when its new address is not configured; another device answering at a known address is a swap
(``inv.swapped``, high, naming both identities), configured or not.
"""

from __future__ import annotations

from agent.checks.base import make_finding
from agent.checks.site import Site, SiteCheck, SiteFindings, SiteInventory
from agent.inventory.diff import key
from agent.inventory.discover import Host
from protocol.messages import Camera, EvidenceValue, Finding, Severity, Status

__all__ = ["InventoryCheck"]


class InventoryCheck(SiteCheck):
    id = "inventory"
    controls = ("INV-04",)

    def run(self, site: Site) -> SiteFindings:
        inventory = site.inventory
        if inventory is None:
            return SiteFindings()
        cameras = {c.camera_id: _camera(c, inventory) for c in site.cameras}
        vanished = [
            _vanished(h) for h in inventory.change.vanished if h.address not in inventory.current
        ]
        return SiteFindings(cameras, vanished)


def _camera(camera: Camera, inventory: SiteInventory) -> list[Finding]:
    host = inventory.current.get(camera.address)
    if host is None:  # a configured camera that did not answer: judged by its other findings
        return []
    change = inventory.change
    evidence: dict[str, EvidenceValue] = {
        "address": camera.address,
        "sources": ",".join(sorted(host.sources)),
        "open_ports": ",".join(str(p) for p in host.open_ports) or "none",
    }
    is_new = any(key(h) == key(host) for h in change.new)
    moved = [fields for before, after, fields in change.changed if key(after) == key(host)]
    swaps = [before for before, after in change.swapped if key(after) == key(host)]
    if swaps:
        swapped = {
            "serial_before": swaps[0].serial or swaps[0].endpoint,
            "mac_before": swaps[0].mac,
            "serial": host.serial or host.endpoint,
            "mac": host.mac,
        }
        return [_inv04("inv.swapped", "fail", "high", {**evidence, **swapped})]
    known_elsewhere = any("address" in fields for fields in moved)
    if camera.address not in inventory.registered and not known_elsewhere:
        unregistered = {"new": is_new, "vendor_hint": host.vendor_hint}
        return [_inv04("inv.unregistered", "fail", "high", {**evidence, **unregistered})]
    if moved:
        changed = {"changed": ",".join(moved[0])}
        return [_inv04("inv.changed", "fail", "medium", {**evidence, **changed})]
    registered = {"change": "new" if is_new else "unchanged"}
    return [_inv04("inv.registered", "pass", "info", {**evidence, **registered})]


def _inv04(
    code: str, status: Status, severity: Severity, evidence: dict[str, EvidenceValue]
) -> Finding:
    return make_finding(
        check="inventory",
        code=code,
        status=status,
        severity=severity,
        controls=("INV-04",),
        evidence=evidence,
    )


def _vanished(host: Host) -> Finding:
    evidence: dict[str, EvidenceValue] = {
        "address": host.address,
        "sources": ",".join(sorted(host.sources)),
        "endpoint": host.endpoint,
    }
    return _inv04("inv.vanished", "fail", "medium", evidence)
