"""Build the camwarden-agent and camwarden-server .deb packages, one per Debian release and
architecture.

Each package carries its Python dependencies as PyPI wheels for that architecture and that
release's Python (3.11 in bookworm, 3.13 in trixie) in a private tree
(``/opt/camwarden/<part>/lib``), run by Debian's ``/usr/bin/python3``; its version ends in the
release's suffix (``+deb12``, ``+deb13``); see docs/adr/0004-debian-packaging.md for why. No
debhelper: the tree is staged here and packed with ``dpkg-deb --root-owner-group``.

Usage: python3 packaging/deb/build.py [--release trixie ...] [--arch amd64 ...]
       [--part agent|server] [--out DIR]
The build machine needs each target release's CPython (``python3.11``, ``python3.13``) on PATH:
it resolves the wheels and byte-compiles for exactly that version. armhf cross-compiles the C
extensions PyPI has no armv7l wheel of and needs `scripts/install-system-deps.sh deb` (cross
compiler, debootstrap, qemu).
Exit status: 0 if every requested package was built, 1 if any could not be (reason printed).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "packaging"
MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l"}
MAINTAINER = "camwarden developers <dev@camwarden.invalid>"
# Architectures where PyPI lacks CPython 3.11 wheels of some C extensions: those are cross-compiled
# from their sdists with Debian's cross compiler against a debootstrapped sysroot (ADR 0004).
CROSS = {"armhf": "arm-linux-gnueabihf"}
# Debian's multiarch directory per architecture: where mosquitto's dynamic-security plugin lies
MULTIARCH = {
    "amd64": "x86_64-linux-gnu",
    "arm64": "aarch64-linux-gnu",
    "armhf": "arm-linux-gnueabihf",
}
# the plugin path written in packaging/mosquitto/camwarden.conf (amd64's), replaced per package
PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/"
# the sdists' build backends and what they import at build time (cffi: argon2-cffi-bindings'
# FFI builder; pybind11: Pillow's parallel compile; cython: SQLAlchemy's C extension)
CROSS_TOOLS = ("setuptools>=80", "setuptools-scm>=8", "wheel", "cffi>=2", "pybind11", "cython>=3.1")
CROSS_ENV = {
    "ARGON2_CFFI_USE_SSE2": "0",  # its build would ask the build machine for SSE2
    "REQUIRE_SQLALCHEMY_CEXT": "1",  # fail rather than fall back to a pure-Python wheel
}
# Pillow: take zlib and libjpeg from the sysroot's pkg-config files, never the build machine's
CROSS_CONFIG = ("platform-guessing=disable",)
# Architectures where psycopg-binary has no wheel: the collector uses psycopg's pure-Python
# binding, which loads Debian's libpq5 with ctypes
SYSTEM_LIBPQ = frozenset({"armhf"})
MIRROR = "http://deb.debian.org/debian"
# what wheels carry for building against them or for type checkers, never read at run time
BUILD_ONLY = ("*.c", "*.h", "*.pyx", "*.pxd", "*.pyi")
# binutils that strip each architecture's shared objects, as dh_strip does (wheels' extensions
# often keep their symbol tables: cryptography's Rust library sheds 2.8 MiB on amd64)
STRIP = {
    "amd64": "x86_64-linux-gnu-strip",
    "arm64": "aarch64-linux-gnu-strip",
    "armhf": "arm-linux-gnueabihf-strip",
}


@dataclass(frozen=True, slots=True)
class Release:
    """A Debian release the packages are built for: its python3 decides the wheels' ABI."""

    codename: str
    suffix: str  # of the Debian revision: 0.2.0-1+deb13 sorts after 0.2.0-1+deb12
    python: str  # the release's python3 minor version: wheels and .pyc files are for exactly it
    glibc: tuple[int, int]  # the release's glibc: the newest manylinux tag the target can load

    @property
    def sysroot(self) -> tuple[str, ...]:
        """The cross builds' sysroot: headers and libraries they link against (Python, libffi
        for cffi, zlib and libjpeg for Pillow) and libpq5, which the collector's check loads."""
        return (
            *(f"libpython{self.python}-dev", "libffi-dev", f"python{self.python}-minimal"),
            *("zlib1g-dev", "libjpeg62-turbo-dev", "libpq5"),
        )


RELEASES = {
    "bookworm": Release("bookworm", "+deb12", "3.11", (2, 36)),
    "trixie": Release("trixie", "+deb13", "3.13", (2, 41)),  # also Raspberry Pi OS since 2025
}


