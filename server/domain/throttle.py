"""Sign-in throttling: failed logins counted per account and per source address, in the database.

The counts live in the ``login_throttle`` table (docs/adr/0017-web-throttling.md): every collector
process behind a load balancer sees the same counts, a restart forgets nothing, and the CLI can
unlock what the dashboard shows. A key (``account:NAME``, ``source:ADDRESS``) with
``free`` failures or more is locked for ``lock_s``, doubled with each further failure up to
``lock_max_s``; while locked, sign-in is refused before the password is checked (429 with
Retry-After), so a locked account cannot be guessed at all. Failures older than ``forget_s``
no longer count; a successful sign-in clears its account's count (not its source's).

``RateLimiter`` is the other kind: requests per source address and minute, in memory, for the
anonymous enrollment and certificate-challenge endpoints (``server.api``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from server.config import WebConfig
from server.storage.org_models import LoginThrottle

ACCOUNT = "account:"
SOURCE = "source:"


class Throttled(Exception):
    """Sign-in refused without checking the password: the account or the source is locked."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"locked for {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass(frozen=True, slots=True)
class Lock:
    key: str
    failures: int
    locked_until: datetime

    @property
    def kind(self) -> str:
        return "account" if self.key.startswith(ACCOUNT) else "source"

    @property
    def name(self) -> str:
        return self.key.partition(":")[2]


def account_key(username: str) -> str:
    return ACCOUNT + username[:64]


def source_key(source: str) -> str:
    return SOURCE + source[:64]


class SignInThrottle:
    def __init__(self, engine: Engine, config: WebConfig) -> None:
        self.engine = engine
        self.config = config

    def _keys(self, username: str, source: str | None) -> dict[str, int]:
        """The keys a sign-in touches and their free failures."""
        keys = {account_key(username): self.config.login_free_failures}
        if source:
            keys[source_key(source)] = self.config.login_source_free_failures
        return keys

    def check(self, username: str, source: str | None, now: datetime) -> None:
        """Raises ``Throttled`` while the account or the source is locked."""
        with self.engine.connect() as conn:
            latest = conn.execute(
                select(func.max(LoginThrottle.locked_until)).where(
                    LoginThrottle.key.in_(self._keys(username, source)),
                    LoginThrottle.locked_until > now,
                )
            ).scalar()
        if latest is not None:
            raise Throttled((latest - now).total_seconds())

    def failed(self, conn: Connection, username: str, source: str | None, now: datetime) -> float:
        """Count one failure in ``conn``; the seconds of the lock it starts (0: none)."""
        forget = now - timedelta(seconds=self.config.login_forget_s)
        locked = 0.0
        for key, free in sorted(self._keys(username, source).items()):
            row = conn.execute(
                select(LoginThrottle.failures, LoginThrottle.last_failure_at).where(
                    LoginThrottle.key == key
                )
            ).first()
            failures = 1 if row is None or row.last_failure_at < forget else row.failures + 1
            lock_s = 0.0
            if failures >= free:
                lock_s = min(
                    self.config.login_lock_s * 2 ** min(failures - free, 32),
                    self.config.login_lock_max_s,
                )
                locked = max(locked, lock_s)
            values = {
                "failures": failures,
                "last_failure_at": now,
                "locked_until": now + timedelta(seconds=lock_s) if lock_s else None,
            }
            try:
                with conn.begin_nested():  # a concurrent first failure may insert it first
                    if row is None:
                        conn.execute(insert(LoginThrottle).values(key=key, **values))
                    else:
                        conn.execute(
                            update(LoginThrottle).where(LoginThrottle.key == key).values(values)
                        )
            except IntegrityError:
                conn.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.key == key)
                    .values(failures=LoginThrottle.failures + 1, last_failure_at=now)
                )
        return locked

    @staticmethod
    def succeeded(conn: Connection, username: str) -> None:
        conn.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(username)))

    @staticmethod
    def locks(conn: Connection, now: datetime) -> list[Lock]:
        """The keys locked at ``now``, accounts first."""
        rows = conn.execute(
            select(LoginThrottle.key, LoginThrottle.failures, LoginThrottle.locked_until)
            .where(LoginThrottle.locked_until > now)
            .order_by(LoginThrottle.key)
        ).all()
        return [Lock(r.key, r.failures, r.locked_until) for r in rows]

    @staticmethod
    def unlock(conn: Connection, *, username: str | None = None, source: str | None = None) -> bool:
        """Forget the failures of an account or a source; whether there were any."""
        keys = [account_key(username)] if username is not None else []
        keys += [source_key(source)] if source is not None else []
        result = conn.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
        return bool(result.rowcount)


class RateLimiter:
    """A token bucket per source address in this process's memory: ``per_minute`` requests a
    minute with bursts of as many. At most ``max_sources`` are tracked; the longest idle is
    forgotten first (a forgotten source starts with a full bucket, never with more)."""

    def __init__(
        self,
        per_minute: int,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_sources = max_sources
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, source: str) -> float:
        """0.0 when ``source`` may go on (one token taken), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(source, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            self._buckets[source] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        return wait
