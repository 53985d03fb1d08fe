from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.notify import NotifySocket

pytest_plugins = ["lab.testing"]


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
