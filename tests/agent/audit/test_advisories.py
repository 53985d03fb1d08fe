from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import msgspec
import pytest
from joserfc.jwk import OKPKey

from agent.advisories.build import BuildError, build_feed, camera_kev_entries, main, sign_feed
from agent.advisories.feed import (
    AdvisoryFeed,
    FeedExpired,
    FeedMalformed,
    FeedRollback,
    FeedSignatureError,
    FeedState,
    FeedStateUnreadable,
    install_feed,
    load_feed,
    newest_feed,
    pinned_feed_keys,
    shipped_feed,
    shipped_feed_keys,
)
from agent.advisories.model import Feed, decode, encode
from agent.vendors.models import DeviceIdentity
from protocol.envelope import sign
from protocol.keys import generate_private_key, public_jwk
from tests.agent.audit.conftest import MINI_KEV, NOW, RULES, SHARED_DATA

KEV_JSON = SHARED_DATA / "cisa-kev" / "known_exploited_vulnerabilities.json"
KEV_SUBSET = SHARED_DATA / "cisa-kev" / "kev-camera-nvr-subset.csv"
needs_shared = pytest.mark.skipif(not KEV_JSON.exists(), reason="shared KEV fixture not present")


def _cves(feed: AdvisoryFeed, identity: DeviceIdentity) -> dict[str, str]:
    return {m.advisory.cve: m.confidence for m in feed.match(identity).matches}


# --- matcher: the lab personas ----------------------------------------------------------------

HIK = "HIKVISION"


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        # the lab's Hikvision persona: pre-fix build -> CVE-2021-36260, probable
        (
            DeviceIdentity(vendor=HIK, model="DS-2CD2143G2-I", firmware="V5.5.0 build 200101"),
            {"CVE-2021-36260": "probable"},
        ),
        # same model patched (V5.5.800 build 210628): clean
        (DeviceIdentity(vendor=HIK, model="DS-2CD2143G2-I", firmware="V5.5.800 build 210628"), {}),
        # CVE-2017-7921 exact ranges (ICSA-17-124-01), plus the 36260 build heuristic
        (
            DeviceIdentity(vendor=HIK, model="DS-2CD2132F-I", firmware="V5.3.0 build 150327"),
            {"CVE-2017-7921": "affected", "CVE-2021-36260": "probable"},
        ),
        (
            DeviceIdentity(vendor=HIK, model="DS-2CD2132F-I", firmware="V5.4.0 build 160530"),
            {"CVE-2017-7921": "affected", "CVE-2021-36260": "probable"},
        ),
        (
            DeviceIdentity(vendor=HIK, model="DS-2CD2132F-I", firmware="V5.4.0 build 160531"),
            {"CVE-2021-36260": "probable"},
        ),
        # Dahua IPC built May 2021: 33044 (before June 2021), not 33045 (before May 2020)
        (
            DeviceIdentity(
                vendor="Dahua",
                model="IPC-HDW3441TM-AS",
                firmware="2.800.0000000.25.R",
                build_date=date(2021, 5, 18),
            ),
            {"CVE-2021-33044": "affected"},
        ),
        (
            DeviceIdentity(
                vendor="Dahua",
                model="DH-IPC-HFW5241E",
                firmware="V2.800.0000000.18.R, build:2020-01-10",
            ),
            {"CVE-2021-33044": "affected", "CVE-2021-33045": "affected"},
        ),
        (
            DeviceIdentity(
                vendor="Dahua",
                model="IPC-HFW2431S",
                firmware="2.800.0000000.25.R",
                build_date=date(2022, 3, 1),
            ),
            {"CVE-2022-30563": "affected"},
        ),
        (
            DeviceIdentity(
                vendor="Dahua",
                model="IPC-HDW3441TM-AS",
                firmware="2.820.0000000.1.R",
                build_date=date(2023, 1, 1),
            ),
            {},
        ),
        # Reolink through 1.0.227
        (
            DeviceIdentity(vendor="Reolink", model="RLC-410W", firmware="1.0.227"),
            {"CVE-2019-11001": "affected", "CVE-2021-40407": "possible"},
        ),
        (DeviceIdentity(vendor="Reolink", model="RLC-511W", firmware="1.0.228"), {}),
        # no fix: every version
        (
            DeviceIdentity(vendor="Edimax", model="IC-7100", firmware="anything"),
            {"CVE-2025-1316": "affected"},
        ),
        # KEV entry without a hand rule: unscoped, possible
        (
            DeviceIdentity(vendor="Amcrest", model="IP2M-841", firmware="V2.420.AC00.18.R"),
            {"CVE-2020-5735": "possible"},
        ),
        (DeviceIdentity(vendor="AXIS", model="P3245-LVE", firmware="10.12.114"), {}),
    ],
)
def test_persona_matches(
    advisory_feed: AdvisoryFeed, identity: DeviceIdentity, expected: dict[str, str]
) -> None:
    assert _cves(advisory_feed, identity) == expected


def test_unknown_build_date_is_undetermined_not_clean(advisory_feed: AdvisoryFeed) -> None:
    result = advisory_feed.match(
        DeviceIdentity(vendor="Dahua", model="IPC-HDW3441TM-AS", firmware="2.800.0000000.25.R")
    )
    assert result.matches == ()
    assert {(u.advisory.cve, u.missing) for u in result.undetermined} == {
        ("CVE-2021-33044", "build_date"),
        ("CVE-2021-33045", "build_date"),
    }


def test_unknown_model_is_undetermined(advisory_feed: AdvisoryFeed) -> None:
    result = advisory_feed.match(DeviceIdentity(vendor="Edimax", firmware="1.0"))
    assert [(u.advisory.cve, u.missing) for u in result.undetermined] == [
        ("CVE-2025-1316", "model")
    ]


def test_unparsable_version(advisory_feed: AdvisoryFeed) -> None:
    result = advisory_feed.match(
        DeviceIdentity(vendor=HIK, model="DS-2CD2143G2-I", firmware="firmware-x")
    )
    assert result.version is None
    assert result.version_error is not None
    assert [u.missing for u in result.undetermined] == ["version"]


# --- builder ----------------------------------------------------------------------------------


def test_kev_flags_are_joined(feed_payload: Feed) -> None:
    by_id = {a.id: a for a in feed_payload.advisories}
    kev = by_id["hikvision-cve-2021-36260-build"].kev
    assert kev is not None
    assert kev.date_added == date(2022, 1, 10)
    assert by_id["dahua-cve-2022-30563"].kev is None
    assert by_id["kev-cve-2020-5735"].scope == "unscoped"
    assert not any(a.cve == "CVE-2099-0001" for a in feed_payload.advisories)


