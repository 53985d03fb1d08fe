"""Persistent agent state: the seq counter and the head of the report hash chain.

Every write is atomic: a temporary file in the same directory is written and fsynced, renamed
over the target, and the directory is fsynced so the rename itself survives a power cut.

Crash-safety ordering when a message is issued (see ``agent.messaging.issuer``): sign, write the
outbox entry (fsync), update this state (fsync), then publish. On start the agent recovers the state
as the maximum of this file and the newest outbox entry, so a seq is never reused even when the
process dies between the two writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from agent.errors import AgentBusy, StorageError
from protocol.messages import GENESIS

_FULL = (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically and durably (owned by ``owner``, uid and gid,
    when given); raise StorageError on failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f".{path.name}")
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.errno in _FULL:
            raise StorageError(f"cannot write {path}: no space left on the device") from exc
        raise StorageError(f"cannot write {path}: {exc.strerror}") from exc


class ChainState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    seq: int = 0  # the last seq issued (any kind); the next message gets seq + 1
    head_digest: str = GENESIS  # digest of the JWS of the last status report
    head_seq: int = 0  # seq of the last status report, 0 before the first
    outbox_dropped: int = 0  # heartbeats dropped since the last status report


class StateStore:
    """``<state_dir>/state.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "state.json"

    def load(self) -> ChainState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ChainState()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return msgspec.json.decode(data, type=ChainState)
        except msgspec.DecodeError as exc:
            raise StorageError(f"{self.path} is corrupt: {exc}") from exc

    def save(self, state: ChainState) -> None:
        atomic_write(self.path, msgspec.json.encode(state))


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold ``<state_dir>/agent.lock`` so two agent processes never share the state."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AgentBusy(f"another camwarden-agent is using {state_dir}") from exc
        yield
    finally:
        os.close(fd)
