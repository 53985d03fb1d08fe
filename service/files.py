"""Durable file writes for both sides' own state (keys, certificates, outbox, metadata).

Two ways to write, and only these two: ``atomic_write`` replaces a file so that a reader sees
the old one or the new one, never a part, and the new one survives a crash once it returns;
``write_private`` creates a key file that did not exist (mode 0600 from its first byte, never
an overwrite). Both raise ``OSError``; each side translates it at its own edge.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["TEMP_PREFIX", "atomic_write", "fsync_dir", "write_private"]

TEMP_PREFIX = ".tmp-"  # the temporary files ``atomic_write`` leaves after a crash start so


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically and durably. ``mode`` (and ``owner``, uid and
    gid, when given) is set before any byte is written; missing parent directories are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=f".{path.name}")
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_private(path: Path, data: bytes, dir_mode: int = 0o777) -> None:
    """Create ``path`` holding ``data`` (a private key), mode 0600; ``FileExistsError`` if it
    exists: a key is never overwritten. Missing parent directories are made with ``dir_mode``."""
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
