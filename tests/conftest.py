from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from server.domain import security
from tests.support.mosquitto import Mosquitto
from tests.support.notify import NotifySocket

pytest_plugins = ["lab.testing"]


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its smallest cost in this process: the collector's default (64 MiB, three
    passes) takes about a second a hash on a loaded 2-core machine, and the dashboard tests make
    and verify dozens of passwords. Collectors started as processes keep the real cost."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", cheap)
        patch.setattr(security, "_DUMMY", cheap.hash("not a password"))
        yield


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real broker on a free loopback port, stopped at the end of the test."""
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    """A bound notify socket in the abstract namespace: pass ``notify.address`` as NOTIFY_SOCKET."""
    sock = NotifySocket(f"@camwarden-test-{os.getpid()}-{time.monotonic_ns()}")
    yield sock
    sock.sock.close()