@dataclass(frozen=True, slots=True)
class Part:
    name: str  # agent | server
    package: str
    user: str
    statedir: str
    gecos: str
    drop: tuple[str, ...]  # our top-level packages that this part does not ship
    cross_built: tuple[str, ...]  # requirements on sdists compiled for the CROSS architectures
    imports: str  # Python run under qemu to check the cross-built tree (ADR 0004)
    cross_depends: str  # Debian libraries those cross-built extensions link against
    section: str
    summary: str
    description: str
    recommends: str
    suggests: str


PARTS = {
    "agent": Part(
        "agent",
        "camwarden-agent",
        "camwarden",
        "/var/lib/camwarden",
        "camwarden agent",
        ("server", "lab"),
        ("msgspec", "psutil", "cffi", "ciso8601"),
        "import psutil, ciso8601, lxml.etree; psutil.cpu_count()",
        "libffi8",
        "net",
        "security agent for IP cameras and NVRs",
        "Discovers the IP cameras on the local network, audits them (default credentials,\n"
        "firmware, exposed services) and publishes signed status to a camwarden collector\n"
        "over MQTT with mutual TLS. Runs as a hardened systemd service.",
        "systemd",
        "",
    ),
    "server": Part(
        "server",
        "camwarden-server",
        "camwarden-server",
        "/var/lib/camwarden-server",
        "camwarden collector",
        ("agent", "lab"),
        # argon2-cffi-bindings 26 builds with scikit-build-core and CMake; 25.1 with setuptools
        ("msgspec", "cffi", "argon2-cffi-bindings<26", "pillow", "sqlalchemy"),
        "import argon2, psycopg, pydantic_core, PIL.Image, fpdf, sqlalchemy.util; "
        "assert sqlalchemy.util.has_compiled_ext(); "
        "assert psycopg.pq.__impl__ == 'python', psycopg.pq.__impl__; "
        "assert psycopg.pq.version() >= 150000, psycopg.pq.version(); "
        "argon2.PasswordHasher().hash('x'); PIL.Image.new('RGB', (2, 2)).tobytes()",
        "libffi8, libjpeg62-turbo",
        "net",
        "fleet collector for camwarden agents",
        "Verifies and stores the signed reports of camwarden agents, sends them commands and\n"
        "firmware rollouts, and serves the dashboard. Ships an example locked-down Mosquitto\n"
        "configuration (mutual TLS, per-agent ACL).",
        "systemd",
        "mosquitto, postgresql",
    ),
}


class Blocked(Exception):
    """This package cannot be built for this architecture; the message says why."""


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]  # noqa: S603


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # type: ignore[no-any-return]


def platforms(arch: str, release: Release) -> list[str]:
    """manylinux tags the target's glibc accepts, newest first (pip does not expand them)."""
    m = MACHINE[arch]
    tags = [f"manylinux_2_{minor}_{m}" for minor in range(release.glibc[1], 16, -1)]
    return [*tags, f"manylinux2014_{m}"]


@functools.cache
def interpreter(version: str) -> str:
    """A CPython ``version`` (e.g. "3.13") on the build machine: this one, ``python3.13`` on
    PATH, or pyenv's; it resolves the target's wheels (markers for that version) and
    byte-compiles the tree for it."""
    candidates = [sys.executable, shutil.which(f"python{version}")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run(  # noqa: S603
            [pyenv, "prefix", version], capture_output=True, text=True, check=False
        )
        candidates.append(f"{prefix.stdout.strip()}/bin/python{version}")
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for python in filter(None, candidates):
        found = subprocess.run(  # noqa: S603
            [python, "-c", probe], capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and found.stdout.strip() == version:
            return python
    raise Blocked(f"the build needs a CPython {version} (python{version} on PATH or pyenv's)")


def our_wheel(work: Path) -> Path:
    out = work / "wheel"
    if out.exists():
        shutil.rmtree(out)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)])
    (wheel,) = out.glob("camwarden-*.whl")
    return wheel


