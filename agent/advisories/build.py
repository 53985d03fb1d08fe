"""Build and sign the advisory feed offline: ``python -m agent.advisories.build``.

Inputs: the CISA KEV catalogue JSON (``known_exploited_vulnerabilities.json``), the hand-kept
rule file ``configs/advisories/vendor-rules.toml`` and an Ed25519 feed key (PKCS#8 PEM). Output:
the feed as a compact JWS, and the public JWK of the key. The same inputs give the same bytes
(deterministic JSON, Ed25519 signatures are deterministic, no clock is read: the dates come from
the rule file), so anyone holding the key can reproduce a shipped feed exactly, and anyone
without it can reproduce its payload (``build_feed``), which the tests do.

KEV entries for camera and NVR makers are selected by vendorProject (and product, for vendors
that also make routers or NAS); a selected entry without a hand rule becomes an ``unscoped``
rule, so a new KEV camera CVE is never silently ignored. Hand rules for CVEs in KEV get the KEV
flag, dateAdded and dueDate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

import msgspec
from joserfc.jwk import OKPKey

from agent.advisories.match import compile_rule
from agent.advisories.model import Advisory, Feed, FeedSource, Kev, encode
from agent.vendors.versions import canonical_vendor
from protocol.envelope import FEED_TYP, sign
from protocol.keys import generate_private_key, import_private_pem, private_pem, public_jwk
from service.files import write_private

# KEV vendorProject -> product pattern (None: every product of that vendor is a camera/NVR).
KEV_CAMERA_MAKERS: Final[Mapping[str, re.Pattern[str] | None]] = {
    "Amcrest": None,
    "Dahua": None,
    "Edimax": None,
    "GeoVision": None,
    "Hikvision": None,
    "NUUO": None,
    "PTZOptics": None,
    "Reolink": None,
    "TVT": None,
    "D-Link": re.compile(r"DCS|DNR"),
    "QNAP": re.compile(r"VioStor NVR"),
}


class BuildError(Exception):
    """The inputs are inconsistent; the message says which rule or entry."""


def camera_kev_entries(catalogue: Mapping[str, Any]) -> list[dict[str, str]]:
    """The KEV entries of camera/NVR products, in catalogue order."""
    selected = []
    for entry in catalogue["vulnerabilities"]:
        maker = entry["vendorProject"]
        if maker not in KEV_CAMERA_MAKERS:
            continue
        pattern = KEV_CAMERA_MAKERS[maker]
        if pattern is None or pattern.search(entry["product"]):
            selected.append(entry)
    return selected


def _kev(entry: Mapping[str, str]) -> Kev:
    return Kev(
        date_added=date.fromisoformat(entry["dateAdded"]),
        due_date=date.fromisoformat(entry["dueDate"]) if entry.get("dueDate") else None,
        ransomware=entry.get("knownRansomwareCampaignUse") == "Known",
    )


def _unscoped(entry: Mapping[str, str], catalog_version: str) -> Advisory:
    vendor = canonical_vendor(entry["vendorProject"])
    if vendor is None:
        raise BuildError(f"{entry['cveID']}: KEV entry without a vendor")
    return Advisory(
        id=f"kev-{entry['cveID'].lower()}",
        cve=entry["cveID"],
        vendor=vendor,
        product=entry["product"],
        scope="unscoped",
        severity="critical",
        kev=_kev(entry),
        source=f"CISA KEV catalogVersion {catalog_version}",
        note="No hand rule yet: add the version scope to vendor-rules.toml.",
    )


def build_feed(catalogue: Mapping[str, Any], rules_text: str) -> Feed:
    """The feed payload for these inputs. Pure."""
    try:
        config = tomllib.loads(rules_text)
        header = config["feed"]
        hand = [msgspec.convert(rule, Advisory) for rule in config.get("advisory", [])]
    except (tomllib.TOMLDecodeError, KeyError, msgspec.ValidationError) as exc:
        raise BuildError(f"vendor rules: {exc}") from exc
    ids = [rule.id for rule in hand]
    if len(set(ids)) != len(ids):
        raise BuildError("vendor rules: duplicate advisory id")
    kev_by_cve = {entry["cveID"]: entry for entry in catalogue["vulnerabilities"]}
    catalog_version = str(catalogue["catalogVersion"])
    advisories = [
        msgspec.structs.replace(rule, kev=_kev(kev_by_cve[rule.cve]))
        if rule.cve in kev_by_cve
        else rule
        for rule in hand
    ]
    covered = {rule.cve for rule in hand}
    advisories += [
        _unscoped(entry, catalog_version)
        for entry in camera_kev_entries(catalogue)
        if entry["cveID"] not in covered
    ]
    for advisory in advisories:
        try:
            compile_rule(advisory)
        except ValueError as exc:
            raise BuildError(str(exc)) from exc
    rules_digest = hashlib.sha256(rules_text.encode("utf-8")).hexdigest()[:16]
    try:
        return msgspec.convert(
            {
                "version": header["version"],
                "issued_at": header["issued_at"],
                "expires_at": header["expires_at"],
                "sources": [
                    FeedSource(name="CISA KEV", version=catalog_version, license="CC0-1.0"),
                    FeedSource(
                        name="camwarden vendor-rules.toml",
                        version=f"sha256:{rules_digest}",
                        license="Apache-2.0",
                    ),
                ],
                "advisories": advisories,
            },
            Feed,
            from_attributes=True,
        )
    except msgspec.ValidationError as exc:
        raise BuildError(f"feed header: {exc}") from exc


def sign_feed(feed: Feed, key: OKPKey) -> str:
    return sign(encode(feed), key, typ=FEED_TYP)


def _load_or_create_key(path: Path, create: bool) -> OKPKey:
    if path.exists():
        return import_private_pem(path.read_bytes())
    if not create:
        raise BuildError(f"no feed key at {path} (pass --generate-key to create one)")
    key = generate_private_key()
    write_private(path, private_pem(key))
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.advisories.build", description=__doc__)
    parser.add_argument("--kev", type=Path, required=True, help="KEV catalogue JSON")
    parser.add_argument("--rules", type=Path, default=Path("configs/advisories/vendor-rules.toml"))
    parser.add_argument("--key", type=Path, required=True, help="feed signing key (PKCS#8 PEM)")
    parser.add_argument(
        "--generate-key", action="store_true", help="create the key (mode 0600) if missing"
    )
    parser.add_argument("--out", type=Path, default=Path("agent/data/advisories.jws"))
    parser.add_argument("--public-key-out", type=Path, default=Path("agent/data/feed-keys.json"))
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[2]
    if args.key.resolve().is_relative_to(repo):
        print("refusing a signing key inside the source tree; keep it outside", file=sys.stderr)
        return 2
    try:
        catalogue = json.loads(args.kev.read_text(encoding="utf-8"))
        feed = build_feed(catalogue, args.rules.read_text(encoding="utf-8"))
        key = _load_or_create_key(args.key, args.generate_key)
    except (OSError, ValueError, BuildError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(sign_feed(feed, key), encoding="ascii")
    keys = {
        "comment": "development feed key; production feeds are signed with the collector's",
        "keys": [public_jwk(key)],
    }
    args.public_key_out.write_text(json.dumps(keys, indent=2) + "\n", encoding="utf-8")
    unscoped = sum(1 for a in feed.advisories if a.scope == "unscoped")
    print(f"feed v{feed.version}: {len(feed.advisories)} rules ({unscoped} unscoped) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
