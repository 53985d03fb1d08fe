"""systemd integration without a dependency (docs/adr/0011-systemd-integration.md), shared by
``camwarden-agent run`` and ``camwarden-server run``.

* ``Notifier``: the notify protocol, ``KEY=VALUE`` lines in one datagram to the ``AF_UNIX``
  socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). Without
  the variable every call does nothing, so the same code runs in a terminal. ``ping`` sends
  ``WATCHDOG=1`` (when systemd set a watchdog for this process) with a fresh ``STATUS=`` line;
  a service calls it every ``ping_every_s`` from the loop whose stall should restart it.
* ``JournalHandler``: log records in journald's native protocol (one datagram per record on
  ``/run/systemd/journal/socket``), with structured fields: every upper-case ``extra`` of a
  record (``log.info("...", extra={"CAMERA": cam.id, "CHECK": "TLS-01"})``) becomes a field.
  ``log_handler`` picks it only when ``$JOURNAL_STREAM`` names the process's stderr, i.e. when
  systemd connected stderr to the journal; otherwise plain stderr.

Nothing here raises for a missing or broken socket: systemd integration must never stop the
service. A failed send is logged once at WARNING.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import sys
import time
from collections.abc import Mapping
from typing import TextIO

log = logging.getLogger(__name__)

JOURNAL_SOCKET = "/run/systemd/journal/socket"
STATUS_EVERY_S = 10.0  # STATUS= refresh when there is no watchdog
_FIELD = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,63}$")
# syslog priorities (journald's PRIORITY=) for logging levels
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}
_RESERVED = frozenset({"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER"})


def _address(value: str) -> str:
    return "\0" + value[1:] if value.startswith("@") else value


class Notifier:
    """``sd_notify`` over the datagram socket of ``$NOTIFY_SOCKET``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._address = _address(env["NOTIFY_SOCKET"]) if env.get("NOTIFY_SOCKET") else None
        self._failed = False
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def ping_every_s(self) -> float:
        """Half the watchdog interval; :data:`STATUS_EVERY_S` without a watchdog."""
        return self.watchdog_s / 2 if self.watchdog_s else STATUS_EVERY_S

    def ping(self, status: str) -> None:
        """``WATCHDOG=1`` if systemd watches this process, and ``STATUS=status``."""
        if self.watchdog_s:
            self.send("WATCHDOG=1", f"STATUS={status}")
        else:
            self.send(f"STATUS={status}")

    def reloading(self) -> None:
        """``RELOADING=1`` with ``MONOTONIC_USEC``, as ``Type=notify-reload`` expects."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading config")

    def send(self, *lines: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self._address, exc.strerror)
            self._failed = True


def encode_journal(fields: Mapping[str, str]) -> bytes:
    """journald's native protocol: ``KEY=value\\n``, or for values with a newline ``KEY\\n``,
    the length as 64-bit little endian, the value and ``\\n``."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalHandler(logging.Handler):
    """Log records as journal entries with structured fields; stderr if the journal refuses."""

    def __init__(self, identifier: str, path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self._identifier = identifier
        self._path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._fallback = logging.StreamHandler(sys.stderr)

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        fields = {
            "MESSAGE": self.format(record),
            "PRIORITY": str(_PRIORITY.get(record.levelno, 2 if record.levelno > 40 else 6)),
            "SYSLOG_IDENTIFIER": self._identifier,
            "LOGGER": record.name,
            "CODE_FILE": record.pathname,
            "CODE_LINE": str(record.lineno),
            "CODE_FUNC": record.funcName,
        }
        for name, value in vars(record).items():
            if _FIELD.match(name) and name not in _RESERVED and value is not None:
                fields[name] = str(value)
        return fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._socket.sendto(encode_journal(self.fields(record)), self._path)
        except OSError:
            self._fallback.emit(record)

    def close(self) -> None:
        self._socket.close()
        super().close()


def under_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """True when ``$JOURNAL_STREAM`` (``device:inode``) is the stream's file."""
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def log_handler(identifier: str, env: Mapping[str, str], stream: TextIO) -> logging.Handler:
    """The journal's native protocol under systemd; plain ``stream`` otherwise."""
    if under_journal(env, stream):
        handler: logging.Handler = JournalHandler(identifier)
        handler.setFormatter(logging.Formatter("%(message)s"))
        return handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler
