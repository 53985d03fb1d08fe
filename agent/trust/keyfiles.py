"""Secret files at start: a private key must be readable by the service alone.

systemd's ``UMask=0077`` and ``StateDirectoryMode=0700`` make the right modes by default; this
check catches a key copied in by hand with ``cp`` or ``install -m 644``. Group- or
world-readable (or writable) keys and keys owned by another user are refused with an error that
says how to fix them. The key's contents are never read here, let alone printed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.errors import AgentError


class InsecureSecret(AgentError):
    """A secret file is open to other users."""


def check_private_file(path: Path, what: str, owner: int | None = None) -> None:
    """Raise InsecureSecret unless ``path`` is a regular file of ``owner`` (default: this
    user), mode 0600 or less."""
    uid = os.geteuid() if owner is None else owner
    try:
        st = path.stat()
    except OSError as exc:
        raise AgentError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InsecureSecret(f"the {what} {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InsecureSecret(
            f"the {what} {path} is open to other users (mode {mode:04o}); run: chmod 600 {path}"
        )
    if st.st_uid != uid:
        raise InsecureSecret(
            f"the {what} {path} belongs to uid {st.st_uid}, not to this service "
            f"(uid {uid}); run: chown {uid} {path}"
        )
