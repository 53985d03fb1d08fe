"""The agent's side of systemd ``Type=notify`` (docs/adr/0011-systemd-integration.md), on the
notify protocol and journal handler of :mod:`service.systemd`.

``Service``: ``READY=1`` once the outbox, the publisher and the timers are up; a task on the
event loop that sends ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC`` together with a fresh
``STATUS=`` line (a stalled loop stops pinging and systemd restarts the agent); ``RELOADING=1``
around a reload; ``STOPPING=1`` on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable

import msgspec

from agent.config import AgentConfig
from service.systemd import Notifier, log_handler


class Service:
    """The agent's side of ``Type=notify``: readiness, watchdog, status, reload, stop."""

    def __init__(self, notifier: Notifier, status: Callable[[], str]) -> None:
        self._notifier = notifier
        self._status = status
        self._pinger: asyncio.Task[None] | None = None

    def ready(self) -> None:
        self._notifier.send("READY=1", f"STATUS={self._status()}")
        if self._notifier.enabled:
            self._pinger = asyncio.create_task(self._ping(), name="systemd-watchdog")

    async def _ping(self) -> None:
        while True:
            self._notifier.ping(self._status())
            await asyncio.sleep(self._notifier.ping_every_s)

    def reloading(self) -> None:
        self._notifier.reloading()

    def reloaded(self) -> None:
        self._notifier.send("READY=1", f"STATUS={self._status()}")

    async def stopping(self) -> None:
        self._notifier.send("STOPPING=1", "STATUS=stopping: flushing the outbox")
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger


# keys a reload cannot change in a running agent: identity, state, broker session, outbox
RESTART_KEYS = ("agent_id", "site", "key_file", "state_dir", "collector_key_file", "mqtt", "outbox")


def reloadable(old: AgentConfig, new: AgentConfig) -> tuple[AgentConfig, list[str]]:
    """``new`` with the keys in :data:`RESTART_KEYS` kept from ``old``; and those that differ
    (they take effect at the next start)."""
    pending = [key for key in RESTART_KEYS if getattr(old, key) != getattr(new, key)]
    return msgspec.structs.replace(new, **{key: getattr(old, key) for key in pending}), pending


def status_line(
    *, cameras: int, last_audit: float | None, outbox: int, connected: bool, now: float
) -> str:
    """``12 cameras, last audit 40 s ago, outbox 3, broker connected`` (times: monotonic)."""
    audit = "no audit yet" if last_audit is None else f"last audit {now - last_audit:.0f} s ago"
    broker = "connected" if connected else "disconnected"
    return f"{cameras} cameras, {audit}, outbox {outbox}, broker {broker}"


def setup_logging(level: int | str) -> None:
    """The agent's logging, for the CLI and the audit worker alike: the journal or stderr.

    It must run before the first ONVIF use: importing ``onvif.client`` configures the root
    logger at INFO when nothing else has."""
    logging.basicConfig(
        level=level, handlers=[log_handler("camwarden-agent", os.environ, sys.stderr)]
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
