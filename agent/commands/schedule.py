"""Scheduled password rotation (``[rotation] interval_days``).

The agent rotates each camera's own credential when due, sealing the new password to the
organisation's pinned escrow key, through the same executor and journal as a collector's
command (a local command, no signature). ``<state_dir>/rotation.json`` (written atomically)
keeps when each camera was last rotated, so a restart does not rotate again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from agent.commands.errors import StepFailed
from agent.commands.executor import Executor
from agent.state import atomic_write
from protocol.commands import PASSWORD_ROTATE
from protocol.messages import Command


class _Last(msgspec.Struct, forbid_unknown_fields=True):
    rotated: dict[str, datetime] = {}


class RotationSchedule:
    """Rotates every camera whose last rotation is ``interval_days`` old (see module doc)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.path = executor.config.state_path / "rotation.json"

    def _load(self) -> _Last:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=_Last)
        except FileNotFoundError:
            return _Last()

    def escrow_jwk(self) -> str:
        rot = self.executor.config.rotation
        if rot.escrow_jwk_file is None or rot.escrow_kid is None:
            raise StepFailed("escrow_key_not_pinned", "no [rotation] escrow_jwk_file/escrow_kid")
        return Path(rot.escrow_jwk_file).read_text(encoding="utf-8").strip()

    async def run_due(self, now: datetime) -> list[str]:
        rot = self.executor.config.rotation
        if rot.interval_days is None:
            return []
        interval = timedelta(days=rot.interval_days)
        last = self._load()
        out = []
        for camera in self.executor.config.cameras:
            if camera.credentials_ref is None:
                continue
            when = last.rotated.get(camera.id)
            if when is not None and now - when < interval:
                continue
            credential = self.executor.credentials.credential(camera.credentials_ref)
            if credential is None:
                continue
            command = Command(
                command_id=f"rot-{camera.id[:40]}-{int(now.timestamp())}",
                agent_id=self.executor.config.agent_id,
                site=self.executor.config.site,
                action=PASSWORD_ROTATE,
                issued_at=now,
                expires_at=now + timedelta(hours=1),
                nonce=secrets.token_urlsafe(24),
                camera_id=camera.id,
                params={
                    "escrow_kid": rot.escrow_kid,
                    "escrow_jwk": self.escrow_jwk(),
                    "username": credential.username,
                    "min_length": rot.min_length,
                },
            )
            status = await self.executor.run_local(command)
            out.append(status)
            if status == "succeeded":
                last.rotated[camera.id] = now
                atomic_write(self.path, msgspec.json.encode(last))
        return out
