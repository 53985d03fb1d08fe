"""Build ``agent/data/default-credentials.json``: ``python -m agent.credentials.build``.

Sources, all MIT or public vendor documentation (no DefaultCreds-Cheat-Sheet rows: that list
carries rows from GPL-3.0 changeme):

* SecLists ``Passwords/Default-Credentials/default-passwords.csv``, camera/DVR/VMS rows (MIT);
* Cameradar ``credentials.json`` username and password lists (MIT): Cameradar tries every
  username with every password (16 x 59); we ship only ``GENERIC_PAIRS``, picked from those lists,
  and the builder checks that both halves of each pair are in them;
* ``VENDOR_DEFAULTS``: factory defaults the vendors documented publicly, each with its reference.

The output is deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from agent.credentials.catalogue import Catalogue, Entry, Source
from agent.vendors.versions import canonical_vendor

SECLISTS: Final = Source(
    id="seclists",
    name="SecLists default-passwords.csv (camera, DVR and VMS rows)",
    location=(
        "github.com/danielmiessler/SecLists Passwords/Default-Credentials/default-passwords.csv"
    ),
    revision="02cdfa5f2dddbf6556fea675d9440d2181ffbb0d",
    license="MIT",
)
CAMERADAR: Final = Source(
    id="cameradar",
    name="Cameradar credentials dictionary (pairs chosen from its lists)",
    location="github.com/Ullaakut/cameradar internal/dict/assets/credentials.json",
    revision="a14afcad366a0cd476c19acfa914a1610eeb78fd",
    license="MIT",
)
VENDOR_DOCS: Final = Source(
    id="vendor-docs",
    name="Factory defaults documented by the vendors",
    location="see VENDOR_DEFAULTS in agent/credentials/build.py",
    license="facts, no copyrightable expression",
)

# (vendor, username, password, reference). Legacy defaults: current firmware of these vendors
# forces a password on first use (activation / initialisation), which AUTH-02 checks.
VENDOR_DEFAULTS: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("hikvision", "admin", "12345", "Hikvision network camera user manual (firmware before V5.3)"),
    ("dahua", "admin", "admin", "Dahua IPC/NVR quick start guides (firmware before device init)"),
    ("dahua", "888888", "888888", "Dahua legacy local-only administrator account"),
    ("dahua", "666666", "666666", "Dahua legacy local-only user account"),
    ("axis", "root", "pass", "Axis VAPIX documentation (firmware before 5.x forced a password)"),
    ("reolink", "admin", "", "Reolink support: default login admin with an empty password"),
)

# Generic pairs, both halves taken from Cameradar's lists.
GENERIC_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("admin", "admin"),
    ("admin", "12345"),
    ("admin", "123456"),
    ("admin", ""),
    ("admin", "1234"),
    ("admin", "password"),
    ("root", "root"),
    ("root", "pass"),
    ("admin", "admin123"),
    ("supervisor", "supervisor"),
)

# SecLists vendor names that do not normalise to a useful key on their own.
_SECLISTS_VENDORS: Final[Mapping[str, str]] = {
    "Divar": "bosch",
    "United Technologies Corporation": "interlogix",
    "Seyeon Technology Co., Ltd": "seyeon",
    "Exacq Technologies": "exacq",
    "VBrick Systems": "vbrick",
    "TVT System": "tvt",
    "Hikvision Network Camera": "hikvision",
}
_SECLISTS_VALUES: Final[Mapping[str, str]] = {"<BLANK>": "", "<N/A>": ""}


class BuildError(Exception):
    pass


def _seclists_rows(text: str) -> list[tuple[str, str, str]]:
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        vendor = _SECLISTS_VENDORS.get(row["Vendor"]) or canonical_vendor(row["Vendor"])
        if vendor is None:
            raise BuildError(f"SecLists row without a vendor: {row}")
        user = _SECLISTS_VALUES.get(row["Username"], row["Username"])
        password = _SECLISTS_VALUES.get(row["Password"], row["Password"])
        rows.append((vendor, user, password))
    return rows


def build_catalogue(seclists_csv: str, cameradar: Mapping[str, Any]) -> Catalogue:
    usernames, passwords = set(cameradar["usernames"]), set(cameradar["passwords"])
    for user, password in GENERIC_PAIRS:
        if user not in usernames or password not in passwords:
            raise BuildError(f"generic pair {user!r}/... is not in the Cameradar lists")
    merged: dict[tuple[str, str], tuple[set[str], set[str]]] = {}

    def add(user: str, password: str, vendor: str | None, source: str) -> None:
        vendors, sources = merged.setdefault((user, password), (set(), set()))
        if vendor is not None:
            vendors.add(vendor)
        sources.add(source)

    generic = set(GENERIC_PAIRS)

    for vendor, user, password, _reference in VENDOR_DEFAULTS:
        add(user, password, vendor, VENDOR_DOCS.id)
    for vendor, user, password in _seclists_rows(seclists_csv):
        add(user, password, vendor, SECLISTS.id)
    # A vendor default that is also a generic pair gets Cameradar as a second source.
    for user, password in GENERIC_PAIRS:
        add(user, password, None, CAMERADAR.id)
    # Vendor-specific first, documented vendor defaults leading; then generic; then by name.
    ordered = sorted(
        merged.items(),
        key=lambda item: (not item[1][0], VENDOR_DOCS.id not in item[1][1], item[0]),
    )
    entries = [
        Entry(
            id=f"dc-{index:03d}",
            username=user,
            password=password,
            vendors=sorted(vendors),
            generic=(user, password) in generic,
            sources=sorted(sources),
        )
        for index, ((user, password), (vendors, sources)) in enumerate(ordered, start=1)
    ]
    return Catalogue(sources=[SECLISTS, CAMERADAR, VENDOR_DOCS], entries=entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.credentials.build", description=__doc__)
    parser.add_argument("--seclists", type=Path, required=True, help="SecLists camera subset CSV")
    parser.add_argument("--cameradar", type=Path, required=True, help="Cameradar credentials.json")
    parser.add_argument("--out", type=Path, default=Path("agent/data/default-credentials.json"))
    args = parser.parse_args(argv)
    try:
        catalogue = build_catalogue(
            args.seclists.read_text(encoding="utf-8"),
            json.loads(args.cameradar.read_text(encoding="utf-8")),
        )
    except (OSError, ValueError, KeyError, BuildError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(msgspec.to_builtins(catalogue), indent=1, ensure_ascii=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"{len(catalogue.entries)} default credentials -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
