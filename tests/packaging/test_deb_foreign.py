"""The arm64 and armhf packages (Raspberry Pi OS and Debian 13) installed into a trixie root of
their architecture and run there to a first stored report, every program under qemu-user
through PRoot (binfmt_misc is not mounted on the build machines).

Opt-in, out of CI (minutes under emulation): CAMWARDEN_FOREIGN_ARCH=arm64,armhf; needs proot
and qemu-user-static (scripts/install-system-deps.sh deb).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import debootstrap
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(5400)]


@pytest.mark.parametrize("arch", ["arm64", "armhf"])
def test_foreign_architecture_site_reports(
    arch: str, mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    reason = debootstrap.foreign_requirements(arch)
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp(f"deb-trixie-{arch}")
    debs = debootstrap.build_debs(out, "trixie", arch=arch)
    tarball = debootstrap.root_tarball(tmp_path_factory, "trixie", arch)
    with debootstrap.unpacked(tarball, tmp_path, arch) as root:
        t0 = time.monotonic()
        debootstrap.apt_install(root, debs["agent"], debs["server"])
        installed = time.monotonic() - t0
        machine = debootstrap.in_root(root, "uname", "-m").stdout.strip()
        assert machine == {"arm64": "aarch64", "armhf": "armv7l"}[arch]
        site = debootstrap.Site(root, mosquitto.port, free_port())
        site.configure()
        site.start()
        site.wait_report()
        took = time.monotonic() - t0
        print(f"\n{arch}: installed in {installed:.0f} s, first report after {took:.0f} s")
