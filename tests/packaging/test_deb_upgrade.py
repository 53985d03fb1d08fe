"""Upgrade from the previous release's packages (0.1.0, bookworm only) to this tree's: the
configuration, the keys, the vault, the enrolment and the database rows stay, the schema is
migrated to this tree's head, and once the units run again the site keeps reporting.

The old packages are built from the 0.1.0 commit's own tree (``git archive``) and cached beside
the debootstrapped roots (they never change). The units run under the systemctl stand-in
(tests/support/systemctl.py; no systemd as PID 1 in a chroot), so the new postinst's
``systemctl restart`` of an active unit is what restarts them.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.packaging.conftest import Packages
from tests.support import debootstrap
from tests.support.debootstrap import PARTS
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]

UNITS = ("camwarden-server.service", "camwarden-agent.service")
# 0.1.0's collector unit put --config after `run`, which refuses it: a 0.1.0 site ran the
# collector with this drop-in (systemctl edit camwarden-server), which stays valid after 0.2.0
OVERRIDE = """[Service]
ExecStart=
ExecStart=/usr/bin/camwarden-server --config /etc/camwarden/server.toml run
"""
CONFIG = ("--config", "/etc/camwarden/agent.toml")
PREVIOUS = "650ba0675d057acb8c96d25c3d68347ef6f3683d"  # v0.1.0
# what must survive the upgrade byte for byte (the configs were edited by the operator)
KEPT = (
    "etc/camwarden/agent.toml",
    "etc/camwarden/server.d/60-site.toml",
    "etc/camwarden/vault.key",
    "var/lib/camwarden/agent.key",
    "var/lib/camwarden/enrollment.json",
    "var/lib/camwarden-server/collector.key",
)


def previous_debs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 0.1.0 amd64 packages, built once from that commit and kept in the roots' cache."""
    debootstrap.skip_unless_possible()
    cache = debootstrap.cache_dir(factory) / f"debs-{PREVIOUS[:12]}"
    found = {
        part: list(cache.glob(f"camwarden-{part}_*_amd64.deb")) for part in ("agent", "server")
    }
    if all(found.values()):
        return {part: debs[0] for part, debs in found.items()}
    archive = subprocess.run(
        ["git", "-C", str(debootstrap.ROOT), "archive", "--format=tar", PREVIOUS],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {PREVIOUS[:12]} (v0.1.0) is not in this checkout")
    work = factory.mktemp("previous")
    source = work / "src"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    partial = work / "debs"
    debs = debootstrap.build_debs(partial, "bookworm", source=source)
    shutil.rmtree(cache, ignore_errors=True)
    partial.replace(cache)
    shutil.rmtree(work, ignore_errors=True)
    return {part: cache / deb.name for part, deb in debs.items()}


def digests(root: Path) -> dict[str, str]:
    return {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in KEPT}


def test_upgrade_from_previous_release_keeps_the_site_reporting(
    packages: Packages,
    mosquitto: Mosquitto,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    old, new = previous_debs(tmp_path_factory), packages("bookworm")
    tarball = debootstrap.root_tarball(tmp_path_factory, "bookworm")
    head = ScriptDirectory(str(debootstrap.ROOT / "server/storage/migrations")).get_current_head()
    with debootstrap.unpacked(tarball, tmp_path) as root:
        debootstrap.apt_install(root, old["agent"], old["server"])
        before = {p: debootstrap.version(root, f"camwarden-{p}") for p in PARTS}
        assert before == {"agent": "0.1.0-1", "server": "0.1.0-1"}
        site = debootstrap.Site(root, mosquitto.port, free_port())
        site.configure()
        override = root / "etc/systemd/system/camwarden-server.service.d/exec-start.conf"
        override.parent.mkdir(parents=True)
        override.write_text(OVERRIDE)
        site.start()
        vault = ("vault", "set", "lobby", "--username", "admin", *CONFIG)
        debootstrap.in_root(root, "camwarden-agent", *vault, stdin="s3cret-Pass\n")
        reports = site.wait_report()
        kept = digests(root)
        pids = {unit: debootstrap.unit_pid(root, unit) for unit in UNITS}

        # the new packages' postinst finds the units active and restarts them
        debootstrap.apt_install(root, new["agent"], new["server"])
        for part in PARTS:
            after = debootstrap.version(root, f"camwarden-{part}")
            assert after.endswith(debootstrap.SUFFIX["bookworm"])
            compare = ["dpkg", "--compare-versions", before[part], "lt", after]
            assert debootstrap.in_root(root, *compare, check=False).returncode == 0
        for unit, pid in pids.items():
            assert debootstrap.unit_pid(root, unit) not in (None, pid), unit  # restarted
        assert digests(root) == kept
        site.wait_report(more_than=reports)  # the restarted collector migrated at its start
        assert debootstrap.schema_revision(root) == head
        listed = debootstrap.in_root(root, "camwarden-agent", "vault", "list", *CONFIG)
        assert "lobby" in listed.stdout  # from a root shell, with the key the unit uses
