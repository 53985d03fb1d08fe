"""Firmware version strings per vendor: parse once into numbers plus build date, then compare.

Hikvision and Dahua scope their advisories by build date as much as by version, so a parsed
version carries both. The formats are a table (one regular expression and one build-date format
per scheme), not one parser function per vendor:

=========  ===========================================  ============================================
scheme     example                                      numbers / build date
=========  ===========================================  ============================================
hikvision  ``V5.5.0 build 200101``, ``V5.4.0 b160530``  (5, 5, 0) / 2020-01-01 (``build YYMMDD``)
dahua      ``2.800.0000000.25.R``, ``..., build:2021-05-18``  (2, 800, 0, 25) / the ``Build Date``
axis       ``10.12.114``                                (10, 12, 114) / none
reolink    ``v3.0.0.136_20121102``                      (3, 0, 0, 136) / 2020-12-11 (``_YYMMDDHH``)
generic    ``1.0.227``, ``V2.1.4 build 20220301``       dotted numbers / ``build YYYYMMDD`` if given
=========  ===========================================  ============================================

Dahua reports the build date separately (``magicBox.cgi?action=getSoftwareVersion`` answers
``version=...,build:YYYY-MM-DD``; ONVIF gives only the version), so ``parse_firmware`` also takes
the build date an adapter found elsewhere; it wins over a date in the string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final


@dataclass(frozen=True, slots=True)
class _Scheme:
    name: str
    pattern: re.Pattern[str]
    build_format: str | None  # strptime format of the ``build`` group


_SCHEMES: Final[dict[str, _Scheme]] = {
    scheme.name: scheme
    for scheme in (
        _Scheme(
            "hikvision",
            re.compile(
                r"[Vv]?(?P<ver>\d+(?:\.\d+){1,3})(?:\s*,?\s*(?:build|b)\s*(?P<build>\d{6}))?"
            ),
            "%y%m%d",
        ),
        _Scheme(
            "dahua",
            re.compile(
                r"[Vv]?(?P<ver>\d+(?:\.\d+){2,5})(?:\.[A-Z])?"
                r"(?:\s*,?\s*build(?:\s*date)?\s*[:=]?\s*(?P<build>\d{4}-\d{2}-\d{2}))?",
                re.IGNORECASE,
            ),
            "%Y-%m-%d",
        ),
        _Scheme("axis", re.compile(r"(?P<ver>\d+(?:\.\d+){1,4})"), None),
        _Scheme(
            "reolink",
            re.compile(r"[Vv]?(?P<ver>\d+(?:\.\d+){1,4})(?:_(?P<build>\d{8}))?"),
            "%y%m%d%H",
        ),
        _Scheme(
            "generic",
            re.compile(r"[Vv]?(?P<ver>\d+(?:\.\d+)*)(?:\s*,?\s*build\s*(?P<build>\d{8}))?"),
            "%Y%m%d",
        ),
    )
}

# Canonical vendor key -> names cameras report (ONVIF Manufacturer, banners, KEV vendorProject).
_VENDOR_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "hikvision": ("hikvision", "hikvision digital technology", "hangzhou hikvision"),
    "dahua": ("dahua", "dahua technology", "zhejiang dahua"),
    "axis": ("axis", "axis communications"),
    "reolink": ("reolink",),
    "amcrest": ("amcrest",),
    "edimax": ("edimax",),
    "geovision": ("geovision",),
    "nuuo": ("nuuo",),
    "ptzoptics": ("ptzoptics",),
    "qnap": ("qnap",),
    "tvt": ("tvt", "tvt system", "shenzhen tvt"),
    "avtech": ("avtech",),
    "d-link": ("d link", "dlink"),
}


def canonical_vendor(name: str | None) -> str | None:
    """``"HIKVISION"`` -> ``"hikvision"``; unknown names -> their lower-case normal form."""
    if not name:
        return None
    normal = re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()
    for key, aliases in _VENDOR_ALIASES.items():
        if any(normal == alias or normal.startswith(alias + " ") for alias in aliases):
            return key
    return normal or None


def scheme_for(vendor: str | None) -> str:
    key = canonical_vendor(vendor)
    return key if key in _SCHEMES else "generic"


@dataclass(frozen=True, slots=True, order=False)
class FirmwareVersion:
    scheme: str
    raw: str
    numbers: tuple[int, ...]
    build: date | None = None


class UnparsableVersion(ValueError):
    """The firmware string does not follow the vendor's scheme."""


def parse_firmware(
    vendor: str | None, text: str, build_date: date | None = None
) -> FirmwareVersion:
    """Parse ``text`` with the vendor's scheme; raise ``UnparsableVersion`` when it does not fit."""
    scheme = _SCHEMES[scheme_for(vendor)]
    cleaned = text.strip()
    match = scheme.pattern.fullmatch(cleaned)
    if match is None:
        raise UnparsableVersion(f"{scheme.name} firmware version not understood: {cleaned[:64]!r}")
    numbers = tuple(int(part) for part in match.group("ver").split("."))
    build = build_date
    raw_build = match.groupdict().get("build")
    if build is None and raw_build is not None and scheme.build_format is not None:
        try:
            build = datetime.strptime(raw_build, scheme.build_format).date()
        except ValueError as exc:
            raise UnparsableVersion(f"bad build date {raw_build!r} in {cleaned[:64]!r}") from exc
    return FirmwareVersion(scheme.name, cleaned, numbers, build)


def _pad(numbers: tuple[int, ...], width: int) -> tuple[int, ...]:
    return numbers + (0,) * (width - len(numbers))


def compare(a: FirmwareVersion, b: FirmwareVersion) -> int:
    """-1, 0 or 1. Numbers first (missing trailing parts count as 0), then the build date when
    both sides have one. Versions of different schemes are not comparable: ValueError."""
    if a.scheme != b.scheme:
        raise ValueError(f"cannot compare a {a.scheme} version with a {b.scheme} version")
    width = max(len(a.numbers), len(b.numbers))
    left, right = _pad(a.numbers, width), _pad(b.numbers, width)
    if left == right and a.build is not None and b.build is not None:
        left, right = (a.build.toordinal(),), (b.build.toordinal(),)
    return (left > right) - (left < right)
