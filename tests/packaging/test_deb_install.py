"""The amd64 agent package installed into a clean root of each release (debootstrap): files,
modes, the service user with and without systemd, the vault key, the unit's offline check,
the private tree's imports under the release's python3, and purge.

Needs root, debootstrap, dpkg-deb and the Debian mirror this machine's apt uses; the roots are
cached as tarballs (tests/support/debootstrap.py).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import Packages
from tests.support.debootstrap import ROOT, codename, in_root, root_tarball, unpacked

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]

PACKAGE = "camwarden-agent"
PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


@pytest.fixture
def chroot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[Path]:
    with unpacked(root_tarball(tmp_path_factory, request.param), tmp_path) as root:
        yield root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize(
    ("chroot", "with_systemd"),
    [("bookworm", False), ("trixie", True)],
    ids=["bookworm-no-systemd", "trixie-systemd"],
    indirect=["chroot"],
)
def test_install_into_clean_root(chroot: Path, packages: Packages, with_systemd: bool) -> None:
    """A Pi / NVR box has systemd (sysusers, tmpfiles, creds); a container may not."""
    release = codename(chroot)
    agent_deb = packages(release)["agent"]
    shutil.copy(agent_deb, chroot / "tmp" / agent_deb.name)
    in_root(chroot, "apt-get", "update", "-qq")
    if with_systemd:
        in_root(chroot, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "systemd")
    # dpkg -i stops at the missing python3-systemd etc.; apt-get -f install completes it
    first = in_root(chroot, "dpkg", "-i", f"/tmp/{agent_deb.name}", check=False)
    fixed = in_root(chroot, "apt-get", "-f", "install", "-y", "-qq", "--no-install-recommends")
    status = in_root(chroot, "dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE)
    assert status.stdout.startswith("install ok installed"), (first.stderr, fixed.stdout)

    # files and modes
    assert mode(chroot / "usr/bin/camwarden-agent") == 0o755
    assert mode(chroot / "lib/systemd/system/camwarden-agent.service") == 0o644
    assert (chroot / "usr/lib/sysusers.d/camwarden-agent.conf").is_file()
    assert (chroot / "usr/lib/tmpfiles.d/camwarden-agent.conf").is_file()
    assert (chroot / "opt/camwarden/agent/lib/agent/__init__.py").is_file()
    assert not (chroot / "opt/camwarden/agent/lib/server").exists()

    # the system user, from systemd-sysusers or the useradd fallback
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (chroot / "etc/passwd").read_text().splitlines()
    }
    assert "camwarden" in passwd
    uid, shell = int(passwd["camwarden"][2]), passwd["camwarden"][6]
    assert uid < 1000
    assert shell in ("/usr/sbin/nologin", "/sbin/nologin")
    groups = {
        line.split(":")[0]: int(line.split(":")[2])
        for line in (chroot / "etc/group").read_text().splitlines()
    }
    sysusers = (chroot / "usr/bin/systemd-sysusers").exists()
    assert sysusers == with_systemd

    config = chroot / "etc/camwarden/agent.toml"
    assert mode(config) == 0o640
    assert (config.stat().st_uid, config.stat().st_gid) == (0, groups["camwarden"])
    state = chroot / "var/lib/camwarden"
    assert mode(state) == 0o700
    assert state.stat().st_uid == uid

    # conffiles are registered as such
    conffiles = in_root(chroot, "dpkg-query", "-W", "-f=${Conffiles}", PACKAGE).stdout
    assert "/etc/camwarden/agent.toml" in conffiles

    # the vault key: root and the service's group read it (the unit and a root shell)
    vault_key = chroot / "etc/camwarden/vault.key"
    assert mode(vault_key) == 0o640
    assert (vault_key.stat().st_uid, vault_key.stat().st_size) == (0, 32)
    assert vault_key.stat().st_gid == state.stat().st_gid

    # the unit passes systemd's offline verification against the installed tree
    analyze = shutil.which("systemd-analyze")
    if analyze and with_systemd:
        verify = subprocess.run(
            [analyze, "verify", f"--root={chroot}", "--man=no", "camwarden-agent.service"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr

    # the private tree imports with Debian's python3, compiled parts included
    smoke = (
        "import sys; sys.path.insert(0, '/opt/camwarden/agent/lib'); "
        "import agent, protocol, msgspec, psutil, lxml.etree, aiohttp, paho.mqtt.client, "
        "cryptography.hazmat.primitives.asymmetric.ed25519 as e, systemd.daemon; "
        "e.Ed25519PrivateKey.generate(); print(sys.version.split()[0])"
    )
    assert in_root(chroot, "/usr/bin/python3", "-I", "-c", smoke).stdout.startswith(PYTHON[release])
    if (ROOT / "agent" / "cli.py").exists():
        version = in_root(chroot, "camwarden-agent", "--version").stdout
        assert "0." in version
    print(  # the figures the ADR quotes
        f"\ninstalled with sysusers={sysusers}; "
        f"{in_root(chroot, 'du', '-sh', '/opt/camwarden').stdout.strip()}"
    )

    # purge removes state and the credential, keeps the user (Debian policy)
    in_root(chroot, "dpkg", "--purge", PACKAGE)
    assert not state.exists()
    assert not config.exists()
    assert not vault_key.exists()
    assert "camwarden:" in (chroot / "etc/passwd").read_text()
