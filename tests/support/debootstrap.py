"""Debian roots for the package tests, and the packages' services started inside them.

Each release's root is debootstrapped once (minbase, from the mirror this machine's apt uses)
and kept as a tarball in pytest's own temp area, which outlives a run: deleting
``<basetemp>/../camwarden-debootstrap-cache`` drops it, and a fresh machine makes it again. Each
test unpacks a fresh copy, mounts ``/proc`` and removes both at the end. The roots run no
systemd (a chroot has no PID 1 of its own), so :func:`start_unit` starts a unit's ``ExecStart=``
as its ``User=`` with what the unit's ``LoadCredential=`` would hand it, the way systemd would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.broker import wait_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "deb" / "build.py"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
PARTS = ("agent", "server")
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


def root_tarball(factory: pytest.TempPathFactory, release: str) -> Path:
    """The cached tarball of a minbase ``release`` root (amd64), made on first use; a lock
    keeps parallel test runs from bootstrapping the same release twice."""
    skip_unless_possible()
    cache = cache_dir(factory)
    tarball = cache / f"{release}-minbase-amd64.tar"
    with (cache / f"{release}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        work = factory.mktemp(f"debootstrap-{release}")
        target = work / "root"
        try:
            mirror = host_mirror()
            assert mirror
            checked(["debootstrap", "--variant=minbase", release, str(target), mirror])
            partial = tarball.with_suffix(f".{os.getpid()}.partial")
            with tarfile.open(partial, "w") as tar:
                tar.add(target, arcname=".")
            partial.replace(tarball)
        finally:
            unmount_below(target)
            shutil.rmtree(work, ignore_errors=True)
    return tarball


@contextlib.contextmanager
def unpacked(tarball: Path, where: Path) -> Iterator[Path]:
    """A fresh root from ``tarball`` at ``where/root`` with /proc mounted and no service
    starts by package scripts (policy-rc.d); unmounted and removed afterwards."""
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
        checked(["mount", "-t", "proc", "proc", str(target / "proc")])
        yield target
    finally:
        unmount_below(target)
        shutil.rmtree(target, ignore_errors=True)


def in_root(
    root: Path, *args: str, check: bool = True, user: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``args`` run inside ``root`` (as ``user``, else root), ``stdin`` on standard input."""
    spec = [f"--userspec={user}:{user}"] if user else []
    proc = subprocess.run(
        ["chroot", *spec, str(root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def codename(root: Path) -> str:
    """The release of ``root``, from its os-release."""
    text = (root / "etc/os-release").read_text()
    return str(re.findall(r"^VERSION_CODENAME=(\w+)", text, re.MULTILINE)[0])


def build_debs(out: Path, release: str, *, source: Path = ROOT) -> dict[str, Path]:
    """The amd64 agent and collector packages of ``release`` built from ``source`` (a
    checkout: this tree or an earlier release's) into ``out``; by part name."""
    args = [sys.executable, str(source / "packaging/deb/build.py"), "--arch", "amd64"]
    help_text = checked([*args, "--help"]).stdout
    if "--release" in help_text:  # packages from before 0.2.0 were built for bookworm only
        args += ["--release", release]
    checked([*args, "--out", str(out), "--work", str(out / "work")])
    debs = {part: next(out.glob(f"camwarden-{part}_*_amd64.deb")) for part in PARTS}
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


class Unit:
    """An installed unit's ``ExecStart=``, started as systemd would without PID 1 here."""

    def __init__(self, root: Path, name: str) -> None:
        text = (root / "lib/systemd/system" / name).read_text()
        fields: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                fields.setdefault(key.strip(), []).append(value.strip())
        self.root, self.name = root, name
        (self.exec_start,) = fields["ExecStart"]
        (self.user,) = fields["User"]
        self.credentials = [c.split(":", 1) for c in fields.get("LoadCredential", [])]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root.parent / f"{name}.log"

    def start(self) -> None:
        """``ExecStart=`` as ``User=``; ``LoadCredential=`` files copied into a credentials
        directory readable by the service only, named in $CREDENTIALS_DIRECTORY."""
        env = dict(ENV)
        if self.credentials:
            creds = Path("/run/credentials") / self.name
            inside = self.root / creds.relative_to("/")
            inside.mkdir(parents=True, exist_ok=True)
            for name, source in self.credentials:
                shutil.copy(self.root / source.lstrip("/"), inside / name)
            in_root(self.root, "chown", "-R", f"{self.user}:{self.user}", str(creds))
            env["CREDENTIALS_DIRECTORY"] = str(creds)
        argv = ["chroot", f"--userspec={self.user}:{self.user}", str(self.root)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*argv, *shlex.split(self.exec_start)], stdout=log, stderr=log, env=env
            )

    def stop(self) -> None:
        """SIGTERM as systemd sends it; SIGKILL after 30 s (TimeoutStopSec=)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_http(unit: Unit, port: int) -> None:
    try:
        wait_port("127.0.0.1", port, timeout=180)
    except TimeoutError:
        raise AssertionError(f"{unit.name} did not listen:\n{unit.output()}") from None


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


def wait_report(root: Path, agent_id: str, more_than: int, units: list[Unit]) -> int:
    """Wait until the collector stored more than ``more_than`` reports of ``agent_id``."""
    deadline = time.monotonic() + 180
    while (count := stored(root, agent_id).get("report", 0)) <= more_than:
        dead = [u for u in units if u.proc is not None and u.proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {u.name}\n{u.output()}" for u in units)
            raise AssertionError(
                f"no report from {agent_id} stored: {stored(root, agent_id)}\n{logs}"
            )
        time.sleep(0.5)
    return count


class Site:
    """A collector and an agent installed from the packages into one root, configured by
    appending to the packaged configuration files as an operator would, the agent enrolled
    with an approved token; the broker is a loopback Mosquitto outside the root."""

    def __init__(self, root: Path, broker_port: int, http_port: int) -> None:
        self.root, self.broker_port, self.http_port = root, broker_port, http_port
        self.collector = Unit(root, "camwarden-server.service")
        self.agent = Unit(root, "camwarden-agent.service")

    def configure(self) -> None:
        with (self.root / "etc/camwarden/server.toml").open("a") as conf:
            conf.write(
                f'\n[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\n'
                f'[http]\nbind = "127.0.0.1"\nport = {self.http_port}\n'
            )
        with (self.root / "etc/camwarden/agent.toml").open("a") as conf:
            conf.write(
                'agent_id = "site-agent"\nsite = "s1"\n'
                f'collector_url = "http://127.0.0.1:{self.http_port}"\n'
                f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\nreconnect_max_s = 2\n'
                "[intervals]\nreport_s = 2\nheartbeat_s = 2\n"
            )

    def server_cli(self, *args: str) -> str:
        command = ["camwarden-server", "--config", "/etc/camwarden/server.toml", *args]
        return in_root(self.root, *command, user=self.collector.user).stdout

    def agent_cli(self, *args: str) -> str:
        return in_root(self.root, "camwarden-agent", *args, user=self.agent.user).stdout

    def start_collector(self) -> None:
        self.collector.start()
        wait_http(self.collector, self.http_port)

    def enroll(self) -> None:
        token = self.server_cli("tokens", "create", "--site", "s1", "--approved").split()[-1]
        self.agent_cli("keygen", "--key", "/var/lib/camwarden/agent.key")
        url = f"http://127.0.0.1:{self.http_port}"
        self.agent_cli("enroll", "--server", url, "--token", token, "--config",
                       "/etc/camwarden/agent.toml")  # fmt: skip

    def wait_report(self, more_than: int = 0) -> int:
        return wait_report(self.root, "site-agent", more_than, [self.collector, self.agent])

    def stop(self) -> None:
        self.agent.stop()
        self.collector.stop()