def sysroot(arch: str, release: Release, work: Path) -> Path:
    """A tree of the release for ``arch`` with :attr:`Release.sysroot` unpacked, never run
    (``debootstrap --foreign`` plus the packages it only downloads); made again when that list
    changes."""
    root = work / f"sysroot-{release.codename}-{arch}"
    include = ",".join(release.sysroot)
    stamp = root / "debootstrap-include"
    if stamp.exists() and stamp.read_text() == include:
        return root
    if shutil.which("debootstrap") is None or shutil.which(f"{CROSS[arch]}-gcc") is None:
        raise Blocked(f"{arch} needs debootstrap and {CROSS[arch]}-gcc: install-system-deps.sh deb")
    shutil.rmtree(root, ignore_errors=True)
    run(
        [
            *("debootstrap", f"--arch={arch}", "--foreign", "--variant=minbase"),
            *(f"--include={include}", release.codename, str(root), MIRROR),
        ],
        stdout=subprocess.DEVNULL,
    )
    for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    for link in root.joinpath("usr/lib").rglob("*.so"):  # e.g. libz.so -> /lib/...
        target = link.readlink() if link.is_symlink() else None
        if target is not None and target.is_absolute():
            link.unlink()
            link.symlink_to(os.path.relpath(root / target.relative_to("/"), link.parent))
    stamp.write_text(include)
    return root


def wheel_name(requirement: str) -> str:
    """The distribution name as a wheel's file name spells it (PEP 427)."""
    return re.split(r"[<>=!~;\[ ]", requirement)[0].replace("-", "_").lower()


def cross_wheels(arch: str, release: Release, work: Path, names: tuple[str, ...]) -> Path:
    """Wheels of ``names`` for ``arch``, cross-compiled from PyPI's sdists: the build
    runs on this machine's CPython of the release's version with the target's sysconfig data
    (extension suffix, flags), the target's headers and Debian's cross compiler, as Debian's own
    cross builds do."""
    py = release.python
    root = sysroot(arch, release, work)
    house = work / f"wheels-{release.codename}-{arch}"
    missing = [n for n in names if not any(house.glob(f"{wheel_name(n)}-*.whl"))]
    if not missing:
        return house
    tools = work / f"cross-venv-{py}"
    if not (tools / "bin/python").exists():
        run([interpreter(py), "-m", "venv", str(tools)])
    run([str(tools / "bin/python"), "-m", "pip", "install", "-q", *CROSS_TOOLS])
    triplet = CROSS[arch]
    data = f"_sysconfigdata__linux_{triplet}"
    config = work / f"sysconfig-{release.codename}-{arch}"
    config.mkdir(exist_ok=True)
    shutil.copy(root / f"usr/lib/python{py}/{data}.py", config)
    cc = f"{triplet}-gcc --sysroot={root}"
    include = root / "usr/include"
    env = {
        **os.environ,
        **CROSS_ENV,
        "_PYTHON_HOST_PLATFORM": f"linux-{MACHINE[arch]}",
        "_PYTHON_SYSCONFIGDATA_NAME": data,
        "PYTHONPATH": str(config),
        "CC": cc,
        "LDSHARED": f"{cc} -shared",
        "CFLAGS": f"-I{include}/python{py} -I{include}/{triplet}/python{py}",
        "PKG_CONFIG_LIBDIR": str(root / "usr/lib" / triplet / "pkgconfig"),
        "PKG_CONFIG_SYSROOT_DIR": str(root),
    }
    args = [str(tools / "bin/python"), "-m", "pip", "wheel", "-q", "--no-deps"]
    args += ["--no-build-isolation", "--no-binary", ":all:", "-w", str(house), *missing]
    args += [f"--config-settings={setting}" for setting in CROSS_CONFIG]
    run(args, env=env, stdout=subprocess.DEVNULL)
    return house


def check_imports(part: Part, arch: str, release: Release, work: Path, lib: Path) -> None:
    """Import the compiled dependencies with the target's python3 under qemu-user."""
    qemu = shutil.which("qemu-arm-static")
    if qemu is None:
        raise Blocked("qemu-arm-static is missing, so the armhf build cannot be checked")
    root = sysroot(arch, release, work)
    code = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); "
        "import msgspec, _cffi_backend; "
        "from cryptography.hazmat.primitives.asymmetric import ed25519; "
        "ed25519.Ed25519PrivateKey.generate().sign(b'x'); "
        f"msgspec.json.decode(b'[1]'); {part.imports}"
    )
    python = root / "usr/bin" / f"python{release.python}"
    run([qemu, "-L", str(root), str(python), "-I", "-c", code])


def requirements(part: Part, arch: str) -> list[str]:
    """The part's extra as requirements: pip decides markers for the build machine, not the
    target, so the architecture's choice of psycopg is made here."""
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    reqs = [str(req) for req in extras[part.name]]
    if arch in SYSTEM_LIBPQ:
        reqs = [re.sub(r"^psycopg\[binary\]", "psycopg", req) for req in reqs]
    return reqs


