"""The command journal: one file per running command, rewritten atomically at every step.

``<state_dir>/commands/journal/<command_id>.json`` holds the command's JWS as received (it is
verified again when read back), the last step entered and what the action recorded to resume
(``data``: e.g. the version before the update). Written before the step's work starts, so after
a kill -9, a power loss or a lost broker the agent finds every unfinished command on start and
either resumes it or fails it cleanly (``agent.commands.executor``); never an unknown state.
The file is removed once the final result is in the outbox.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec

from agent.errors import StorageError
from agent.state import atomic_write
from service.files import TEMP_PREFIX


class Entry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    command_id: str
    token: str  # the JWS of the command
    local: bool = False  # a scheduled rotation: no collector signature, built by the agent
    step: str | None = None
    status: str = "accepted"
    reason: str | None = None
    data: dict[str, str] = {}


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, command_id: str) -> Path:
        return self.directory / f"{command_id}.json"

    def save(self, entry: Entry) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self._path(entry.command_id), msgspec.json.encode(entry))

    def load(self, command_id: str) -> Entry | None:
        try:
            return msgspec.json.decode(self._path(command_id).read_bytes(), type=Entry)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError) as exc:
            raise StorageError(f"journal entry {command_id} unreadable: {exc}") from exc

    def pending(self) -> list[Entry]:
        if not self.directory.exists():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith(TEMP_PREFIX):  # a save under way (or cut by a crash)
                continue
            try:
                out.append(msgspec.json.decode(path.read_bytes(), type=Entry))
            except FileNotFoundError:  # finished and removed since the listing
                continue
            except (OSError, msgspec.DecodeError) as exc:
                raise StorageError(f"journal entry {path.name} unreadable: {exc}") from exc
        return out

    def remove(self, command_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(command_id).unlink()
