"""The replay store: every accepted command's nonce and id, kept until the command expires.

``<state_dir>/commands/nonces.json``, rewritten atomically (``agent.state.atomic_write``) before
anything of the command runs, so a command seen once is refused forever after, across restarts
(a command cannot outlive its ``expires_at``, so its nonce need not either). Bounded: when full
of unexpired entries the store refuses new commands rather than forget one.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import msgspec

from agent.commands.errors import CommandRefused
from agent.errors import StorageError
from agent.state import atomic_write


class _Seen(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    command_id: str
    expires_at: datetime


class NonceStore:
    def __init__(self, path: Path, max_entries: int = 4096) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()

    def _load(self) -> dict[str, _Seen]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return msgspec.json.decode(data, type=dict[str, _Seen])
        except msgspec.DecodeError as exc:
            raise StorageError(f"{self.path} is corrupt: {exc}") from exc

    def claim(self, nonce: str, command_id: str, expires_at: datetime, now: datetime) -> None:
        """Record the command, or raise ``CommandRefused("replayed")`` if seen before."""
        with self._lock:
            seen = {n: s for n, s in self._load().items() if s.expires_at > now}
            if nonce in seen or any(s.command_id == command_id for s in seen.values()):
                raise CommandRefused(
                    "replayed", f"command {command_id} (nonce) was seen before", answer=False
                )
            if len(seen) >= self.max_entries:
                raise CommandRefused("busy", "the replay store is full of unexpired commands")
            seen[nonce] = _Seen(command_id, expires_at)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self.path, msgspec.json.encode(seen))