def install_lib(
    part: Part, arch: str, release: Release, wheel: Path, *, lib: Path, work: Path
) -> None:
    py = release.python
    # the target's CPython runs pip, so that markers (python_version) are decided for it
    args = [interpreter(py), "-m", "pip", "install", "-q", "--no-compile", "--target", str(lib)]
    args += ["--disable-pip-version-check", "--only-binary=:all:"]
    args += ["--python-version", py, "--implementation", "cp"]
    for tag in platforms(arch, release):
        args += ["--platform", tag]
    if arch in CROSS:
        args += ["--find-links", str(cross_wheels(arch, release, work, part.cross_built))]
        args += ["--platform", f"linux_{MACHINE[arch]}"]
    proc = subprocess.run(  # noqa: S603
        [*args, str(wheel), *requirements(part, arch)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        missing = sorted(set(re.findall(r"No matching distribution found for (\S+)", proc.stderr)))
        raise Blocked(
            f"no {MACHINE[arch]} wheel for CPython {py} on PyPI: {', '.join(missing) or '?'}\n"
            + proc.stderr.strip().splitlines()[-1]
        )
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts with the build's shebang
    for name in part.drop:
        shutil.rmtree(lib / name, ignore_errors=True)
    for cache in lib.rglob("__pycache__"):
        shutil.rmtree(cache)
    for pattern in BUILD_ONLY:
        for path in lib.rglob(pattern):
            path.unlink()
    strip(arch, lib)
    if arch in CROSS:
        check_imports(part, arch, release, work, lib)


def strip(arch: str, lib: Path) -> None:
    """Strip the symbols no loader needs from every shared object (``--strip-unneeded``)."""
    tool = shutil.which(STRIP[arch])
    if tool is None:
        raise Blocked(f"{STRIP[arch]} is missing: scripts/install-system-deps.sh deb")
    objects = sorted(str(path) for path in lib.rglob("*.so*") if path.is_file())
    if objects:
        run([tool, "--strip-unneeded", "--remove-section=.comment", *objects])


def glibc_needed(lib: Path, release: Release) -> tuple[int, int]:
    newest = (2, 17)
    for wheel_file in lib.glob("*.dist-info/WHEEL"):
        text = wheel_file.read_text()
        for major, minor in re.findall(r"manylinux_(\d+)_(\d+)_", text):
            newest = max(newest, (int(major), int(minor)))
        if re.search(r"^Tag: .*-linux_", text, re.MULTILINE):  # built here, against the release
            newest = max(newest, release.glibc)
    return newest


def compile_pyc(stage: Path, lib: Path, release: Release) -> None:
    """Byte-compile for the target: .pyc is architecture-independent for one CPython minor."""
    run(
        [
            interpreter(release.python),
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(stage),
            "-p",
            "/",
            str(lib),
        ],
        stdout=subprocess.DEVNULL,
    )


def fill(text: str, subst: dict[str, str]) -> str:
    """``text`` with every ``@KEY@`` of ``subst`` replaced."""
    for key, value in subst.items():
        text = text.replace(f"@{key}@", value)
    return text


def put(
    src: Path | str, dest: Path, mode: int = 0o644, subst: dict[str, str] | None = None
) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = fill(src if isinstance(src, str) else src.read_text(encoding="utf-8"), subst or {})
    if "@" in text and re.search(r"@[A-Z]+@", text):
        raise ValueError(f"unfilled placeholder in {dest}: {re.findall(r'@[A-Z]+@', text)}")
    dest.write_text(text, encoding="utf-8")
    dest.chmod(mode)


def credential_snippet(part: Part) -> str:
    if part.name != "agent":
        return ""
    return """\t# key of the camera-credential vault: 32 random bytes, mode 0640 root:@USER@, so
\t# that root's `camwarden-agent vault set` and the unit (LoadCredential=vault.key:...)
\t# use the same key; the agent reads it as $CREDENTIALS_DIRECTORY/vault.key
\tkey=/etc/camwarden/vault.key
\told=/etc/camwarden/credstore/vault.key.cred
\tif [ ! -e "$key" ]; then
\t\t# an upgrade keeps the key sealed by earlier packages (the vault stays readable)
\t\tif ! { [ -e "$old" ] && command -v systemd-creds >/dev/null 2>&1 &&
\t\t\t(umask 077; systemd-creds decrypt --name=vault.key "$old" "$key.new"); }; then
\t\t\t(umask 077; head -c 32 /dev/urandom > "$key.new")
\t\tfi
\t\tchown root:@USER@ "$key.new"
\t\tchmod 0640 "$key.new"
\t\tmv "$key.new" "$key"
\tfi"""


def broker_conf(arch: str) -> str:
    """The broker config example of ``arch``: the plugin path in that architecture's lib dir."""
    conf = (HERE / "mosquitto" / "camwarden.conf").read_text(encoding="utf-8")
    if PLUGIN_DIR not in conf:
        raise ValueError(f"camwarden.conf names no plugin under {PLUGIN_DIR}")
    return conf.replace(PLUGIN_DIR, f"/usr/lib/{MULTIARCH[arch]}/")


def stage_part(
    part: Part, arch: str, release: Release, version: str, wheel: Path, *, stage: Path, work: Path
) -> str:
    """Fill ``stage`` with the package tree; return the libc6 dependency."""
    opt = f"/opt/camwarden/{part.name}"
    lib = stage / opt.lstrip("/") / "lib"
    install_lib(part, arch, release, wheel, lib=lib, work=work)
    compile_pyc(stage, lib, release)
    scripts = project()["scripts"]
    assert isinstance(scripts, dict)
    module, function = str(scripts[part.package]).split(":")
    subst = {
        "PACKAGE": part.package,
        "COMMAND": part.package,
        "USER": part.user,
        "GECOS": part.gecos,
        "STATEDIR": part.statedir,
        "UNIT": f"{part.package}.service",
        "CONFIG": f"/etc/camwarden/{part.name}.toml",
        "LIBDIR": f"{opt}/lib",
        "MODULE": module,
        "FUNCTION": function,
        "PURGE": "/etc/camwarden/vault.key /etc/camwarden/credstore"
        if part.name == "agent"
        else "",
    }
    subst["CREDENTIAL"] = fill(credential_snippet(part), subst)  # it names @USER@ and @PACKAGE@
    put(HERE / "deb" / "launcher.in", stage / "usr/bin" / part.package, 0o755, subst)
    put(
        HERE / "systemd" / f"{part.package}.service",
        stage / f"lib/systemd/system/{part.package}.service",
    )
    put(
        HERE / "sysusers.d" / f"{part.package}.conf",
        stage / f"usr/lib/sysusers.d/{part.package}.conf",
    )
    put(
        HERE / "tmpfiles.d" / f"{part.package}.conf",
        stage / f"usr/lib/tmpfiles.d/{part.package}.conf",
    )
    put(HERE / "config" / f"{part.name}.toml", stage / f"etc/camwarden/{part.name}.toml", 0o640)
    doc = stage / "usr/share/doc" / part.package
    examples = doc / "examples"
    full_example = ROOT / "configs" / f"{part.name}.toml"
    if full_example.exists():
        put(full_example, examples / f"{part.name}.toml")
    if part.name == "agent":
        for example in sorted((HERE / "systemd" / "camwarden-agent.service.d").glob("*.example")):
            put(example, examples / "camwarden-agent.service.d" / example.name)
    else:
        put(broker_conf(arch), examples / "mosquitto" / "camwarden.conf")
        for name in ("dynamic-security.json", "README.md"):
            put(HERE / "mosquitto" / name, examples / "mosquitto" / name)
        for unit in ("camwarden-broker-crl.path", "camwarden-broker-crl.service"):
            put(HERE / "systemd" / unit, stage / "lib/systemd/system" / unit)  # not enabled
    put(HERE / "deb" / "README.Debian", doc / "README.Debian", subst=subst)
    put(HERE / "deb" / "copyright", doc / "copyright")
    changelog = (
        f"{part.package} ({version}) unstable; urgency=medium\n\n"
        "  * Built from the camwarden source tree; see CHANGELOG.md upstream.\n\n"
        f" -- {MAINTAINER}  Thu, 01 Jan 1970 00:00:00 +0000\n"
    )
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(changelog.encode(), mtime=0))
    debian = stage / "DEBIAN"
    for script in ("postinst", "prerm", "postrm"):
        put(HERE / "deb" / "maintscripts" / script, debian / script, 0o755, subst)
    put(f"/etc/camwarden/{part.name}.toml\n", debian / "conffiles")
    major, minor = glibc_needed(lib, release)
    return f"libc6 (>= {major}.{minor})"


def installed_size_kib(stage: Path) -> int:
    total = 0
    for path in stage.rglob("*"):
        if "DEBIAN" in path.relative_to(stage).parts:
            continue
        if path.is_file() and not path.is_symlink():
            total += (path.stat().st_size + 1023) // 1024
        else:
            total += 1
    return total


def libpq(part: Part, arch: str) -> bool:
    """Whether the package loads Debian's libpq instead of carrying psycopg-binary's."""
    return any(req.startswith("psycopg") for req in requirements(part, arch)) and (
        arch in SYSTEM_LIBPQ
    )


def depends(part: Part, arch: str, release: Release, libc: str) -> list[str]:
    """What the package needs: the one python3 minor its wheels and .pyc files are for (any
    system with it, whatever its name), the libc its wheels were linked for, and for procps
    /bin/kill of ExecReload=, passwd for useradd when there is no systemd-sysusers."""
    major, minor = release.python.split(".")
    python = [f"python3 (>= {major}.{minor}~)", f"python3 (<< {major}.{int(minor) + 1})"]
    found = [*python, "python3-systemd", libc, "passwd", "procps"]
    if arch in CROSS:
        found += part.cross_depends.split(", ")
    if libpq(part, arch):
        found.append("libpq5")
    return found


def write_control(
    part: Part, arch: str, release: Release, *, version: str, libc: str, stage: Path
) -> int:
    md5 = []
    for path in sorted(stage.rglob("*")):
        rel = path.relative_to(stage)
        if path.is_file() and rel.parts[0] not in ("DEBIAN", "etc"):
            md5.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel}")  # noqa: S324  # dpkg's format
    (stage / "DEBIAN" / "md5sums").write_text("\n".join(md5) + "\n")
    size = installed_size_kib(stage)
    fields = {
        "Package": part.package,
        "Version": version,
        "Architecture": arch,
        "Maintainer": MAINTAINER,
        "Installed-Size": str(size),
        "Depends": ", ".join(depends(part, arch, release, libc)),
        "Recommends": part.recommends,
        "Suggests": part.suggests,
        "Section": part.section,
        "Priority": "optional",
        "Description": f"{part.summary}\n"
        + "\n".join(f" {line}" for line in part.description.splitlines()),
    }
    control = "".join(f"{k}: {v}\n" for k, v in fields.items() if v)
    (stage / "DEBIAN" / "control").write_text(control)
    return size


