"""The disk outbox: every signed message is stored here before it is published.

Layout: one file per message in ``<state_dir>/outbox/``, named ``<seq, 16 digits>-<kind>.jws``
so that a sorted listing is seq order and the kind is known without reading the file. Each file
holds exactly the JWS bytes that are published. Files are written atomically (temporary file,
fsync, rename, fsync of the directory); leftover temporary files from a crash are removed when the
outbox is opened. An entry is removed only after the collector acknowledged it end to end (a
signed ``Ack``; without a pinned collector key, the broker's PUBACK: see
``agent.messaging.mqtt``) or after ``report --once`` wrote it to a file. Removal does not fsync
the directory: a removal lost in a power cut only causes a duplicate delivery, which the
collector discards by (agent_id, seq). Entries sent but not yet acknowledged count against the
caps like any other.

Cap policy (``[outbox] max_bytes`` and ``max_messages``):

* When a new message does not fit, the oldest **heartbeats** are deleted first, as many as
  needed. The number deleted is counted and reported in the next status report's
  ``outbox_dropped``. Heartbeats are not links of the report chain, so the chain stays intact.
* Status reports, hellos and command results are never deleted to make room.
* If the cap is reached by those non-droppable messages, ``put`` raises ``OutboxFull`` and
  writes nothing: the agent issues no new report until acknowledgements (or ``report --once``)
  free space, logs one ERROR per such episode, and keeps running. A heartbeat that cannot be
  stored is dropped and counted like the others.
* A full disk (ENOSPC) raises ``StorageError`` with a clear message and writes nothing; the next
  attempt succeeds once space is back.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from agent.errors import OutboxFull, StorageError
from agent.state import atomic_write
from protocol.topics import CHANNEL_OF, Channel
from service.files import TEMP_PREFIX

Kind = Literal["hello", "report", "heartbeat", "cmd-result", "survey-result"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
DROPPABLE: Final[frozenset[str]] = frozenset({"heartbeat"})
_NAME = re.compile(r"^(\d{16})-([a-z-]+)\.jws$")


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    kind: Kind
    size: int
    path: Path

    @property
    def channel(self) -> Channel:
        return CHANNEL_OF[self.kind]


def entry_name(seq: int, kind: Kind) -> str:
    return f"{seq:016d}-{kind}.jws"


class Outbox:
    """Thread-safe: the issuer writes from a worker thread, the publisher removes acknowledged
    entries."""

    def __init__(self, directory: Path, max_bytes: int, max_messages: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._entries: dict[int, Entry] = {}
        self._seqs: list[int] = []
        self._bytes = 0
        self._dropped = 0
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise StorageError(f"cannot open the outbox {directory}: {exc.strerror}") from exc
        for name in names:
            path = directory / name
            match = _NAME.match(name)
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # an interrupted write: never renamed, so never issued
            elif match and match.group(2) in KINDS:
                seq = int(match.group(1))
                kind: Kind = match.group(2)  # type: ignore[assignment]  # checked against KINDS
                self._add(Entry(seq, kind, path.stat().st_size, path))

    def _add(self, entry: Entry) -> None:
        self._entries[entry.seq] = entry
        bisect.insort(self._seqs, entry.seq)
        self._bytes += entry.size

    def _forget(self, seq: int) -> Entry | None:
        entry = self._entries.pop(seq, None)
        if entry is not None:
            del self._seqs[bisect.bisect_left(self._seqs, seq)]
            self._bytes -= entry.size
        return entry

    def __len__(self) -> int:
        return len(self._seqs)

    def __contains__(self, seq: int) -> bool:
        with self._lock:
            return seq in self._entries

    def get(self, seq: int) -> Entry | None:
        with self._lock:
            return self._entries.get(seq)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def max_seq(self) -> int:
        with self._lock:
            return self._seqs[-1] if self._seqs else 0

    def newest(self, kind: Kind) -> Entry | None:
        with self._lock:
            for seq in reversed(self._seqs):
                if self._entries[seq].kind == kind:
                    return self._entries[seq]
        return None

    def entries(self) -> list[Entry]:
        with self._lock:
            return [self._entries[seq] for seq in self._seqs]

    def after(self, seq: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries with a seq above ``seq``, in seq order."""
        with self._lock:
            start = bisect.bisect_right(self._seqs, seq)
            return [self._entries[s] for s in self._seqs[start : start + limit]]

    def _victims(self, size: int) -> list[Entry] | None:
        """The oldest heartbeats to delete so ``size`` more bytes fit; None if they cannot."""
        count = len(self._seqs) + 1 - self.max_messages
        excess = self._bytes + size - self.max_bytes
        victims: list[Entry] = []
        for seq in self._seqs:
            if count <= 0 and excess <= 0:
                break
            entry = self._entries[seq]
            if entry.kind in DROPPABLE:
                victims.append(entry)
                count -= 1
                excess -= entry.size
        return victims if count <= 0 and excess <= 0 else None

    def put(self, seq: int, kind: Kind, data: bytes) -> None:
        """Store one signed message, dropping the oldest heartbeats if needed to make room.

        Raises OutboxFull (nothing written, nothing dropped) when the message does not fit even
        after dropping every heartbeat, and StorageError when the disk refuses the write.
        Single writer (the issuer serializes calls); the slow fsync runs outside the lock so the
        publisher is never held up by it.
        """
        with self._lock:
            if self._seqs and seq <= self._seqs[-1]:
                raise ValueError(f"seq {seq} is not above the newest outbox entry")
            victims = self._victims(len(data))
            if victims is None:
                raise OutboxFull(
                    f"outbox full ({len(self._seqs)} messages, {self._bytes} bytes; caps "
                    f"{self.max_messages} messages, {self.max_bytes} bytes) and nothing droppable"
                )
            for victim in victims:
                self._forget(victim.seq)
            self._dropped += len(victims)
        for victim in victims:
            with contextlib.suppress(FileNotFoundError):
                victim.path.unlink()
        path = self.directory / entry_name(seq, kind)
        atomic_write(path, data)
        with self._lock:
            self._add(Entry(seq, kind, len(data), path))

    def take_dropped(self) -> int:
        """Heartbeats dropped to make room since the last call."""
        with self._lock:
            dropped, self._dropped = self._dropped, 0
            return dropped

    def read(self, entry: Entry) -> bytes | None:
        """The stored JWS, or None if the entry was removed meanwhile."""
        try:
            return entry.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {entry.path}: {exc.strerror}") from exc

    def remove(self, seq: int) -> bool:
        """Delete an entry that left the box; False if it was already gone."""
        with self._lock:
            entry = self._forget(seq)
        if entry is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
        return True
