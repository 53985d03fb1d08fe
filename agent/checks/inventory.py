"""INV-04: every camera that answered is in the configured inventory, and nothing changed or
vanished since the last inventory (a site check).

A registered camera passes (evidence: new or unchanged); a camera that answered but is not
configured fails (high); a registered camera whose ports or endpoint changed fails (medium);
a host of the last inventory that no longer answers is a site finding (medium).
"""

from __future__ import annotations

from agent.checks.base import make_finding
from agent.checks.site import Site, SiteCheck, SiteFindings, SiteInventory
from agent.inventory.diff import key
from agent.inventory.discover import Host
from protocol.messages import Camera, EvidenceValue, Finding

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
    if camera.address not in inventory.registered:
        return [
            make_finding(
                check="inventory",
                code="inv.unregistered",
                status="fail",
                severity="high",
                controls=("INV-04",),
                evidence={**evidence, "new": is_new, "vendor_hint": host.vendor_hint},
            )
        ]
    if moved:
        return [
            make_finding(
                check="inventory",
                code="inv.changed",
                status="fail",
                severity="medium",
                controls=("INV-04",),
                evidence={**evidence, "changed": ",".join(moved[0])},
            )
        ]
    return [
        make_finding(
            check="inventory",
            code="inv.registered",
            status="pass",
            severity="info",
            controls=("INV-04",),
            evidence={**evidence, "change": "new" if is_new else "unchanged"},
        )
    ]


def _vanished(host: Host) -> Finding:
    return make_finding(
        check="inventory",
        code="inv.vanished",
        status="fail",
        severity="medium",
        controls=("INV-04",),
        evidence={
            "address": host.address,
            "sources": ",".join(sorted(host.sources)),
            "endpoint": host.endpoint,
        },
    )
