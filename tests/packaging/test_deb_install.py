"""Build the amd64 agent package and install it into a clean Debian bookworm (debootstrap).

Needs root, debootstrap, dpkg-deb and the Debian mirror this machine's apt uses. The
bootstrapped root is cached as a tarball in pytest's own temp area (reused across runs) and
unpacked fresh for each run; mounts and the unpacked root are removed afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "camwarden-agent"


def host_mirror() -> str | None:
    """The Debian mirror this machine's apt uses for bookworm (deb822 or one-line format)."""
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):
            uris = re.findall(r"^URIs:\s*(\S+)", block, re.MULTILINE)
            suites = re.findall(r"^Suites:\s*(.+)$", block, re.MULTILINE)
            if uris and suites and "bookworm" in suites[0].split():
                return str(uris[0])
        for uri in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.MULTILINE):
            return str(uri)
    return None


def requirements() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root (chroot, mount)"
    for tool in ("debootstrap", "dpkg-deb", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-deps.sh test)"
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    )
    if arch.stdout.strip() != "amd64":
        return "the install test runs the amd64 package, natively"
    if host_mirror() is None:
        return "no bookworm mirror configured in /etc/apt"
    return None


def _checked(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def unmount_below(path: Path) -> None:
    """Unmount everything mounted at or under ``path``, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    real = str(path.resolve())
    for target in sorted(
        (m for m in mounts if m == real or m.startswith(real + "/")), reverse=True
    ):
        if subprocess.run(["umount", target], check=False).returncode != 0:
            subprocess.run(["umount", "-l", target], check=False)


@pytest.fixture(scope="session")
def bookworm_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = requirements()
    if reason:
        pytest.skip(reason)
    # pytest's temp area outlives a run (it keeps the last few); the cache lives next to them
    cache = tmp_path_factory.getbasetemp().parent / "camwarden-debootstrap-cache"
    cache.mkdir(exist_ok=True)
    tarball = cache / "bookworm-minbase-amd64.tar"
    if tarball.exists():
        return tarball
    work = tmp_path_factory.mktemp("debootstrap")
    target = work / "root"
    try:
        mirror = host_mirror()
        assert mirror
        _checked(["debootstrap", "--variant=minbase", "bookworm", str(target), mirror])
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(target, arcname=".")
        partial.replace(tarball)
    finally:
        unmount_below(target)
        shutil.rmtree(work, ignore_errors=True)
    return tarball


@pytest.fixture(scope="session")
def agent_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if requirements():
        pytest.skip(str(requirements()))
    out = tmp_path_factory.mktemp("deb")
    _checked(
        [
            sys.executable,
            str(ROOT / "packaging/deb/build.py"),
            *("--arch", "amd64", "--part", "agent"),
            *("--out", str(out), "--work", str(out / "work")),
        ]
    )
    (deb,) = out.glob(f"{PACKAGE}_*_amd64.deb")
    return deb


@pytest.fixture
def chroot(bookworm_tarball: Path, tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "root"
    target.mkdir()
    try:
        with tarfile.open(bookworm_tarball) as tar:
            # our own tarball of a debootstrap: device nodes and absolute links are intended
            tar.extractall(target, filter="fully_trusted")  # noqa: S202
        shutil.copy("/etc/resolv.conf", target / "etc/resolv.conf")
        policy = target / "usr/sbin/policy-rc.d"  # no service starts inside the chroot
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        _checked(["mount", "-t", "proc", "proc", str(target / "proc")])
        yield target
    finally:
        unmount_below(target)
        shutil.rmtree(target, ignore_errors=True)


def in_root(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C",
    }
    proc = subprocess.run(
        ["chroot", str(root), *args], capture_output=True, text=True, check=False, env=env
    )
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("with_systemd", [True, False], ids=["systemd", "no-systemd"])
def test_install_into_clean_bookworm(chroot: Path, agent_deb: Path, with_systemd: bool) -> None:
    """A Pi / NVR box has systemd (sysusers, tmpfiles, creds); a container may not."""
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
    assert in_root(chroot, "/usr/bin/python3", "-I", "-c", smoke).stdout.startswith("3.11")
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
