"""The TUF repository end to end: offline signing through bundles, serving by the collector's
HTTP app on loopback, and a real ``tuf.ngclient.Updater`` as the agent will use it, including
root rotation and the attacks TUF exists to stop."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater

from protocol import generate_private_key, public_jwk
from server.cli import main
from server.firmware.tuf_repo import BadBundle, TufRepository, due
from tests.firmware.conftest import Site

TARGET = "hikvision/V5.7.3/fw-V5.7.3.bin"


def updater(site: Site, client: Path, bootstrap: bytes | None = None) -> Updater:
    client.mkdir(parents=True, exist_ok=True)
    (client / "targets").mkdir(exist_ok=True)
    root = bootstrap or TufRepository.under(site.state).trusted_root()
    assert root is not None
    return Updater(
        str(client),
        f"{site.base}/tuf/metadata/",
        str(client / "targets"),
        f"{site.base}/tuf/targets/",
        bootstrap=root,
    )


def served(site: Site) -> Path:
    return site.state / "tuf" / "metadata"


def test_agent_downloads_a_verified_image_with_its_custom_metadata(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, _ = signed_site
    up = updater(site, tmp_path / "agent")
    up.refresh()
    info = up.get_targetinfo(TARGET)
    assert info is not None
    assert info.custom == {
        "vendor": "hikvision",
        "models": ["DS-2CD2143G2-I"],
        "version": "V5.7.3",
        "build_date": None,
    }
    path = up.download_target(info)
    image = (site.keys.parent / "fw-V5.7.3.bin").read_bytes()
    assert Path(path).read_bytes() == image
    listing = site.http.get("/tuf/metadata/timestamp.json")
    assert listing.headers["cache-control"] == "no-store"
    assert site.http.get("/tuf/metadata/../collector.db").status_code == 404
    assert site.http.get("/tuf/targets/hikvision/../../online/snapshot.key").status_code == 404
    assert site.http.get("/tuf/metadata/online").status_code == 404


def test_enrollment_answer_carries_the_trusted_root(
    signed_site: tuple[Site, dict[str, Path]],
) -> None:
    site, _ = signed_site

    token = site.repo.create_token(
        "site-1", approved=True, ttl=timedelta(hours=1), uses=1, now=datetime.now(UTC)
    )
    answer = site.http.post(
        "/api/v1/enroll",
        json={
            "token": token,
            "agent_id": "a-1",
            "site": "site-1",
            "jwk": public_jwk(generate_private_key()),
        },
    ).json()
    root = answer["tuf_root"]
    assert root["signed"]["_type"] == "root"
    assert len(root["signatures"]) == 2


def test_vendor_hash_is_checked_on_upload(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    image = site.keys.parent / "x.bin"
    image.write_bytes(b"\x00" * 100)
    good = hashlib.sha256(image.read_bytes()).hexdigest()
    common = ["--vendor", "hikvision", "--model", "M1", "--version", "V1"]
    assert site.cli("firmware", "upload", str(image), *common, "--vendor-sha256", "0" * 64) == 1
    assert "differs from the vendor's published" in capsys.readouterr().err
    assert site.cli("firmware", "upload", str(image), *common, "--vendor-sha256", good) == 0
    assert list((site.state / "tuf" / "incoming").iterdir()) == []


def test_import_refuses_too_few_signatures_and_stale_bundles(
    signed_site: tuple[Site, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    site, keys = signed_site
    site.upload("V5.8.0")
    bundle = site.keys / "short.bundle"
    assert site.cli("firmware", "export-bundle", str(bundle)) == 0
    stale = bundle.read_bytes()
    assert site.cli("firmware", "import-signed", str(bundle)) == 1  # unsigned targets
    assert "targets" in capsys.readouterr().err
    assert main(["firmware", "sign", "--key", str(keys["root-1"]), str(bundle)]) == 1
    assert main(["firmware", "sign", "--key", str(keys["targets-1"]), str(bundle)]) == 0
    assert site.cli("firmware", "import-signed", str(bundle)) == 0
    assert site.cli("firmware", "import-signed", str(bundle)) == 1  # replayed: not newer
    repo = TufRepository.under(site.state)
    with pytest.raises(BadBundle, match="targets version 2"):
        repo.import_signed(stale, datetime.now(UTC))


def test_root_rotation_reaches_an_agent_holding_the_old_root(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, keys = signed_site
    old_root = TufRepository.under(site.state).trusted_root()
    agent = updater(site, tmp_path / "agent", old_root)
    agent.refresh()
    new = {n: site.keygen(n) for n in ("root-4", "root-5", "targets-2")}
    assert (
        site.cli(
            "firmware", "rotate-root",
            "--root-key", f"{new['root-4']}.pub",
            "--root-key", f"{new['root-5']}.pub",
            "--root-threshold", "2",
            "--targets-key", f"{new['targets-2']}.pub",
        )
        == 0
    )  # fmt: skip
    bundle = site.keys / "rotate.bundle"
    assert site.cli("firmware", "export-bundle", str(bundle)) == 0
    # only the new keys: the old root's threshold is not met
    for key in (new["root-4"], new["root-5"], new["targets-2"]):
        assert main(["firmware", "sign", "--key", str(key), str(bundle)]) == 0
    assert site.cli("firmware", "import-signed", str(bundle)) == 1
    for key in (keys["root-1"], keys["root-3"]):  # two of the old three vouch for the new root
        assert main(["firmware", "sign", "--key", str(key), str(bundle)]) == 0
    assert site.cli("firmware", "import-signed", str(bundle)) == 0
    fresh = updater(site, tmp_path / "agent2", old_root)  # an agent enrolled before rotation
    fresh.refresh()
    assert json.loads((tmp_path / "agent2" / "root.json").read_bytes())["signed"]["version"] == 2
    info = fresh.get_targetinfo(TARGET)
    assert info is not None
    fresh.download_target(info)
    updater(site, tmp_path / "agent", old_root).refresh()  # the agent's next update cycle
    assert json.loads((tmp_path / "agent" / "root.json").read_bytes())["signed"]["version"] == 2
    # the old targets key no longer signs anything
    site.upload("V5.9.0")
    again = site.keys / "old.bundle"
    assert site.cli("firmware", "export-bundle", str(again)) == 0
    assert main(["firmware", "sign", "--key", str(keys["targets-1"]), str(again)]) == 1


# -- attacks -----------------------------------------------------------------------------------


def test_tampered_target_is_rejected(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, _ = signed_site
    stored = next((site.state / "tuf" / "targets").rglob("*.fw-V5.7.3.bin"))
    data = stored.read_bytes()
    stored.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same length, other hash
    up = updater(site, tmp_path / "a")
    up.refresh()
    info = up.get_targetinfo(TARGET)
    assert info is not None
    with pytest.raises(tuf_errors.LengthOrHashMismatchError):
        up.download_target(info)
    stored.write_bytes(data + b"\x00" * 64)  # endless data: longer than signed
    with pytest.raises(tuf_errors.DownloadLengthMismatchError):
        up.download_target(info)


def test_rollback_to_older_metadata_is_rejected(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, keys = signed_site
    old = tmp_path / "v1-metadata"
    shutil.copytree(served(site), old)
    site.upload("V5.8.0")
    site.sign_and_import(keys["targets-1"])
    up = updater(site, tmp_path / "a")
    up.refresh()  # the agent has seen timestamp v2
    shutil.copy(old / "timestamp.json", served(site) / "timestamp.json")  # replay v1
    with pytest.raises(tuf_errors.BadVersionNumberError):
        updater(site, tmp_path / "a").refresh()


def test_freeze_with_an_expired_timestamp_is_rejected(site: Site, tmp_path: Path) -> None:
    keys = {n: site.keygen(n) for n in ("root", "targets")}
    assert (
        site.cli(
            "firmware", "init", "--root-key", f"{keys['root']}.pub", "--root-threshold", "1",
            "--targets-key", f"{keys['targets']}.pub",
        )
        == 0
    )  # fmt: skip
    bundle = site.keys / "b"
    assert site.cli("firmware", "export-bundle", str(bundle)) == 0
    for key in keys.values():
        assert main(["firmware", "sign", "--key", str(key), str(bundle)]) == 0
    repo = TufRepository.under(site.state)
    repo.import_signed(bundle.read_bytes(), datetime.now(UTC) - timedelta(days=2))  # frozen
    with pytest.raises(tuf_errors.ExpiredMetadataError):
        updater(site, tmp_path / "a").refresh()
    assert repo.refresh(datetime.now(UTC))  # the online roles are re-signed by `run`
    updater(site, tmp_path / "b").refresh()
    assert not repo.refresh(datetime.now(UTC))


def test_mix_and_match_metadata_is_rejected(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, keys = signed_site
    first_targets = (served(site) / "1.targets.json").read_bytes()
    site.upload("V5.8.0")
    site.sign_and_import(keys["targets-1"])
    # serve the old (validly signed) targets under the name the new snapshot points to
    (served(site) / "2.targets.json").write_bytes(first_targets)
    with pytest.raises(tuf_errors.BadVersionNumberError):
        updater(site, tmp_path / "a").refresh()


def test_endless_metadata_is_cut_off(
    signed_site: tuple[Site, dict[str, Path]], tmp_path: Path
) -> None:
    site, _ = signed_site
    ts = served(site) / "timestamp.json"
    ts.write_bytes(ts.read_bytes() + b" " * (64 * 1024))
    with pytest.raises(tuf_errors.DownloadLengthMismatchError):
        updater(site, tmp_path / "a").refresh()


def test_refresh_is_due_past_half_the_lifetime() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert not due(now + day, day, now)
    assert not due(now + day / 2 + timedelta(seconds=1), day, now)
    assert due(now + day / 2 - timedelta(seconds=1), day, now)
