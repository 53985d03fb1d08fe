"""The lab's request log as JSON lines: what every camera was sent, and the locks it caused.

One object per line, in the order the lab saw them, so that any test or person can check what
the software under test did (``camwarden-lab log``)::

    {"camera": "hik-1", "event": "request", "at": 1765070000.1, "interface": "rtsp",
     "method": "DESCRIBE", "target": "/Streaming/Channels/101", "auth": "digest",
     "user": null, "status": 401}
    {"camera": "hik-1", "event": "lock", "at": 1765070001.0, "user": "admin",
     "until": 1765070301.0}

Passwords are never written (the camera's own log leaves them out). A lab run starts the file
afresh; past ``max_bytes`` it moves to ``<name>.1`` (replacing the one before) and a new file
starts, so the log of a lab left running is bounded by twice that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from lab.camera import LockEvent, RequestRecord

__all__ = ["MAX_BYTES", "RequestLog", "read_log"]

MAX_BYTES = 64 * 1024 * 1024


class RequestLog:
    """Writes each camera's records to one file; a line is written as soon as it happens."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8", buffering=1)

    def write(self, camera: str, at: float, entry: RequestRecord | LockEvent) -> None:
        event = "request" if isinstance(entry, RequestRecord) else "lock"
        line: dict[str, Any] = {"camera": camera, "event": event, "at": round(at, 3)}
        line.update(asdict(entry))
        self._file.write(json.dumps(line, sort_keys=True) + "\n")
        if self._file.tell() > self.max_bytes:
            self._file.close()
            self.path.replace(_previous(self.path))
            self._file = self.path.open("w", encoding="utf-8", buffering=1)

    def close(self) -> None:
        self._file.close()


def read_log(path: Path, camera: str | None = None) -> Iterator[dict[str, Any]]:
    """The entries of a request log (the moved-away part first), of one camera if ``camera``
    is given."""
    for part in (_previous(path), path):
        if part == path or part.exists():
            with part.open(encoding="utf-8") as lines:
                for line in lines:
                    entry: dict[str, Any] = json.loads(line)
                    if camera is None or entry.get("camera") == camera:
                        yield entry


def _previous(path: Path) -> Path:
    return path.with_name(path.name + ".1")
