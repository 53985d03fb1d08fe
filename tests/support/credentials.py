"""A file-backed credential store for tests (``agent.commands.context.CredentialStore``):
the vault (agent/trust/vault.py) is not on this branch yet. JSON, mode 0600, atomic rewrites."""

from __future__ import annotations

import json
from pathlib import Path

from agent.state import atomic_write
from agent.vendors.models import Credential


class FileCredentials:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[str]]:  # ref -> [username, password] or [record]
        try:
            data: dict[str, list[str]] = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        return data

    def credential(self, ref: str) -> Credential | None:
        found = self._read().get(ref)
        return Credential(found[0], found[1]) if found else None

    def set(self, ref: str, username: str, password: str) -> None:
        data = self._read()
        data[ref] = [username, password]
        atomic_write(self.path, json.dumps(data).encode())

    def delete(self, ref: str) -> bool:
        data = self._read()
        if data.pop(ref, None) is None:
            return False
        atomic_write(self.path, json.dumps(data).encode())
        return True

    def record(self, ref: str) -> str | None:
        found = self._read().get(f"record:{ref}")
        return found[0] if found else None

    def set_record(self, ref: str, text: str) -> None:
        data = self._read()
        data[f"record:{ref}"] = [text]
        atomic_write(self.path, json.dumps(data).encode())
