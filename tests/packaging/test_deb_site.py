"""A site from the packages: both installed into a fresh root of the release, the collector
and the agent started with ``systemctl`` (tests/support/systemctl.py: no systemd as PID 1 in a
chroot), the agent enrolled, and its first signed report stored by the collector."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.packaging.conftest import Packages
from tests.support import debootstrap
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]


@pytest.mark.parametrize("release", ["trixie"])
def test_fresh_root_reports(
    release: str,
    packages: Packages,
    mosquitto: Mosquitto,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    debs = packages(release)
    tarball = debootstrap.root_tarball(tmp_path_factory, release)
    with debootstrap.unpacked(tarball, tmp_path) as root:
        t0 = time.monotonic()
        debootstrap.apt_install(root, debs["agent"], debs["server"])
        installed = time.monotonic() - t0
        for part in debootstrap.PARTS:
            assert debootstrap.version(root, f"camwarden-{part}").endswith(
                "+deb13" if release == "trixie" else "+deb12"
            )
        site = debootstrap.Site(root, mosquitto.port, free_port())
        site.configure()
        site.start()
        site.wait_report()
        took = time.monotonic() - t0
        print(f"\n{release}: installed in {installed:.0f} s, first report after {took:.0f} s")