def test_build_is_deterministic(feed_key: OKPKey) -> None:
    text = RULES.read_text(encoding="utf-8")
    first = sign_feed(build_feed(MINI_KEV, text), feed_key)
    assert sign_feed(build_feed(MINI_KEV, text), feed_key) == first


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[[advisory]]\nid = "x"\ncve = "CVE-2020-0001"\nvendor = "hikvision"\nproduct = "p"\n'
            'models = ["("]\nseverity = "high"\nsource = "s"\n',
            "bad model pattern",
        ),
        (
            '[[advisory]]\nid = "x"\ncve = "CVE-2020-0001"\nvendor = "Hikvision"\nproduct = "p"\n'
            'severity = "high"\nsource = "s"\n',
            "canonical",
        ),
        (
            '[[advisory]]\nid = "x"\ncve = "CVE-2020-0001"\nvendor = "hikvision"\nproduct = "p"\n'
            'affected_through = "five"\nseverity = "high"\nsource = "s"\n',
            "not understood",
        ),
        (
            '[[advisory]]\nid = "x"\ncve = "CVE-2020-0001"\nvendor = "hikvision"\nproduct = "p"\n'
            'severity = "high"\nsource = "s"\ncolour = "red"\n',
            "unknown field",
        ),
        (
            '[[advisory]]\nid = "dahua-cve-2022-30563"\ncve = "CVE-2020-0001"\nvendor = "dahua"\n'
            'product = "p"\nseverity = "high"\nsource = "s"\n',
            "duplicate",
        ),
    ],
)
def test_bad_rules_are_refused(extra: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        build_feed(MINI_KEV, RULES.read_text(encoding="utf-8") + "\n" + extra)


def test_cli_refuses_a_key_in_the_tree_and_builds(tmp_path: Path) -> None:
    kev = tmp_path / "kev.json"
    kev.write_text(json.dumps(MINI_KEV), encoding="utf-8")
    assert main(["--kev", str(kev), "--key", str(RULES.parent / "k.pem")]) == 2
    assert main(["--kev", str(kev), "--key", str(tmp_path / "missing.pem")]) == 1
    out, pub = tmp_path / "feed.jws", tmp_path / "keys.json"
    args = ["--kev", str(kev), "--key", str(tmp_path / "k.pem"), "--generate-key"]
    args += ["--rules", str(RULES), "--out", str(out), "--public-key-out", str(pub)]
    assert main(args) == 0
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    first = out.read_bytes()
    assert main(args) == 0  # the key now exists and is reused: the same bytes again
    assert out.read_bytes() == first


@needs_shared
def test_kev_subset_matches_the_documented_filter() -> None:
    catalogue = json.loads(KEV_JSON.read_text(encoding="utf-8"))
    ours = {entry["cveID"] for entry in camera_kev_entries(catalogue)}
    lines = KEV_SUBSET.read_text(encoding="utf-8").splitlines()[1:]
    assert ours == {line.split(",", 1)[0] for line in lines}
    assert len(ours) == 19


@needs_shared
def test_shipped_feed_is_reproducible_from_the_shared_kev() -> None:
    catalogue = json.loads(KEV_JSON.read_text(encoding="utf-8"))
    rebuilt = build_feed(catalogue, RULES.read_text(encoding="utf-8"))
    shipped = load_feed(shipped_feed(), shipped_feed_keys(), now=NOW, last=None)
    assert encode(shipped.feed) == encode(rebuilt)


def test_shipped_feed_verifies_with_the_shipped_key() -> None:
    feed = load_feed(shipped_feed(), shipped_feed_keys(), now=NOW, last=None)
    assert feed.version >= 1
    assert len(feed.rules) == len(feed.feed.advisories)


# --- loader: signature, expiry, rollback ------------------------------------------------------


def _resign(feed: Feed, key: OKPKey, **changes: object) -> bytes:
    return sign_feed(msgspec.structs.replace(feed, **changes), key).encode("ascii")


def test_rejects_unpinned_key(feed_payload: Feed, feed_key: OKPKey) -> None:
    other = generate_private_key()
    token = sign_feed(feed_payload, other).encode("ascii")
    with pytest.raises(FeedSignatureError, match="unknown_key"):
        load_feed(token, {feed_key.thumbprint(): feed_key}, now=NOW, last=None)


def test_rejects_tampered_payload(feed_payload: Feed, feed_key: OKPKey) -> None:
    head, _, sig = sign_feed(feed_payload, feed_key).split(".")
    other = sign_feed(msgspec.structs.replace(feed_payload, version=99), feed_key).split(".")[1]
    keys = {feed_key.thumbprint(): feed_key}
    with pytest.raises(FeedSignatureError, match="bad_signature"):
        load_feed(f"{head}.{other}.{sig}".encode(), keys, now=NOW, last=None)


def test_rejects_other_signed_objects(feed_payload: Feed, feed_key: OKPKey) -> None:
    token = sign(encode(feed_payload), feed_key).encode("ascii")  # typ camwarden+jws
    with pytest.raises(FeedSignatureError, match="typ"):
        load_feed(token, {feed_key.thumbprint(): feed_key}, now=NOW, last=None)


def test_rejects_bad_payload(feed_key: OKPKey) -> None:
    token = sign(b'{"version": 1}', feed_key, typ="camwarden-feed+jws").encode("ascii")
    with pytest.raises(FeedMalformed):
        load_feed(token, {feed_key.thumbprint(): feed_key}, now=NOW, last=None)


def test_rejects_expired_and_future(feed_payload: Feed, feed_key: OKPKey) -> None:
    keys = {feed_key.thumbprint(): feed_key}
    with pytest.raises(FeedExpired, match="expired"):
        load_feed(_resign(feed_payload, feed_key, expires_at=NOW), keys, now=NOW, last=None)
    future = _resign(feed_payload, feed_key, issued_at=NOW + timedelta(hours=1))
    with pytest.raises(FeedExpired, match="future"):
        load_feed(future, keys, now=NOW, last=None)


def test_anti_rollback(feed_payload: Feed, feed_key: OKPKey) -> None:
    keys = {feed_key.thumbprint(): feed_key}
    v5 = load_feed(_resign(feed_payload, feed_key, version=5), keys, now=NOW, last=None)
    assert v5.state.version == 5
    with pytest.raises(FeedRollback, match="older"):
        load_feed(_resign(feed_payload, feed_key, version=4), keys, now=NOW, last=v5.state)
    same = load_feed(_resign(feed_payload, feed_key, version=5), keys, now=NOW, last=v5.state)
    assert same.state == v5.state
    changed = _resign(feed_payload, feed_key, version=5, advisories=feed_payload.advisories[:1])
    with pytest.raises(FeedRollback, match="differs"):
        load_feed(changed, keys, now=NOW, last=v5.state)
    newer = load_feed(_resign(feed_payload, feed_key, version=6), keys, now=NOW, last=v5.state)
    assert newer.state == FeedState(6, newer.state.digest)


def test_anti_rollback_survives_a_restart(
    feed_payload: Feed, feed_key: OKPKey, tmp_path: Path
) -> None:
    keys = {feed_key.thumbprint(): feed_key}
    v4, v5 = (_resign(feed_payload, feed_key, version=v) for v in (4, 5))
    assert install_feed(v4, tmp_path, keys, now=NOW)[0].version == 4
    assert install_feed(v5, tmp_path, keys, now=NOW)[1] is True  # installed
    assert install_feed(v5, tmp_path, keys, now=NOW)[1] is False  # the same feed again
    remembered = json.loads((tmp_path / "advisory-feed.json").read_text(encoding="utf-8"))
    assert remembered["version"] == 5
    assert (tmp_path / "advisories.jws").read_bytes() == v5
    names = {p.name for p in tmp_path.iterdir()}  # no temporary file left
    assert names == {"advisory-feed.json", "advisory-feed.lock", "advisories.jws"}

    # a new process: only the files carry over
    with pytest.raises(FeedRollback, match="older than the accepted 5"):
        install_feed(v4, tmp_path, keys, now=NOW)
    assert (tmp_path / "advisories.jws").read_bytes() == v5  # a refused feed replaces nothing
    changed = _resign(feed_payload, feed_key, version=5, advisories=feed_payload.advisories[:1])
    with pytest.raises(FeedRollback, match="differs"):
        install_feed(changed, tmp_path, keys, now=NOW)
    assert newest_feed(tmp_path, keys, now=NOW).state.version == 5


def test_unreadable_feed_state_refuses_the_feed(
    feed_payload: Feed, feed_key: OKPKey, tmp_path: Path
) -> None:
    (tmp_path / "advisory-feed.json").write_text('{"version": "five"}', encoding="utf-8")
    keys = {feed_key.thumbprint(): feed_key}
    with pytest.raises(FeedStateUnreadable, match="corrupt"):
        install_feed(_resign(feed_payload, feed_key), tmp_path, keys, now=NOW)
    with pytest.raises(FeedStateUnreadable, match="corrupt"):
        newest_feed(tmp_path, keys, now=NOW)
    assert not (tmp_path / "advisories.jws").exists()


def _shipped_version() -> int:
    return load_feed(shipped_feed(), shipped_feed_keys(), now=NOW, last=None).version


def test_newest_feed_prefers_a_newer_download_over_the_shipped_feed(
    feed_payload: Feed, feed_key: OKPKey, tmp_path: Path
) -> None:
    keys = {**shipped_feed_keys(), feed_key.thumbprint(): feed_key}
    assert newest_feed(tmp_path, keys, now=NOW).version == _shipped_version()  # nothing installed
    newer = _resign(feed_payload, feed_key, version=_shipped_version() + 1)
    install_feed(newer, tmp_path, keys, now=NOW)
    feed = newest_feed(tmp_path, keys, now=NOW)
    assert (feed.version, feed.kid) == (_shipped_version() + 1, feed_key.thumbprint())


def test_newest_feed_prefers_a_newer_shipped_feed_after_a_package_upgrade(
    feed_payload: Feed, feed_key: OKPKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = {feed_key.thumbprint(): feed_key}
    downloaded = _resign(feed_payload, feed_key, version=7)
    install_feed(downloaded, tmp_path, keys, now=NOW)
    upgraded = _resign(feed_payload, feed_key, version=8)
    monkeypatch.setattr("agent.advisories.feed.shipped_feed", lambda: upgraded)
    assert newest_feed(tmp_path, keys, now=NOW).version == 8
    # the shipped feed is remembered now: the older download is refused from here on
    with pytest.raises(FeedRollback, match="older than the accepted 8"):
        install_feed(downloaded, tmp_path, keys, now=NOW)


def test_newest_feed_refuses_when_nothing_verifies(
    feed_payload: Feed, feed_key: OKPKey, tmp_path: Path
) -> None:
    """Only the organisation's key pinned: the shipped feed (development key) does not verify,
    and a forged download does not either; the download's error is the one raised."""
    keys = {feed_key.thumbprint(): feed_key}
    forged = _resign(feed_payload, generate_private_key())
    (tmp_path / "advisories.jws").write_bytes(forged)
    with pytest.raises(FeedSignatureError, match="not pinned"):
        newest_feed(tmp_path, keys, now=NOW)


def test_pinned_feed_keys_adds_the_organisations_keys(feed_key: OKPKey, tmp_path: Path) -> None:
    jwks = tmp_path / "feed-keys.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(feed_key)]}), encoding="utf-8")
    keys = pinned_feed_keys(jwks)
    assert set(keys) == set(shipped_feed_keys()) | {feed_key.thumbprint()}
    assert pinned_feed_keys(None) == shipped_feed_keys()
    jwks.write_text('{"keys": [{"kty": "RSA"}]}', encoding="utf-8")
    with pytest.raises(FeedSignatureError, match="feed keys"):
        pinned_feed_keys(jwks)
    with pytest.raises(FeedSignatureError, match="feed keys"):
        pinned_feed_keys(tmp_path / "missing.json")


def test_rejects_feed_with_a_bad_rule(feed_payload: Feed, feed_key: OKPKey) -> None:
    bad = msgspec.structs.replace(feed_payload.advisories[0], models=["("])
    token = _resign(feed_payload, feed_key, advisories=[bad])
    with pytest.raises(FeedMalformed, match="model pattern"):
        load_feed(token, {feed_key.thumbprint(): feed_key}, now=NOW, last=None)


def test_payload_round_trip(feed_payload: Feed) -> None:
    assert decode(encode(feed_payload)) == feed_payload
