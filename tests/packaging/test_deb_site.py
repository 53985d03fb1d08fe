"""A site from the packages: both installed into a fresh root of the release, the collector
and the agent started with ``systemctl`` (tests/support/systemctl.py: no systemd as PID 1 in a
chroot), the agent enrolled, and its first signed report stored by the collector.

The arm64 and armhf packages (Raspberry Pi OS, Debian 13 on ARM) run in a root of their
architecture with every program under qemu-user through PRoot (binfmt_misc is not mounted on
the build machines): opt-in and out of CI, as they take many minutes:
CAMWARDEN_FOREIGN_ARCH=arm64,armhf (proot and qemu-user-static: install-system-deps.sh deb).
The amd64 packages of trixie take this path in test_install_guide.py (the README's commands),
those of bookworm in test_deb_upgrade.py; "trixie/amd64" here is opt-in too
(CAMWARDEN_FOREIGN_ARCH=amd64), for when the guide changes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.packaging.conftest import Packages
from tests.support import debootstrap
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(5400)]
MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l"}


@pytest.mark.parametrize("target", ["trixie/amd64", "trixie/arm64", "trixie/armhf"])
def test_fresh_root_reports(
    target: str,
    packages: Packages,
    mosquitto: Mosquitto,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    release, arch = target.split("/")
    reason = debootstrap.foreign_requirements(arch)
    if reason:
        pytest.skip(reason)
    debs = packages(release, arch)
    tarball = debootstrap.root_tarball(tmp_path_factory, release, arch)
    with debootstrap.unpacked(tarball, tmp_path, arch) as root:
        t0 = time.monotonic()
        debootstrap.apt_install(root, debs["agent"], debs["server"])
        installed = time.monotonic() - t0
        assert debootstrap.in_root(root, "uname", "-m").stdout.strip() == MACHINE[arch]
        for part in debootstrap.PARTS:
            version = debootstrap.version(root, f"camwarden-{part}")
            assert version.endswith(debootstrap.SUFFIX[release])
        site = debootstrap.Site(root, mosquitto.port, free_port())
        site.configure()
        site.start()
        site.wait_report()
        took = time.monotonic() - t0
        print(f"\n{target}: installed in {installed:.0f} s, first report after {took:.0f} s")
