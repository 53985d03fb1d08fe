from __future__ import annotations

from datetime import date

import pytest

from agent.vendors.versions import (
    FirmwareVersion,
    UnparsableVersion,
    canonical_vendor,
    compare,
    parse_firmware,
)


@pytest.mark.parametrize(
    ("vendor", "text", "scheme", "numbers", "build"),
    [
        ("HIKVISION", "V5.5.0 build 200101", "hikvision", (5, 5, 0), date(2020, 1, 1)),
        ("Hikvision", "V5.5.800 build 210628", "hikvision", (5, 5, 800), date(2021, 6, 28)),
        ("hikvision", "V5.4.0 b160530", "hikvision", (5, 4, 0), date(2016, 5, 30)),
        ("hikvision", "V5.7.3", "hikvision", (5, 7, 3), None),
        ("Dahua", "2.800.0000000.25.R", "dahua", (2, 800, 0, 25), None),
        ("Dahua Technology", "V2.800.0000016.0.R", "dahua", (2, 800, 16, 0), None),
        (
            "dahua",
            "2.800.0000000.25.R, build:2021-05-18",
            "dahua",
            (2, 800, 0, 25),
            date(2021, 5, 18),
        ),
        ("dahua", "V2.420.AC00.18.R", "dahua", (2, 420, 0, 18), None),  # Amcrest letters
        (
            "Amcrest",
            "V2.420.AC00.18.R, Build Date: 2020-02-17",
            "dahua",
            (2, 420, 0, 18),
            date(2020, 2, 17),
        ),
        ("ANNKE", "V5.5.0 build 190416", "hikvision", (5, 5, 0), date(2019, 4, 16)),
        ("IPCAM", "V5.5.0 build 190416", "generic", (5, 5, 0), date(2019, 4, 16)),
        ("xiongmai", "V4.02.R11.00001906.10012.230100.00000", "generic", (4, 2), None),
        ("AXIS", "10.12.114", "axis", (10, 12, 114), None),
        ("Axis Communications AB", "9.80.3.8", "axis", (9, 80, 3, 8), None),
        ("Reolink", "v3.0.0.136_20121102", "reolink", (3, 0, 0, 136), date(2020, 12, 11)),
        ("Reolink", "1.0.227", "reolink", (1, 0, 227), None),
        ("Acme", "v2.1", "generic", (2, 1), None),
        (None, "1.0.227", "generic", (1, 0, 227), None),
        ("onvif", "V2.1.4 build 20220301", "generic", (2, 1, 4), date(2022, 3, 1)),
    ],
)
def test_parse_table(
    vendor: str | None, text: str, scheme: str, numbers: tuple[int, ...], build: date | None
) -> None:
    version = parse_firmware(vendor, text)
    assert (version.scheme, version.numbers, version.build) == (scheme, numbers, build)


@pytest.mark.parametrize(
    ("vendor", "text"),
    [
        ("hikvision", "build 200101"),
        ("hikvision", "V5.5.0 build 201301"),  # month 13
        ("axis", "10.12.114-beta"),
        ("reolink", "v3.0.0.136_2012"),
        ("acme", ""),
        ("acme", "latest"),
    ],
)
def test_unparsable(vendor: str, text: str) -> None:
    with pytest.raises(UnparsableVersion):
        parse_firmware(vendor, text)


@pytest.mark.parametrize("name", ["NONE", "ONVIF", "H264", "", "  ", "IP Camera", "ipc"])
def test_placeholder_manufacturer_is_no_vendor(name: str) -> None:
    assert canonical_vendor(name) is None


def test_separate_build_date_wins() -> None:
    version = parse_firmware("dahua", "2.800.0000000.25.R, build:2021-05-18", date(2021, 4, 1))
    assert version.build == date(2021, 4, 1)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("V5.4.0 build 160530", "V5.4.0 build 160531", -1),
        ("V5.4.0 build 160530", "V5.4.0 build 160530", 0),
        ("V5.4.1 build 150101", "V5.4.0 build 160530", 1),
        ("V5.5.0", "V5.5.0 build 200101", 0),  # a missing build cannot order equal numbers
        ("V5.5", "V5.5.0", 0),
        ("V5.10.0", "V5.9.9", 1),
    ],
)
def test_compare_hikvision(a: str, b: str, expected: int) -> None:
    assert compare(parse_firmware("hikvision", a), parse_firmware("hikvision", b)) == expected


def test_compare_refuses_mixed_schemes() -> None:
    with pytest.raises(ValueError, match="cannot compare"):
        compare(FirmwareVersion("axis", "1", (1,)), FirmwareVersion("generic", "1", (1,)))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("HIKVISION", "hikvision"),
        ("Hangzhou Hikvision Digital Technology Co., Ltd.", "hikvision"),
        ("Dahua Technology Co., Ltd", "dahua"),
        ("AXIS", "axis"),
        ("D-Link", "d-link"),
        ("Acme Cams", "acme cams"),
        ("", None),
        (None, None),
        ("--", None),
    ],
)
def test_canonical_vendor(name: str | None, key: str | None) -> None:
    assert canonical_vendor(name) == key
