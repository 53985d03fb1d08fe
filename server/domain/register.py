"""The certified-model register: its entries, how a camera matches one (INV-02), and its CSV.

A certificate is issued under a regulation (QCVN 11:2026/BCA since 1 July 2026; certificates
under QCVN 135:2024/BTTTT stay on record) and covers a firmware, not only a model. A camera
matches an entry by vendor, model, hardware version and firmware (case and spacing ignored); an
entry naming a hardware version or a firmware matches only cameras reporting it, and the most
specific entry wins, except that a flag of the authorities on any entry that applies wins over
every certificate.

The CSV (one header row of ``COLUMNS``, any order; UTF-8, a byte-order mark allowed) is read
whole before anything is applied: ``parse`` returns every line's error with its line number, or
the entries; nothing is half-read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Final, Literal

from server.domain import csvtable
from server.domain.csvtable import LineError

REGULATION_IN_FORCE: Final = "QCVN 11:2026/BCA"
REGULATIONS: Final = (REGULATION_IN_FORCE, "QCVN 135:2024/BTTTT")
Inv02 = Literal["certified", "flagged", "uncertified"]

# the limits of one import
CSV_MAX_BYTES: Final = 600 * 1024  # its base64 rides in the preview page's form (1 MiB a field)
CSV_MAX_ROWS: Final = 5_000
LIMITS: Final[dict[str, int]] = {
    "vendor": 128,
    "model": 128,
    "hardware_id": 128,
    "firmware": 128,
    "regulation": 64,
    "certificate_number": 64,
    "certificate_issuer": 200,
    "certificate_date": 10,
    "flagged": 5,
    "flag_reason": 512,
    "flag_reference": 200,
}
COLUMNS: Final = tuple(LIMITS)
REQUIRED: Final = ("vendor", "model")
_TRUE: Final = ("1", "true", "yes", "x")
_FALSE: Final = ("", "0", "false", "no")
TABLE: Final = csvtable.Table(LIMITS, REQUIRED, CSV_MAX_BYTES, CSV_MAX_ROWS)


def key(text: str | None) -> str:
    """What matching compares: lower case, runs of spaces as one."""
    return " ".join((text or "").lower().split())


@dataclass(frozen=True, slots=True)
class ModelIn:
    vendor: str
    model: str
    hardware_id: str | None = None
    certificate_number: str | None = None
    certificate_issuer: str | None = None
    certificate_date: date | None = None
    flagged: bool = False
    flag_reason: str | None = None
    flag_reference: str | None = None
    firmware: str | None = None  # the firmware the certificate covers (None: any)
    regulation: str | None = None  # the regulation the certificate was issued under

    def keys(self) -> tuple[str, str, str, str]:
        return key(self.vendor), key(self.model), key(self.hardware_id), key(self.firmware)


@dataclass(frozen=True, slots=True)
class ModelView:
    id: int
    vendor: str
    model: str
    hardware_id: str | None
    certificate_number: str | None
    certificate_issuer: str | None
    certificate_date: date | None
    flagged: bool
    flag_reason: str | None
    flag_reference: str | None
    updated_at: datetime
    updated_by: str | None
    firmware: str | None = None
    regulation: str | None = None

    @property
    def certified(self) -> bool:
        return self.certificate_number is not None

    def keys(self) -> tuple[str, str, str, str]:
        return key(self.vendor), key(self.model), key(self.hardware_id), key(self.firmware)

    def entry(self) -> ModelIn:
        """The entry as it would be written again (to compare with an import)."""
        return ModelIn(**{f.name: getattr(self, f.name) for f in fields(ModelIn)})


def inv02_status(entry: ModelView | None) -> Inv02:
    """INV-02: compliant only when a certificate covers the camera and no flag applies."""
    if entry is not None and entry.flagged:
        return "flagged"
    if entry is not None and entry.certified:
        return "certified"
    return "uncertified"


class ModelMatcher:
    """Vendor + model (+ hardware version, + firmware) lookups; see the module's docstring."""

    def __init__(self, entries: list[ModelView]) -> None:
        self._by_key = {e.keys(): e for e in entries}

    def match(
        self,
        vendor: str | None,
        model: str | None,
        hardware: str | None,
        firmware: str | None = None,
    ) -> ModelView | None:
        v, m = key(vendor), key(model)
        if not v or not m:
            return None
        hardware_keys = [key(hardware), ""] if key(hardware) else [""]
        firmware_keys = [key(firmware), ""] if key(firmware) else [""]
        applying = [
            entry
            for h in hardware_keys
            for f in firmware_keys
            if (entry := self._by_key.get((v, m, h, f))) is not None
        ]
        flagged = next((e for e in applying if e.flagged), None)
        return flagged or (applying[0] if applying else None)


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    entries: list[tuple[int, ModelIn]]  # (line, entry)
    errors: list[LineError]


def _cell(text: str) -> str:
    """A cell as a spreadsheet shows it: what would start a formula gets a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(entries: list[ModelView]) -> bytes:
    """The register as the import reads it back (UTF-8 with a byte-order mark)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for e in entries:
        values = {
            **{c: getattr(e, c) for c in COLUMNS},
            "certificate_date": e.certificate_date.isoformat() if e.certificate_date else "",
            "flagged": "yes" if e.flagged else "no",
        }
        writer.writerow([_cell(str(values[c] or "")) for c in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def parse(data: bytes) -> Parsed:
    """Every line checked; entries only when no line has an error."""
    entries, errors = csvtable.read(data, TABLE, _entry, ModelIn.keys)
    return Parsed([] if errors else entries, errors)


def _entry(line: int, values: dict[str, str]) -> tuple[ModelIn | None, list[LineError]]:
    errors = []
    day = None
    if text := values.get("certificate_date", ""):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            errors.append(LineError(line, "date", {"column": "certificate_date", "value": text}))
    flag = values.get("flagged", "").lower()
    if flag not in _TRUE + _FALSE:
        errors.append(LineError(line, "flag", {"value": flag}))
    regulation = values.get("regulation") or None
    if regulation is not None and regulation not in REGULATIONS:
        errors.append(LineError(line, "regulation", {"value": regulation}))
    if values.get("certificate_number") and regulation is None:
        errors.append(LineError(line, "no_regulation", {}))
    if errors:
        return None, errors
    return ModelIn(
        vendor=values["vendor"],
        model=values["model"],
        hardware_id=values.get("hardware_id") or None,
        certificate_number=values.get("certificate_number") or None,
        certificate_issuer=values.get("certificate_issuer") or None,
        certificate_date=day,
        flagged=flag in _TRUE,
        flag_reason=values.get("flag_reason") or None,
        flag_reference=values.get("flag_reference") or None,
        firmware=values.get("firmware") or None,
        regulation=regulation,
    ), []


@dataclass(frozen=True, slots=True)
class Change:
    line: int
    action: Literal["add", "replace", "same"]
    entry: ModelIn


@dataclass(frozen=True, slots=True)
class Plan:
    """What applying a parsed file would do to the register (the preview)."""

    changes: list[Change]
    removed: list[ModelView]  # entries not in the file (removed only when replacing)

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)


def plan(current: list[ModelView], entries: list[tuple[int, ModelIn]]) -> Plan:
    by_key = {e.keys(): e for e in current}
    changes = []
    for line, entry in entries:
        old = by_key.get(entry.keys())
        action: Literal["add", "replace", "same"] = (
            "add" if old is None else "same" if old.entry() == entry else "replace"
        )
        changes.append(Change(line, action, entry))
    listed = {entry.keys() for _, entry in entries}
    return Plan(changes, [e for e in current if e.keys() not in listed])
