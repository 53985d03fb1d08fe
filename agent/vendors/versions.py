"""Firmware version strings per vendor: parse once into numbers plus build date, then compare.

Hikvision and Dahua scope their advisories by build date as much as by version, so a parsed
version carries both. The formats are a table (one regular expression and one build-date format
per scheme), not one parser function per vendor:

=========  ===========================================  ============================================
scheme     example                                      numbers / build date
=========  ===========================================  ============================================
hikvision  ``V5.5.0 build 200101``, ``V5.4.0 b160530``  (5, 5, 0) / 2020-01-01 (``build YYMMDD``)
dahua      ``2.800.0000000.25.R``, ``..., build:2021-05-18``  (2, 800, 0, 25) / the ``Build Date``
           ``2.420.AC00.17.R`` (Amcrest: letters)       (2, 420, 0, 17): a letter segment reads 0
           ``2.420.Dahua 00.14.R, build: 2016-06-18``   (2, 420, 0, 14) / 2016-06-18
           ``V2.680.0000000.16.R.210406`` (Imou)        (2, 680, 0, 16) / 2021-04-06 (``.YYMMDD``)
axis       ``10.12.114``                                (10, 12, 114) / none
reolink    ``v3.0.0.136_20121102``                      (3, 0, 0, 136) / 2020-12-11 (``_YYMMDD`` and
           ``v3.0.0.6460_2605211898`` (doorbells)        a 2-4 digit counter: ``_22041566`` exists)
uniview    ``IPC-B2202.7.11.230222``                    (2202, 7, 11) / 2023-02-22 (``.YYMMDD``)
           ``IPC_G6103-B0009P30D1803`` (IPC firmware)   (6103, 9, 30) / 2018-03-01 (``D`` YYMM)
generic    ``1.0.227``, ``V2.1.4 build 20220301``       dotted numbers / ``build YYYYMMDD``,
           ``V1.0.0014 - 20210517 15:00:00`` (Jovision) ``build YYMMDD`` (OEM) or ``- YYYYMMDD``
=========  ===========================================  ============================================

Hikvision, Dahua and generic strings may carry a longer build tag after the version and build
date (``V5.5.82 build 190220_r1``, Xiongmai's ``V4.02.R11.00001906.10012.230100.00000``); it is
kept in ``raw`` and not read. An OEM brand (Amcrest, KBVision, Imou; HiLook, EZVIZ, ANNKE) is
read with its parent's scheme (HiWatch too).

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
    build_formats: tuple[str, ...]  # strptime formats of the ``build`` group, tried in order
    # What separates the numbers in the ``ver`` group (a dot, or Uniview's ``-B`` and ``P``).
    separator: re.Pattern[str] = re.compile(r"\.")


# What may follow the version and build date: a longer build tag (``_r1``, `` SP2``,
# ``.230100.00000`` on Xiongmai boards, ``-r12``). Numbers and build date are read before it.
_TAIL = r"(?:[\s_.,(/+-].*)?"
# A Dahua version segment: digits, or a vendor letter segment (``AC00``, ``00AC000``, or the
# brand and a number, ``Dahua 00``, only before the next dot) read as 0.
_DAHUA_SEGMENT = r"(?:\d+|[0-9A-Z]*(?:[A-Z]\d|\d[A-Z])[0-9A-Z]*|[A-Z]+ \d+(?=\.))"

_SCHEMES: Final[dict[str, _Scheme]] = {
    scheme.name: scheme
    for scheme in (
        _Scheme(
            "hikvision",
            re.compile(
                r"[Vv]?(?P<ver>\d+(?:\.\d+){1,3})"
                r"(?:\s*[,_]?\s*(?:build|b)\s*(?P<build>\d{6}))?" + _TAIL,
                re.IGNORECASE,
            ),
            ("%y%m%d",),
        ),
        _Scheme(
            "dahua",
            re.compile(
                rf"[Vv]?(?P<ver>\d+\.\d+(?:\.{_DAHUA_SEGMENT}){{1,4}})(?:\.[A-Z])?"
                r"(?:\s*[,.]?\s*(?:build(?:\s*date)?\s*[:=]?\s*)?"
                r"(?P<build>\d{4}-\d{2}-\d{2}|\d{8}|\d{6}))?" + _TAIL,
                re.IGNORECASE,
            ),
            ("%Y-%m-%d", "%Y%m%d", "%y%m%d"),
        ),
        _Scheme("axis", re.compile(r"(?P<ver>\d+(?:\.\d+){1,4})"), ()),
        _Scheme(
            "reolink",
            re.compile(r"[Vv]?(?P<ver>\d+(?:\.\d+){1,4})(?:_(?P<build>\d{6})\d{2,4})?"),
            ("%y%m%d",),
        ),
        _Scheme(
            "uniview",
            # NVR-B1227.3.23.211124 (dotted, ``.YYMMDD``) or IPC_G6103-B0009P30D1803
            # (platform, ``-B`` build, ``P`` patch, ``D`` YYMM); each form only with its own tail.
            re.compile(
                r"(?:[A-Z]+[-_][A-Z]?)?"
                r"(?P<ver>\d+(?:\.\d+){1,3}?(?=\.\d{6}$|$)|\d+-B\d+P\d+(?=D\d{4}$))"
                r"(?:[.D](?P<build>\d{6}|\d{4}))?"
            ),
            ("%y%m%d", "%y%m"),
            re.compile(r"\.|-B|P"),
        ),
        _Scheme(
            "generic",
            re.compile(
                r"[Vv]?(?P<ver>\d+(?:\.\d+)*)"
                r"(?:\s*(?:[,_]?\s*(?:build|b)\s*[:.]?|-)\s*(?P<build>\d{8}|\d{6}))?" + _TAIL,
                re.IGNORECASE,
            ),
            ("%Y%m%d", "%y%m%d"),
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
    "kbvision": ("kbvision", "kb vision"),
    "hiwatch": ("hiwatch", "hi watch"),
    "hilook": ("hilook", "hi look"),
    "ezviz": ("ezviz",),
    "annke": ("annke",),
    "imou": ("imou", "lechange"),
    "lorex": ("lorex",),
    "uniview": ("uniview", "zhejiang uniview", "unv"),
    "milesight": ("milesight", "xiamen milesight"),
    "xiongmai": ("xiongmai", "hangzhou xiongmai", "xmeye"),
    "edimax": ("edimax",),
    "geovision": ("geovision",),
    "nuuo": ("nuuo",),
    "ptzoptics": ("ptzoptics",),
    "qnap": ("qnap",),
    "tvt": ("tvt", "tvt system", "shenzhen tvt"),
    "avtech": ("avtech",),
    "d-link": ("d link", "dlink"),
}


# OEM brands whose firmware is the parent's build: the parent's version scheme reads it and the
# parent's adapter speaks to it (a KBVision recorder answers the Dahua HTTP API, a HiLook camera
# ISAPI).
_OEM_PARENTS: Final[dict[str, str]] = {
    "amcrest": "dahua",
    "kbvision": "dahua",
    "imou": "dahua",
    "lorex": "dahua",
    "hilook": "hikvision",
    "ezviz": "hikvision",
    "annke": "hikvision",
    "hiwatch": "hikvision",
}

# Values cheap firmware puts where a manufacturer or model belongs: the SoC SDK's defaults
# ("H264", "ONVIF", "NONE"), the device class ("IP Camera", "IPC", "NVR"). They name nothing.
_PLACEHOLDERS: Final = frozenset(
    {
        "",
        "none",
        "null",
        "n a",
        "unknown",
        "onvif",
        "h264",
        "h 264",
        "h265",
        "general",
        "generic",
        "default",
        "manufacturer",
        "model",
        "ip camera",
        "ipcamera",
        "ip cam",
        "ipcam",
        "ipc",
        "camera",
        "network camera",
        "nvr",
        "dvr",
        "xvr",
        "onvif camera",
    }
)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def is_placeholder(name: str | None) -> bool:
    """True for a missing or placeholder manufacturer or model (``NONE``, ``IP Camera``)."""
    return name is None or _normal(name) in _PLACEHOLDERS


def canonical_vendor(name: str | None) -> str | None:
    """``"HIKVISION"`` -> ``"hikvision"``; unknown names -> their lower-case normal form;
    placeholders (``NONE``, ``ONVIF``, ``H264``, empty) -> None."""
    if name is None or is_placeholder(name):
        return None
    normal = _normal(name)
    for key, aliases in _VENDOR_ALIASES.items():
        if any(normal == alias or normal.startswith(alias + " ") for alias in aliases):
            return key
    return normal


def known_vendors() -> frozenset[str]:
    """The canonical vendor keys this agent recognises (a ``[[cameras]] vendor`` outside them is
    a typing error: nothing would use it)."""
    return frozenset(_VENDOR_ALIASES)


def api_vendor(name: str | None) -> str | None:
    """The vendor whose firmware a device of this brand runs: ``"KBVision"`` -> ``"dahua"``,
    ``"EZVIZ"`` -> ``"hikvision"``, ``"Axis"`` -> ``"axis"``; placeholders -> None."""
    key = canonical_vendor(name)
    return _OEM_PARENTS.get(key, key) if key is not None else None


def scheme_for(vendor: str | None) -> str:
    key = api_vendor(vendor)
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
    parts = scheme.separator.split(match.group("ver"))
    numbers = tuple(int(part) if part.isdigit() else 0 for part in parts)
    build = build_date
    raw_build = match.groupdict().get("build")
    if build is None and raw_build is not None and scheme.build_formats:
        build = _build_date(raw_build, scheme.build_formats, cleaned)
    return FirmwareVersion(scheme.name, cleaned, numbers, build)


def _build_date(raw: str, formats: tuple[str, ...], text: str) -> date:
    for fmt in formats:
        if len(raw) == len(datetime(2000, 1, 1).strftime(fmt)):
            try:
                return datetime.strptime(raw, fmt).date()
            except ValueError:
                continue
    raise UnparsableVersion(f"bad build date {raw!r} in {text[:64]!r}")


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
