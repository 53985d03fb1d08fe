"""Scheduled password rotation (``[rotation] interval_days``).

The agent rotates each camera's own credential when due, sealing the new password to the
organisation's pinned escrow key (``[rotation] escrow_kid`` and ``escrow_jwk_file``), through
the same executor and journal as a collector's command (a local command, no signature); the
result goes to the collector like any command's.

``<state_dir>/rotation.json`` (rewritten atomically) keeps when each camera was last rotated and
which local rotations are under way::

    due         no rotation yet, or the last one ``interval_days`` ago
    started     the command id is written to ``running`` before the camera is touched
    finished    succeeded: ``rotated[camera]`` = the time it was due; otherwise it is due again
                at the next check (``run_due``), the camera's password unchanged
    restart     a rotation cut short is finished by ``Executor.resume``, whose results are
                handed to ``settle``; until then its camera is skipped. A restart never rotates
                a camera again that was rotated within the interval.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from agent.commands.errors import StepFailed
from agent.commands.executor import Executor
from agent.errors import StorageError
from agent.state import atomic_write
from protocol.commands import PASSWORD_ROTATE
from protocol.messages import Command

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"


class _State(msgspec.Struct, forbid_unknown_fields=True):
    rotated: dict[str, datetime] = {}  # camera id -> when its last rotation was due
    running: dict[str, str] = {}  # command id -> camera id, for rotations under way


class RotationSchedule:
    """Rotates every camera whose last rotation is ``interval_days`` old (see module doc)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.path = executor.config.state_path / "rotation.json"
        self._lock = threading.Lock()

    @property
    def interval_s(self) -> float | None:
        days = self.executor.config.rotation.interval_days
        return None if days is None else days * 86400.0

    def _load(self) -> _State:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=_State)
        except FileNotFoundError:
            return _State()
        except (OSError, msgspec.DecodeError) as exc:  # never guess: rotating twice is worse
            raise StorageError(f"{self.path} is unreadable: {exc}") from exc

    def _save(self, state: _State) -> None:
        atomic_write(self.path, msgspec.json.encode(state))

    def _update(self, change: Callable[[_State], bool]) -> None:
        """Read, change and write (when ``change`` says it changed something) the state as one
        step: ``settle`` runs in a thread, and a rotation takes a while; a copy of the state
        kept across it would write back what changed meanwhile."""
        with self._lock:
            state = self._load()
            if change(state):
                self._save(state)

    def _started(self, command_id: str, camera_id: str) -> None:
        def change(state: _State) -> bool:
            state.running[command_id] = camera_id
            return True

        self._update(change)

    def _finished(self, done: list[tuple[str, str]], now: datetime) -> None:
        """``done``: (command id, status) of rotations no longer under way."""

        def change(state: _State) -> bool:
            changed = False
            for command_id, status in done:
                camera_id = state.running.pop(command_id, None)
                changed |= camera_id is not None
                if camera_id is not None and status == SUCCEEDED:
                    state.rotated[camera_id] = now
            return changed

        self._update(change)

    def escrow_jwk(self) -> str:
        rot = self.executor.config.rotation
        if rot.escrow_jwk_file is None or rot.escrow_kid is None:
            raise StepFailed("escrow_key_not_pinned", "no [rotation] escrow_jwk_file/escrow_kid")
        try:
            return Path(rot.escrow_jwk_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StepFailed("escrow_key_not_pinned", f"{rot.escrow_jwk_file}: {exc}") from exc

    def settle(self, finished: Iterable[tuple[str, str]], now: datetime) -> None:
        """Record the rotations among ``finished`` (command id, status) that
        ``Executor.resume`` completed after a restart."""
        self._finished(list(finished), now)

    async def run_due(self, now: datetime) -> list[str]:
        """Rotate the cameras that are due, one after another; their statuses.

        Raises ``StepFailed`` (``escrow_key_not_pinned``) before any camera is touched when
        the organisation's escrow key is not configured or cannot be read."""
        ex = self.executor
        rot = ex.config.rotation
        if rot.interval_days is None:
            return []
        interval = timedelta(days=rot.interval_days)
        state = self._load()
        gone = [c for c in state.running if ex.journal.load(c) is None]
        for command_id in gone:
            # its journal entry is gone without a result for us (dropped as unusable): due again
            state.running.pop(command_id)
        busy = set(state.running.values())
        due = []
        for camera in ex.config.cameras:
            when = state.rotated.get(camera.id)
            if camera.credentials_ref is None or camera.id in busy:
                continue
            if when is not None and now - when < interval:
                continue
            credential = ex.credentials.credential(camera.credentials_ref)
            if credential is not None:
                due.append((camera.id, credential.username))
        if not due:
            return []
        escrow_jwk = self.escrow_jwk()
        self._finished([(c, "dropped") for c in gone], now)
        out = []
        for camera_id, username in due:
            command = Command(
                command_id=f"rot-{camera_id[:40]}-{int(now.timestamp())}",
                agent_id=ex.config.agent_id,
                site=ex.config.site,
                action=PASSWORD_ROTATE,
                issued_at=now,
                expires_at=now + timedelta(hours=1),
                nonce=secrets.token_urlsafe(24),
                camera_id=camera_id,
                params={
                    "escrow_kid": rot.escrow_kid,
                    "escrow_jwk": escrow_jwk,
                    "username": username,
                    "min_length": rot.min_length,
                },
            )
            self._started(command.command_id, camera_id)
            log.info("camera %s: scheduled password rotation", camera_id)
            status = await ex.run_local(command)
            out.append(status)
            self._finished([(command.command_id, status)], now)
        return out
