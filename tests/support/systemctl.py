#!/usr/bin/python3
"""``systemctl`` for a chroot without systemd as PID 1: what the install guide asks of it.

Copied into a test root as /usr/local/sbin/systemctl and /usr/bin/systemctl, run by the
root's own python3 (standard library only). ``start``, ``restart`` and ``enable --now`` run
the unit's ``ExecStartPre=`` and ``ExecStart=`` as its ``User=``/``Group=`` with its
``Environment=``, ``LoadCredential=`` files in $CREDENTIALS_DIRECTORY and, for
``Type=notify``, a notify socket on which it waits for READY=1 (``TimeoutStartSec=``, at most
180 s; longer where $TEST_UNITS_START_S says so: a loaded or emulating test machine). The
process runs detached; its pid goes to /run/test-units/<unit>.pid for ``stop`` and for the
test's clean-up, its output to /run/test-units/<unit>.log. Drop-ins in /etc/systemd/system
apply; cgroups and the sandboxing directives do not; commands not listed here fail loudly.
"""

from __future__ import annotations

import functools
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

UNITS = (Path("/etc/systemd/system"), Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
RUN = Path("/run/test-units")
START = {"start", "restart", "reload-or-restart", "try-reload-or-restart", "try-restart"}
QUIET = {"daemon-reload", "reset-failed", "unmask", "mask", "disable", "preset", "reload"}


def unit_file(name: str) -> Path:
    name = name if "." in name else f"{name}.service"
    for base in UNITS:
        if (base / name).is_file():
            return base / name
    sys.exit(f"systemctl (test): no unit {name}")


def fields(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", ";", "[")):
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def settings(name: str) -> dict[str, list[str]]:
    """The unit's settings with its drop-ins (``<unit>.d/*.conf`` in /etc/systemd/system) laid
    over them in name order; an empty value resets a list, as ``ExecStart=`` does."""
    path = unit_file(name)
    found = fields(path)
    for conf in sorted(Path("/etc/systemd/system", f"{path.name}.d").glob("*.conf")):
        for key, values in fields(conf).items():
            for value in values:
                found[key] = [*found.get(key, []), value] if value else []
    return found


def pid_of(name: str) -> int | None:
    try:
        pid = int((RUN / f"{name}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop(name: str) -> None:
    pid = pid_of(name)
    if pid is None:
        return
    os.killpg(pid, signal.SIGTERM)
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def command(line: str) -> list[str]:
    """An Exec line's argv without systemd's prefixes (-, +, !, @)."""
    return shlex.split(line.lstrip("-+!@:"))


def start(name: str) -> None:
    spec = settings(name)
    stop(name)
    RUN.mkdir(parents=True, exist_ok=True)
    RUN.chmod(0o755)  # whatever the caller's umask: the services reach their credentials
    user = spec.get("User", ["root"])[-1]
    account = pwd.getpwnam(user)
    gid = account.pw_gid
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for assignment in spec.get("Environment", []):
        for item in shlex.split(assignment):
            key, _, value = item.partition("=")
            env[key] = value
    credentials = spec.get("LoadCredential", [])
    if credentials:
        directory = RUN / f"{name}.credentials"
        directory.mkdir(mode=0o700, exist_ok=True)
        for entry in credentials:
            cred, _, source = entry.partition(":")
            (directory / cred).write_bytes(Path(source).read_bytes())
            os.chown(directory / cred, account.pw_uid, gid)
        os.chown(directory, account.pw_uid, gid)
        env["CREDENTIALS_DIRECTORY"] = str(directory)
    for line in spec.get("ExecStartPre", []):
        subprocess.run(command(line), check=not line.startswith("-"), env=env)
    notify = None
    if spec.get("Type", ["simple"])[-1] == "notify":
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        address = f"\0test-units-{name}-{os.getpid()}"
        notify.bind(address)
        env["NOTIFY_SOCKET"] = "@" + address[1:]
    (exec_start,) = spec["ExecStart"]
    with (RUN / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            command(exec_start),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            user=account.pw_uid,
            group=gid,
            extra_groups=[],
            start_new_session=True,
            cwd="/",
        )
    (RUN / f"{name}.pid").write_text(str(proc.pid))
    if notify is None:
        return
    timeout = min(180.0, float(spec.get("TimeoutStartSec", ["90s"])[-1].rstrip("s")))
    timeout = max(timeout, float(os.environ.get("TEST_UNITS_START_S", "0")))
    notify.settimeout(1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"systemctl (test): {name} exited with {proc.returncode} while starting")
        try:
            if b"READY=1" in notify.recv(4096).split(b"\n"):
                return
        except TimeoutError:
            continue
    sys.exit(f"systemctl (test): {name} sent no READY=1 within {timeout:.0f} s")


def enable(names: list[str], flags: set[str]) -> int:
    for name in names:
        unit_file(name)
        if "--now" in flags:
            start(name)
    return 0


def restart(verb: str, names: list[str]) -> int:
    for name in names:
        if not verb.startswith("try-") or pid_of(name):
            start(name)
    return 0


def is_active(names: list[str], flags: set[str]) -> int:
    active = all(pid_of(name) for name in names)
    if not {"--quiet", "-q"} & flags:
        print("active" if active else "inactive")
    return 0 if active else 3


def status(names: list[str]) -> int:
    for name in names:
        print(f"{name}: {'active (running)' if pid_of(name) else 'inactive (dead)'}")
    return 0 if all(pid_of(name) for name in names) else 3


def main(argv: list[str]) -> int:
    flags = {a for a in argv if a.startswith("-")}
    args = [a for a in argv if not a.startswith("-")]
    verb, names = (args[0], args[1:]) if args else ("", [])
    if verb in QUIET or not verb:
        return 0
    if verb == "stop":
        for name in names:
            stop(name)
        return 0
    if verb in START:
        return restart(verb, names)
    verbs: dict[str, Callable[[], int]] = {
        "enable": functools.partial(enable, names, flags),
        "is-active": functools.partial(is_active, names, flags),
        "status": functools.partial(status, names),
    }
    if verb in verbs:
        return verbs[verb]()
    print(f"systemctl (test): {' '.join(argv)} is not emulated", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
