"""What ``camwarden-agent setup`` and ``camwarden-server setup`` share: questions asked on the
terminal (or answered by flags with ``--yes``), files written atomically and handed to the
service account, and the unit enabled where systemd runs (their config files are rendered by
``protocol.configfile.render``).

Errors::

    SetupError      a required value is missing in non-interactive mode, or a step failed;
                    the message says which flag or file to fix
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from service.files import atomic_write

__all__ = [
    "Asker",
    "SetupError",
    "enable_service",
    "hand_over",
    "read_secret_file",
    "write_file",
]

MAX_SECRET_BYTES = 4096  # a password or token file larger than this is refused
SYSTEMCTL_TIMEOUT_S = 120.0


class SetupError(Exception):
    """A setup step cannot go on; the message names the flag, file or command to fix."""


def write_file(path: Path, data: bytes, mode: int, group: str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably (``service.files.atomic_write``);
    as root, owned by root and ``group`` (the service's) when it exists."""
    owner = (0, group_id(group)) if group and os.geteuid() == 0 else None
    atomic_write(path, data, mode, owner)


def share_directory(path: Path, mode: int, group: str) -> None:
    """``path``, a directory, with ``mode``; as root, owned by root and ``group`` (a service's):
    what root's umask (077 in a hardened shell) made of it must not hide it from the service."""
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, 0, group_id(group))


def group_id(group: str) -> int:
    """The id of ``group``; root's (0) where it does not exist (a source install)."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return 0  # no such group (a source install): root keeps it


def hand_over(directory: Path, user: str) -> None:
    """As root, give ``directory`` and everything in it to the service account ``user`` (the
    one the package's sysusers.d file makes), so that the service can read what setup wrote as
    root. Nothing happens when not root or when the account does not exist."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    for root, dirs, files in os.walk(directory):
        for name in [root, *(os.path.join(root, d) for d in dirs)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def read_secret_file(path: Path, what: str) -> str:
    """The first line of a password or token file, which must not be readable by others."""
    try:
        info = path.stat()
        if info.st_mode & 0o004:
            raise SetupError(f"{path} is readable by everyone: chmod 0600 {path}")
        with path.open("rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SetupError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise SetupError(f"{what}: {path} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("utf-8").splitlines()[0].strip() if data.strip() else ""
    except UnicodeDecodeError as exc:
        raise SetupError(f"{what}: {path} is not UTF-8 text") from exc
    if not text:
        raise SetupError(f"{what}: {path} is empty")
    return text


@dataclass
class Asker:
    """Questions for the values not given as flags. Interactive: each is asked on the
    terminal (or read, one line each, from standard input when it is not a terminal), the
    current value as default. With ``yes``: a value without a default is an error naming its
    flag, and yes/no questions take their default."""

    yes: bool
    out: TextIO = field(default_factory=lambda: sys.stdout)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)

    def _line(self, prompt: str) -> str:
        self.out.write(prompt)
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            raise SetupError(f"no answer to {prompt.strip()!r} (end of input)")
        return line.rstrip("\r\n").strip()

    def value(
        self,
        question: str,
        flag: str,
        given: str | None,
        default: str | None = None,
        check: Callable[[str], str | None] | None = None,
    ) -> str:
        """``given`` if not None, else the answer (``default`` on an empty one). ``check``
        returns what is wrong with a value, or None; asked again when interactive."""
        if given is not None:
            problem = check(given) if check else None
            if problem:
                raise SetupError(f"{flag}: {problem}")
            return given
        if self.yes:
            if default is None:
                raise SetupError(f"{question}: give {flag} (--yes asks nothing)")
            problem = check(default) if check else None
            if problem:
                raise SetupError(f"{question}: the default {default!r} will not do ({problem}):"
                                 f" give {flag}")  # fmt: skip
            return default
        for _attempt in range(5):
            shown = f" [{default}]" if default else ""
            answer = self._line(f"{question}{shown}: ") or (default or "")
            problem = check(answer) if check else ("a value is needed" if not answer else None)
            if answer and not problem:
                return answer
            self.out.write(f"  {problem or 'a value is needed'}\n")
        raise SetupError(f"{question}: no valid answer after 5 tries")

    def confirm(self, question: str, default: bool = True) -> bool:
        if self.yes:
            self.out.write(f"{question} {'yes' if default else 'no'} (--yes)\n")
            return default
        answer = self._line(f"{question} [{'Y/n' if default else 'y/N'}]: ").lower()
        return default if not answer else answer in ("y", "yes")

    def secret(self, question: str, flag: str) -> str:
        """A password: from the terminal without echo (twice), else one line of stdin."""
        if self.yes:
            raise SetupError(f"{question}: give {flag} (--yes asks nothing)")
        if self.stdin.isatty():
            first = getpass.getpass(f"{question}: ")
            if getpass.getpass("again: ") != first:
                raise SetupError("the passwords differ")
            return first
        return self._line(f"{question}: ")


def enable_service(unit: str, enable: bool, out: TextIO, *, restart: bool = False) -> None:
    """``systemctl enable --now unit`` (``restart``: ``systemctl restart unit``) where systemd
    runs and ``enable``; else print what to run (a container, a chroot, or ``--no-enable``)."""
    command = ["systemctl", "restart", unit] if restart else ["systemctl", "enable", "--now", unit]
    systemctl = shutil.which("systemctl")
    if not enable or systemctl is None or not Path("/run/systemd/system").is_dir():
        out.write(f"then run: {' '.join(command)}\n")
        return
    try:
        subprocess.run(  # noqa: S603  # fixed argv, no shell
            [systemctl, *command[1:]], check=True, timeout=SYSTEMCTL_TIMEOUT_S, capture_output=True
        )
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip()[:300]
        raise SetupError(f"{' '.join(command)} failed: {reason}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"{' '.join(command)} took over {SYSTEMCTL_TIMEOUT_S:.0f} s") from exc
    out.write(f"service {unit} {'restarted' if restart else 'enabled and started'}\n")
