"""The README's "Install a site" guide, run as written in a fresh Debian 13 root, to a first
signed report stored at the collector it set up.

The guide's commands are its ```sh blocks between ``<!-- guide:install-site -->`` and
``<!-- /guide -->``, run in order by root in one bash (``set -eu``), from a directory holding
the release's two packages, with the camera's password in $CAMERA_PASSWORD. They run in a
network namespace of the test's own (loopback only, so the guide's fixed addresses and ports
collide with nothing), beside a lab camera on the guide's camera subnet at its real ports. The
namespace has no route to the mirror, so apt's cache is filled beforehand (``apt-get install
--download-only`` of the same packages); the guide's own ``apt-get install`` then installs from
it. There is no systemd as PID 1 in a chroot: ``systemctl`` is tests/support/systemctl.py,
which starts the units' ``ExecStart=`` as their users and waits for their READY=1 (no drop-ins,
cgroups or sandboxing), and /run/systemd/system exists so that the setups and the maintainer
scripts call it as they would call systemd's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import Packages
from tests.support import debootstrap
from tests.support.stack import LAB, start, stop, wait_file

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]

README = debootstrap.ROOT / "README.md"
GUIDE = re.compile(r"<!-- guide:install-site -->(.*?)<!-- /guide -->", re.DOTALL)
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
PASSWORD = "Kq7!vR2#mZ9x-site"  # the lab camera's, made up
SUBNET = re.compile(r"--camera-subnet\s+(127\.\d+\.\d+)\.0/24")


def guide() -> str:
    """The guide's commands as one script."""
    found = GUIDE.search(README.read_text(encoding="utf-8"))
    if found is None:
        pytest.skip("README.md has no <!-- guide:install-site --> section")
    script = "\n".join(BLOCK.findall(found.group(1)))
    assert script.strip(), "the install-site guide has no ```sh block"
    return script


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace with only ``lo`` (up), held by a sleeping process; its path."""
    holder = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 3600"]
    )
    path = f"/proc/{holder.pid}/ns/net"
    try:
        deadline = time.monotonic() + 10
        while "lo" not in up_links(path):
            assert time.monotonic() < deadline, "loopback did not come up"
            time.sleep(0.1)
        yield path
    finally:
        holder.kill()
        holder.wait()


def up_links(path: str) -> str:
    done = subprocess.run(
        ["nsenter", f"--net={path}", "ip", "-o", "link", "show", "up"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def test_install_guide_from_fresh_trixie_root_to_first_report(
    packages: Packages,
    netns: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    script = guide()
    subnet = SUBNET.search(script)
    assert subnet, "the guide's agent setup names no loopback --camera-subnet for the lab"
    agent = re.search(r"--agent-id\s+(\S+)", script)
    assert agent, "the guide's agent setup names no --agent-id"
    debs = packages("trixie")
    tarball = debootstrap.root_tarball(tmp_path_factory, "trixie")
    lab_conf = tmp_path / "lab.toml"
    lab_conf.write_text(
        f'[lab]\nloopback_base = "{subnet.group(1)}.0"\nrtsp = false\nport_shift = 0\n'
        f'[[camera]]\nid = "door"\npersona = "hikvision"\n'
        f'users = [{{name = "admin", password = "{PASSWORD}", role = "admin"}}]\n'
    )
    in_ns = ["nsenter", f"--net={netns}"]
    state = tmp_path / "lab.json"
    lab = start([*in_ns, *LAB, "up", "--config", str(lab_conf), "--state", str(state)],
                tmp_path / "lab.log")  # fmt: skip
    with debootstrap.unpacked(tarball, tmp_path) as root:
        try:
            wait_file(state, lab, tmp_path / "lab.log")
            site = root / "root"
            for deb in debs.values():
                shutil.copy(deb, site / deb.name)
            debootstrap.install_systemctl(root)
            # apt's cache, filled from the mirror before the namespace cuts it off
            debootstrap.in_root(root, "apt-get", "update", "-qq")
            names = [f"/root/{deb.name}" for deb in debs.values()]
            debootstrap.in_root(root, "apt-get", "install", "-y", "-qq", "--download-only",
                                *names, "mosquitto")  # fmt: skip
            (site / "guide.sh").write_text(f"set -eu\ncd /root\n{script}\n")
            commands = sum(1 for line in script.splitlines() if line.strip() and line[0] != "#")
            env = {**debootstrap.ENV, "CAMERA_PASSWORD": PASSWORD, "HOME": "/root"}
            t0 = time.monotonic()
            done = subprocess.run(
                [*in_ns, "chroot", str(root), "/bin/bash", "/root/guide.sh"],
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=900,
            )
            logs = debootstrap.unit_logs(root)
            output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{logs}"
            assert done.returncode == 0, f"the guide failed:\n{output}"
            deadline = time.monotonic() + 120
            while agent.group(1) not in debootstrap.stored_reports(root):
                assert time.monotonic() < deadline, f"no report stored after the guide:\n{output}"
                time.sleep(1)
            took = time.monotonic() - t0
        finally:
            stop(lab)
    print(f"\nguide: {commands} command lines, first report stored {took:.0f} s after the first")
