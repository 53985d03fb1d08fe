from __future__ import annotations

import csv
import hmac
import json
from pathlib import Path

import msgspec
import pytest

from agent.credentials import passwords
from agent.credentials.build import (
    GENERIC_PAIRS,
    VENDOR_DEFAULTS,
    BuildError,
    build_catalogue,
    main,
)
from agent.credentials.catalogue import load_catalogue
from agent.credentials.passwords import SiteKey, assess_password, fingerprint
from tests.agent.audit.conftest import ROOT, SHARED_DATA

SECLISTS = SHARED_DATA / "default-creds" / "seclists-default-passwords-camera-subset.csv"
CAMERADAR = SHARED_DATA / "cameradar" / "credentials.json"
DEFAULTCREDS = SHARED_DATA / "default-creds" / "DefaultCreds-Cheat-Sheet.csv"
SHIPPED = ROOT / "agent" / "data" / "default-credentials.json"
needs_shared = pytest.mark.skipif(not SECLISTS.exists(), reason="shared fixtures not present")


@needs_shared
def test_shipped_catalogue_is_reproducible(tmp_path: Path) -> None:
    out = tmp_path / "creds.json"
    args = ["--seclists", str(SECLISTS), "--cameradar", str(CAMERADAR), "--out", str(out)]
    assert main(args) == 0
    assert out.read_bytes() == SHIPPED.read_bytes()


@needs_shared
def test_every_shipped_entry_is_attributable_to_its_sources() -> None:
    catalogue = json.loads(SHIPPED.read_text(encoding="utf-8"))
    blank = {"<BLANK>": "", "<N/A>": ""}
    with SECLISTS.open(encoding="utf-8") as handle:
        seclists = {
            (blank.get(r["Username"], r["Username"]), blank.get(r["Password"], r["Password"]))
            for r in csv.DictReader(handle)
        }
    documented = {(user, password) for _, user, password, _ in VENDOR_DEFAULTS}
    for entry in catalogue["entries"]:
        pair = (entry["username"], entry["password"])
        assert entry["sources"], entry["id"]
        assert ("seclists" in entry["sources"]) == (pair in seclists)
        assert ("cameradar" in entry["sources"]) == (pair in GENERIC_PAIRS) == entry["generic"]
        assert ("vendor-docs" in entry["sources"]) == (pair in documented)


@needs_shared
def test_no_row_comes_only_from_defaultcreds() -> None:
    """Rows that exist only in the GPL-provenance list must not be in the product."""
    with DEFAULTCREDS.open(encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader)
        defaultcreds = {(row[1], row[2]) for row in reader if len(row) >= 3}
    shipped = {(e.username, e.password) for e in load_catalogue()}
    only_there = {("admin", "wbox123"), ("root", "admin"), ("Admin", "12345")}
    assert only_there <= defaultcreds
    assert not only_there & shipped


def test_cameradar_pairs_are_checked() -> None:
    with pytest.raises(BuildError, match="Cameradar"):
        build_catalogue("Vendor,Username,Password,Comments\n", {"usernames": [], "passwords": []})


def test_shipped_catalogue_is_strict() -> None:
    with pytest.raises(msgspec.ValidationError):
        load_catalogue(b'{"sources": [], "entries": [], "extra": 1}')
    ids = [c.id for c in load_catalogue()]
    assert len(ids) == len(set(ids))


# --- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "length", "classes", "meets"),
    [
        ("", 0, 0, False),
        ("abcdefgh", 8, 1, False),
        ("Abcdefg1", 8, 3, False),
        ("Abcdef1!", 8, 4, True),
        ("Abc1!", 5, 4, False),
        ("ÀBCdef1 ", 8, 4, True),  # non-ASCII letters count, space is special
        ("Pass€word1", 10, 4, True),  # a non-alphanumeric symbol is special
    ],
)
def test_724_rule(password: str, length: int, classes: int, meets: bool) -> None:
    assessment = assess_password(password)
    assert (assessment.length, assessment.class_count, assessment.meets_724) == (
        length,
        classes,
        meets,
    )


def test_user_inputs_lower_the_score() -> None:
    plain = assess_password("Hikvision2143!").score  # the vendor name is what gives it away
    informed = assess_password("Hikvision2143!", user_inputs=["hikvision", "DS-2CD2143G2-I", None])
    assert (plain, informed.score) == (4, 2)


@pytest.mark.parametrize(
    ("password", "username", "words"),
    [
        ("Hikvision2143!", "admin", ("Hikvision", "DS-2CD2143G2-I")),  # the vendor occurs
        ("H1kv1s10n2143!", "admin", ("Hikvision", None)),  # in l33t
        ("noisivkih2143!", "admin", ("Hikvision", "x")),  # reversed
        ("admin2024!Q", "admin", ("Dahua", "IPC-HDW2431T")),  # the username occurs
        ("Tr0ub4dor&3xyz", "root", ("Axis", "M3045-V")),
        ("Abcdef1!", "admin", (None, None)),
        ("xK9#mQ2vLp", "", ("ONVIF", "Generic")),
        ("12345", "admin", ("Hikvision", None)),
    ],
)
def test_stored_scores_equal_zxcvbn(
    password: str, username: str, words: tuple[str | None, str | None]
) -> None:
    """The vault's scores stand in for zxcvbn only when they give the very same score."""
    inputs = (*words, username)
    live = assess_password(password, user_inputs=inputs).score
    passwords.remember(username, password, passwords.stored_scores(password, username))
    try:
        assert assess_password(password, user_inputs=inputs, username=username).score == live
    finally:
        passwords._STORED.clear()


def test_fingerprint_is_keyed_hmac() -> None:
    key = SiteKey(bytes(range(32)))
    print_ = fingerprint(key, "Tr0ub4dor&3")
    assert print_.value == hmac.digest(key.secret, b"Tr0ub4dor&3", "sha256").hex()
    assert fingerprint(key, "Tr0ub4dor&3") == print_
    other = SiteKey(bytes(range(1, 33)))
    assert fingerprint(other, "Tr0ub4dor&3").value != print_.value
    assert other.key_id != key.key_id
    assert repr(bytes(range(32))) not in repr(key)


def test_site_key_needs_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SiteKey(b"short")
