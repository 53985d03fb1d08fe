from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import OKPKey

from agent.advisories.build import build_feed, sign_feed
from agent.advisories.feed import AdvisoryFeed, load_feed
from agent.advisories.model import Feed
from protocol.keys import generate_private_key

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "configs" / "advisories" / "vendor-rules.toml"
# Third-party fixture data (KEV, SecLists, Cameradar, DefaultCreds) is not in the repository:
# point CAMWARDEN_FIXTURE_DATA at it, or keep it in ../shared/data next to the checkout. Tests
# that need it skip otherwise. The product never reads it.
SHARED_DATA = Path(os.environ.get("CAMWARDEN_FIXTURE_DATA", ROOT.parent / "shared" / "data"))
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def kev_entry(cve: str, vendor: str, product: str, added: str) -> dict[str, str]:
    return {
        "cveID": cve,
        "vendorProject": vendor,
        "product": product,
        "dateAdded": added,
        "dueDate": "",
        "knownRansomwareCampaignUse": "Unknown",
    }


# A small stand-in for the KEV catalogue with the entries the personas need (values as in KEV).
MINI_KEV: dict[str, Any] = {
    "catalogVersion": "test",
    "vulnerabilities": [
        kev_entry("CVE-2021-36260", "Hikvision", "Security cameras web server", "2022-01-10"),
        kev_entry("CVE-2021-33044", "Dahua", "IP Camera Firmware", "2024-08-21"),
        kev_entry("CVE-2021-33045", "Dahua", "IP Camera Firmware", "2024-08-21"),
        kev_entry("CVE-2019-11001", "Reolink", "Multiple IP Cameras", "2024-12-18"),
        kev_entry("CVE-2025-1316", "Edimax", "IC-7100 IP Camera", "2025-03-19"),
        kev_entry("CVE-2020-5735", "Amcrest", "Cameras and NVR", "2021-11-03"),
        kev_entry("CVE-2099-0001", "Git", "Git", "2025-08-25"),
    ],
}


@pytest.fixture(scope="session")
def feed_key() -> OKPKey:
    return generate_private_key()


@pytest.fixture(scope="session")
def feed_payload() -> Feed:
    return build_feed(MINI_KEV, RULES.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def advisory_feed(feed_key: OKPKey, feed_payload: Feed) -> AdvisoryFeed:
    token = sign_feed(feed_payload, feed_key).encode("ascii")
    return load_feed(token, {feed_key.thumbprint(): feed_key}, now=NOW, last=None)
