"""Importing the certified-model register from CSV: a preview, then one transaction.

Whole-fleet administrators only (the register is national reference data, as ``save_model``).
``preview`` parses the file and compares it with the register without writing; ``apply`` parses
it again (what is applied is what the file says, not what a page carried), writes every entry
in one transaction (added, or replacing the entry of the same vendor, model, hardware version
and firmware; with ``replace`` the entries not in the file are removed) and writes one audit
entry with the counts. A file with any error changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, insert, update

from server.domain.csvtable import LineError
from server.domain.model_register import ModelRegister
from server.domain.register import Plan, key, parse, plan
from server.domain.scope import Invalid
from server.storage import read_then_write
from server.storage.org_models import ModelEntry


class InvalidFile(Invalid):
    """The file has errors: nothing was written (``errors`` name them by line)."""

    def __init__(self, errors: list[LineError]) -> None:
        first = errors[0]
        super().__init__(f"line {first.line} of the file: {first.code}")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Preview:
    digest: str  # SHA-256 of the file: the apply step names the file it was shown
    errors: list[LineError]
    plan: Plan | None  # None when the file has errors


class RegisterImport(ModelRegister):
    """The CSV import of the register through one scope."""

    __slots__ = ()

    def preview(self, data: bytes) -> Preview:
        self.s.require("admin")
        self.s.require_whole_fleet()
        parsed = parse(data)
        digest = hashlib.sha256(data).hexdigest()
        if parsed.errors:
            return Preview(digest, parsed.errors, None)
        return Preview(digest, [], plan(self.model_register(), parsed.entries))

    def apply(self, data: bytes, *, replace: bool = False) -> Plan:
        digest = hashlib.sha256(data).hexdigest()
        with self.s.action("model.import", "model", digest[:16]) as act:
            self.s.require("admin")
            self.s.require_whole_fleet()
            parsed = parse(data)
            if parsed.errors:
                act.detail = {"sha256": digest, "errors": len(parsed.errors)}
                raise InvalidFile(parsed.errors)
            with read_then_write(self.s.engine) as conn:
                current = self.model_register()  # writers wait for this transaction
                result = plan(current, parsed.entries)
                ids = {e.keys(): e.id for e in current}
                for change in result.changes:
                    if change.action == "same":
                        continue
                    e = change.entry
                    values = {
                        "vendor": e.vendor,
                        "model": e.model,
                        "hardware_id": e.hardware_id,
                        "firmware": e.firmware,
                        "vendor_key": key(e.vendor),
                        "model_key": key(e.model),
                        "hardware_key": key(e.hardware_id),
                        "firmware_key": key(e.firmware),
                        "regulation": e.regulation,
                        "certificate_number": e.certificate_number,
                        "certificate_issuer": e.certificate_issuer,
                        "certificate_date": e.certificate_date,
                        "flagged": e.flagged,
                        "flag_reason": e.flag_reason,
                        "flag_reference": e.flag_reference,
                        "updated_at": self.s.now,
                        "updated_by": self.s.p.username,
                    }
                    if change.action == "add":
                        conn.execute(insert(ModelEntry).values(values))
                    else:
                        conn.execute(
                            update(ModelEntry).where(ModelEntry.id == ids[e.keys()]).values(values)
                        )
                if replace and result.removed:
                    conn.execute(
                        delete(ModelEntry).where(ModelEntry.id.in_([r.id for r in result.removed]))
                    )
            act.detail = {
                "sha256": digest,
                "added": result.count("add"),
                "replaced": result.count("replace"),
                "unchanged": result.count("same"),
                "removed": len(result.removed) if replace else 0,
            }
        return result