def build(
    part: Part,
    arch: str,
    release: Release,
    wheel: Path,
    *,
    work: Path,
    out: Path,
    compression: str = "xz",
) -> tuple[Path, int]:
    version = f"{project()['version']}-1{release.suffix}"
    stage = work / f"{part.package}_{release.codename}_{arch}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    stage.chmod(0o755)  # the root directory of the package tree
    libc = stage_part(part, arch, release, version, wheel, stage=stage, work=work)
    size = write_control(part, arch, release, version=version, libc=libc, stage=stage)
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{part.package}_{version}_{arch}.deb"
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(stage), str(deb)],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return deb, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append", choices=sorted(RELEASES))
    parser.add_argument("--arch", action="append", choices=sorted(MACHINE))
    parser.add_argument("--part", action="append", choices=sorted(PARTS))
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "deb")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "deb")
    parser.add_argument(
        "--uncompressed",
        action="store_true",
        help="dpkg-deb -Znone: for packages installed right away (tests); xz takes minutes",
    )
    args = parser.parse_args(argv)
    if shutil.which("dpkg-deb") is None:
        print("dpkg-deb is missing (Debian package dpkg)", file=sys.stderr)
        return 1
    os.umask(0o022)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    wheel = our_wheel(work)
    failed = 0
    head = f"{'package':<18} {'release':<9} {'arch':<6} {'.deb KiB':>9} {'installed KiB':>14}"
    print(f"{head} {'seconds':>8}")
    for codename in args.release or list(RELEASES):
        release = RELEASES[codename]
        for arch in args.arch or ["amd64", "arm64", "armhf"]:
            for name in args.part or ["agent", "server"]:
                part = PARTS[name]
                row = f"{part.package:<18} {codename:<9} {arch:<6}"
                t0 = time.monotonic()
                try:
                    deb, size = build(
                        part,
                        arch,
                        release,
                        wheel,
                        work=work,
                        out=args.out,
                        compression="none" if args.uncompressed else "xz",
                    )
                except Blocked as exc:
                    failed += 1
                    print(f"{row} BLOCKED: {exc}")
                    continue
                took = time.monotonic() - t0
                kib = deb.stat().st_size // 1024
                print(f"{row} {kib:>9} {size:>14} {took:>8.1f}  {deb}")
    print(f"total {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
