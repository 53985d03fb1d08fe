"""Debian roots for the package tests, and the packages' services started inside them.

Each release's root is debootstrapped once (minbase, from the mirror this machine's apt uses)
and kept as a tarball in pytest's own temp area, which outlives a run: deleting
``<basetemp>/../camwarden-debootstrap-cache`` drops it, and a fresh machine makes it again. Each
test unpacks a fresh copy, mounts ``/proc`` and removes both at the end. The roots run no
systemd (a chroot has no PID 1 of its own): :func:`install_systemctl` puts a stand-in for
``systemctl`` in a root (tests/support/systemctl.py), which starts a unit's ``ExecStart=`` as
its ``User=`` with what its ``LoadCredential=`` would hand it and waits for its READY=1.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "deb" / "build.py"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # root's, in Debian
# TEST_UNITS_START_S: how long the systemctl stand-in waits for a unit's READY=1, longer than
# its TimeoutStartSec=: on a loaded test machine a slow start is not a failed one
ENV = {
    "PATH": PATH,
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "TEST_UNITS_START_S": "600",
}
PARTS = ("agent", "server")
SUFFIX = {"bookworm": "+deb12", "trixie": "+deb13"}  # of each release's package versions
# the collector's database inside a root with the packaged configuration
DATABASE = "var/lib/camwarden-server/collector.db"


def host_mirror() -> str | None:
    """The Debian mirror this machine's apt uses (deb822 or one-line format); it serves every
    release, so the roots of other releases than the host's come from it too."""
    apt = Path("/etc/apt")
    suite = r"(?:bookworm|trixie|forky|sid|unstable|stable|testing)"
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):
            uris = re.findall(r"^URIs:\s*(\S+)", block, re.MULTILINE)
            suites = re.findall(r"^Suites:\s*(.+)$", block, re.MULTILINE)
            if uris and suites and re.match(suite + r"$", suites[0].split()[0]):
                return str(uris[0])
        for uri in re.findall(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{suite}\s", text, re.MULTILINE):
            return str(uri)
    return None


def requirements() -> str | None:
    """Why the package tests cannot run here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root (chroot, mount)"
    for tool in ("debootstrap", "dpkg-deb", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-deps.sh test)"
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    )
    if arch.stdout.strip() != "amd64":
        return "the install tests run the amd64 packages, natively"
    if host_mirror() is None:
        return "no Debian mirror configured in /etc/apt"
    return None


def skip_unless_possible() -> None:
    reason = requirements()
    if reason:
        pytest.skip(reason)


def checked(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


def unmount_below(path: Path) -> None:
    """Unmount everything mounted at or under ``path``, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    real = str(path.resolve())
    for target in sorted(
        (m for m in mounts if m == real or m.startswith(real + "/")), reverse=True
    ):
        if subprocess.run(["umount", target], check=False).returncode != 0:
            subprocess.run(["umount", "-l", target], check=False)


def cache_dir(factory: pytest.TempPathFactory) -> Path:
    """Beside pytest's numbered temp directories, which it keeps across runs."""
    cache = factory.getbasetemp().parent / "camwarden-debootstrap-cache"
    cache.mkdir(exist_ok=True)
    return cache


# qemu-user emulators of the foreign architectures; binfmt_misc is not mounted here, so PRoot
# runs every program of a foreign root under its emulator (``proot -q``)
QEMU = {"arm64": "qemu-aarch64-static", "armhf": "qemu-arm-static"}
_foreign: dict[Path, str] = {}  # unpacked roots of a foreign architecture


def runner(root: Path, user: str | None = None) -> list[str]:
    """The command prefix that runs a program inside ``root`` (as ``user``): chroot for an
    amd64 root, PRoot with qemu-user for a foreign one."""
    arch = _foreign.get(root)
    if arch is None:
        return ["chroot", *([f"--userspec={user}:{user}"] if user else []), str(root)]
    binds = [arg for path in ("/proc", "/dev", "/sys") for arg in ("-b", path)]
    proot = ["proot", "-q", QEMU[arch], "-r", str(root), "-w", "/", *binds]
    return [*proot, *(["runuser", "-u", user, "--"] if user else [])]


def foreign_requirements(arch: str) -> str | None:
    """Why the opt-in site test of ``arch`` does not run here, or None."""
    if arch not in os.environ.get("CAMWARDEN_FOREIGN_ARCH", "").split(","):
        return f"{arch} under qemu-user is opt-in: CAMWARDEN_FOREIGN_ARCH={arch}"
    for tool in ("proot", QEMU[arch]) if arch in QEMU else ():
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return requirements()


def root_tarball(factory: pytest.TempPathFactory, release: str, arch: str = "amd64") -> Path:
    """The cached tarball of a minbase ``release`` root of ``arch``, made on first use (a
    foreign one in two stages, the second under qemu-user); a lock keeps parallel test runs
    from bootstrapping the same root twice."""
    skip_unless_possible()
    cache = cache_dir(factory)
    tarball = cache / f"{release}-minbase-{arch}.tar"
    with (cache / f"{release}-{arch}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        work = factory.mktemp(f"debootstrap-{release}-{arch}")
        target = work / "root"
        try:
            mirror = host_mirror()
            assert mirror
            stage = ["--foreign"] if arch in QEMU else []
            checked(["debootstrap", f"--arch={arch}", *stage, "--variant=minbase", release,
                     str(target), mirror])  # fmt: skip
            if arch in QEMU:
                _foreign[target] = arch
                second = [*runner(target), "/debootstrap/debootstrap", "--second-stage"]
                checked(second, env={**ENV, "DEBOOTSTRAP_DIR": "/debootstrap"})
            partial = tarball.with_suffix(f".{os.getpid()}.partial")
            with tarfile.open(partial, "w") as tar:
                tar.add(target, arcname=".")
            partial.replace(tarball)
        finally:
            _foreign.pop(target, None)
            unmount_below(target)
            shutil.rmtree(work, ignore_errors=True)
    return tarball


@contextlib.contextmanager
def unpacked(tarball: Path, where: Path, arch: str = "amd64") -> Iterator[Path]:
    """A fresh root of ``arch`` from ``tarball`` at ``where/root`` (amd64: with /proc
    mounted) and no service starts by package scripts (policy-rc.d); unmounted and removed
    afterwards."""
    target = where / "root"
    target.mkdir(parents=True)
    try:
        with tarfile.open(tarball) as tar:
            # our own tarball of a debootstrap: device nodes and absolute links are intended
            tar.extractall(target, filter="fully_trusted")  # noqa: S202
        shutil.copy("/etc/resolv.conf", target / "etc/resolv.conf")
        policy = target / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        if arch in QEMU:
            _foreign[target] = arch
        else:
            checked(["mount", "-t", "proc", "proc", str(target / "proc")])
        yield target
    finally:
        stop_units(target)
        _foreign.pop(target, None)
        unmount_below(target)
        shutil.rmtree(target, ignore_errors=True)


def in_root(
    root: Path, *args: str, check: bool = True, user: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``args`` run inside ``root`` (as ``user``, else root), ``stdin`` on standard input."""
    # under emulation a start takes many minutes
    env = {**ENV, "TEST_UNITS_START_S": "1800"} if root in _foreign else ENV
    proc = subprocess.run(
        [*runner(root, user), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def codename(root: Path) -> str:
    """The release of ``root``, from its os-release."""
    text = (root / "etc/os-release").read_text()
    return str(re.findall(r"^VERSION_CODENAME=(\w+)", text, re.MULTILINE)[0])


def build_debs(
    out: Path, release: str, *, source: Path = ROOT, arch: str = "amd64"
) -> dict[str, Path]:
    """The agent and collector packages of ``release`` and ``arch`` built from ``source`` (a
    checkout: this tree or an earlier release's) into ``out``; by part name."""
    args = [sys.executable, str(source / "packaging/deb/build.py"), "--arch", arch]
    help_text = checked([*args, "--help"]).stdout
    if "--release" in help_text:  # packages from before 0.2.0 were built for bookworm only
        args += ["--release", release]
    if "--uncompressed" in help_text:  # installed right away: xz would take minutes of CPU
        args.append("--uncompressed")
    checked([*args, "--out", str(out), "--work", str(out / "work")])
    debs = {part: next(out.glob(f"camwarden-{part}_*_{arch}.deb")) for part in PARTS}
    shutil.rmtree(out / "work")
    return debs


def apt_install(root: Path, *debs: Path) -> None:
    """Install local packages with apt, which fetches their dependencies from the mirror; a
    configuration file the operator changed is kept where the package's changed too (dpkg's
    default answer, which noninteractive apt cannot give)."""
    names = []
    for deb in debs:
        shutil.copy(deb, root / "tmp" / deb.name)
        names.append(f"/tmp/{deb.name}")
    if not (root / "var/lib/apt/lists/lock").exists():
        in_root(root, "apt-get", "update", "-qq")
    keep = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
    in_root(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *keep, *names)


def version(root: Path, package: str) -> str:
    return in_root(root, "dpkg-query", "-W", "-f=${Version}", package).stdout


def install_systemctl(root: Path) -> None:
    """tests/support/systemctl.py as ``root``'s systemctl and /run/systemd/system, so that
    setups and maintainer scripts call it as they would call systemd's: units start from their
    ``ExecStart=`` as their users (no systemd as PID 1 in a chroot). It lies in /usr/local/sbin,
    first on a shell's PATH even when a package pulls in systemd, and in /usr/bin, where
    maintainer scripts find it (dpkg runs them with a PATH of its own) while systemd is absent."""
    for place in ("usr/local/sbin", "usr/bin"):
        shim = root / place / "systemctl"
        shim.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "tests/support/systemctl.py", shim)
        shim.chmod(0o755)
    (root / "run/systemd/system").mkdir(parents=True, exist_ok=True)


def unit_pid(root: Path, unit: str) -> int | None:
    """The main process of ``unit`` as the systemctl stand-in started it, if it runs."""
    path = root / "run/test-units" / f"{unit}.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def unit_logs(root: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted((root / "run/test-units").glob("*.log"))
    )


def stop_units(root: Path) -> None:
    """Everything the systemctl stand-in started in ``root``: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid_file in (root / "run/test-units").glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), sig)
        time.sleep(1)


def query(root: Path, sql: str, *params: str) -> list[tuple[str, int]]:
    """Rows of the collector's database in ``root`` (read-only); none before its migration."""
    path = root / DATABASE
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        try:
            return [(str(key), int(n)) for key, n in db.execute(sql, params).fetchall()]
        except sqlite3.OperationalError:  # no messages table yet
            return []


def stored(root: Path, agent_id: str) -> dict[str, int]:
    """How many messages of each type the collector in ``root`` stored from ``agent_id``."""
    sql = "SELECT type, count(*) FROM messages WHERE agent_id = ? GROUP BY type"
    return dict(query(root, sql, agent_id))


def stored_reports(root: Path) -> dict[str, int]:
    """How many reports the collector in ``root`` stored, by agent."""
    sql = "SELECT agent_id, count(*) FROM messages WHERE type = ? GROUP BY agent_id"
    return dict(query(root, sql, "report"))


def schema_revision(root: Path) -> str:
    path = root / DATABASE
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


def wait_report(root: Path, agent_id: str, more_than: int = 0) -> int:
    """Wait until the collector in ``root`` stored more than ``more_than`` reports of
    ``agent_id``; how many it stored."""
    deadline = time.monotonic() + (1800 if root in _foreign else 600)
    while (count := stored(root, agent_id).get("report", 0)) <= more_than:
        units = ("camwarden-server.service", "camwarden-agent.service")
        dead = [unit for unit in units if unit_pid(root, unit) is None]
        if dead or time.monotonic() > deadline:
            found = stored(root, agent_id)
            raise AssertionError(
                f"no report from {agent_id} stored: {found}, not running: {dead}\n"
                + unit_logs(root)
            )
        time.sleep(0.5)
    return count


class Site:
    """A collector and an agent installed from the packages into one root, configured by
    appending to the packaged configuration files as an operator would, the agent enrolled
    with an approved token, both started with ``systemctl``; the broker is a loopback
    Mosquitto outside the root."""

    AGENT = "site-agent"

    def __init__(self, root: Path, broker_port: int, http_port: int) -> None:
        self.root, self.broker_port, self.http_port = root, broker_port, http_port
        install_systemctl(root)

    def configure(self) -> None:
        """The collector's settings in a drop-in (server.d), the agent's appended to its
        packaged template."""
        drop_in = self.root / "etc/camwarden/server.d/60-site.toml"
        drop_in.parent.mkdir(exist_ok=True)
        drop_in.write_text(
            f'state_dir = "/var/lib/camwarden-server"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\n'
            f'[http]\nbind = "127.0.0.1"\nport = {self.http_port}\n'
        )
        in_root(self.root, "chown", "-R", "root:camwarden-server", "/etc/camwarden/server.d")
        in_root(self.root, "chmod", "-R", "u=rwX,g=rX,o=", "/etc/camwarden/server.d")
        with (self.root / "etc/camwarden/agent.toml").open("a") as conf:
            conf.write(
                f'agent_id = "{self.AGENT}"\nsite = "s1"\n'
                f'collector_url = "http://127.0.0.1:{self.http_port}"\n'
                f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\nreconnect_max_s = 2\n'
                "[intervals]\nreport_s = 2\nheartbeat_s = 2\n"
            )

    def systemctl(self, *args: str) -> None:
        done = in_root(self.root, "systemctl", *args, check=False)
        assert done.returncode == 0, f"systemctl {args}: {done.stderr}\n{unit_logs(self.root)}"

    def server_cli(self, *args: str) -> str:
        command = ["camwarden-server", "--config", "/etc/camwarden/server.toml", *args]
        return in_root(self.root, *command, user="camwarden-server").stdout

    def agent_cli(self, *args: str) -> str:
        return in_root(self.root, "camwarden-agent", *args, user="camwarden").stdout

    def start(self) -> None:
        """The collector (it migrates, then answers READY=1), the agent enrolled, the agent."""
        self.systemctl("start", "camwarden-server.service")
        token = self.server_cli("tokens", "create", "--site", "s1", "--approved").split()[-1]
        self.agent_cli("keygen", "--key", "/var/lib/camwarden/agent.key")
        url = f"http://127.0.0.1:{self.http_port}"
        self.agent_cli("enroll", "--server", url, "--token", token, "--config",
                       "/etc/camwarden/agent.toml")  # fmt: skip
        self.systemctl("start", "camwarden-agent.service")

    def wait_report(self, more_than: int = 0) -> int:
        return wait_report(self.root, self.AGENT, more_than)
