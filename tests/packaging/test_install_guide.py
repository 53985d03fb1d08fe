"""The README's "Install a site" guide, run as written in a fresh Debian 13 root, to a first
signed report stored at the collector it set up.

What the guide promises the test (and a technician): its commands are the ```sh blocks between
``<!-- guide:install-site -->`` and ``<!-- /guide -->``, run in order by root in one shell
(``set -eu``) from a directory holding the two packages of the release
(``camwarden-{agent,server}_<version>_<arch>.deb``); ``sudo`` works; the site's addresses
are shell variables assigned at the start of a line (``COLLECTOR=...``), which the test points
at loopback. There is no systemd as PID 1 in a chroot: ``systemctl`` is replaced by
tests/support/systemctl.py, which starts the units' ``ExecStart=`` as their users and waits
for their READY=1 (no drop-ins, cgroups or sandboxing); everything else is the packages' own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.packaging.conftest import Packages
from tests.support import debootstrap

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]

README = debootstrap.ROOT / "README.md"
GUIDE = re.compile(r"<!-- guide:install-site -->(.*?)<!-- /guide -->", re.DOTALL)
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
# the site's addresses, pointed at loopback: the collector, broker and agent share the root
ADDRESSES = {"COLLECTOR": "127.0.0.1"}


def guide_script() -> str:
    """The guide's commands as one script, its address assignments pointed at loopback."""
    found = GUIDE.search(README.read_text(encoding="utf-8"))
    if found is None:
        pytest.skip("README.md has no <!-- guide:install-site --> section yet")
    script = "\n".join(block for block in BLOCK.findall(found.group(1)))
    assert script.strip(), "the install-site guide has no ```sh block"
    for name, value in ADDRESSES.items():
        script, n = re.subn(rf"^{name}=\S*", f"{name}={value}", script, flags=re.MULTILINE)
        assert n, f"the guide assigns no {name}= (the test points it at {value})"
    return script


def stop_units(root: Path) -> None:
    for pid_file in (root / "run/test-units").glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            continue
    time.sleep(2)
    for pid_file in (root / "run/test-units").glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            continue


def test_install_guide_from_fresh_trixie_root_to_first_report(
    packages: Packages, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    script = guide_script()
    debs = packages("trixie")
    tarball = debootstrap.root_tarball(tmp_path_factory, "trixie")
    with debootstrap.unpacked(tarball, tmp_path) as root:
        site = root / "root/site"
        site.mkdir(parents=True)
        for deb in debs.values():
            shutil.copy(deb, site / deb.name)
        shim = root / "usr/local/sbin/systemctl"
        shim.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parents[1] / "support/systemctl.py", shim)
        shim.chmod(0o755)
        (root / "root/site/guide.sh").write_text(f"set -eu\ncd /root/site\n{script}\n")
        commands = sum(1 for line in script.splitlines() if line.strip() and line[0] != "#")
        # python3 runs the systemctl stand-in until the guide's packages bring their own
        debootstrap.in_root(root, "apt-get", "update", "-qq")
        debootstrap.in_root(root, "apt-get", "install", "-y", "-qq", "python3-minimal", "sudo")
        t0 = time.monotonic()
        try:
            env = {**debootstrap.ENV, "PATH": "/usr/local/sbin:" + debootstrap.ENV["PATH"]}
            done = subprocess.run(
                ["chroot", str(root), "/bin/bash", "/root/site/guide.sh"],
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=900,
            )
            assert done.returncode == 0, (
                f"the guide failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
            deadline = time.monotonic() + 180
            while not any(debootstrap.stored_reports(root)):
                assert time.monotonic() < deadline, "no report stored after the guide"
                time.sleep(1)
        finally:
            stop_units(root)
        took = time.monotonic() - t0
        print(f"\nguide: {commands} command lines, first report stored after {took:.0f} s")
