"""What every broker client of the collector does with a verified batch (``subscriber`` for
MQTT, ``nats`` for a NATS cluster): commit it, retrying while the database is down, count what
waits, and tell whether the ingest is stalled (``/healthz`` and the metrics)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from server.ingest.ingestor import Ingestor, Outcomes, Verifying
from server.storage import DatabaseUnavailable

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 5.0


class Progress:
    """Messages received and not committed yet, and since when the ingest has not moved:
    the last commit, or the moment messages began to wait after none did. Thread safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting = 0
        self._since = clock()

    def received(self, count: int) -> None:
        with self._lock:
            if not self._waiting:
                self._since = self._clock()
            self._waiting += count

    def committed(self, count: int) -> None:
        with self._lock:
            self._waiting -= count
            self._since = self._clock()

    @property
    def waiting(self) -> int:
        return self._waiting

    def stalled_for(self) -> float:
        """Seconds without a commit while messages wait; 0 when none wait."""
        with self._lock:
            return self._clock() - self._since if self._waiting else 0.0


class Committer:
    """Commits verified batches for a broker client and keeps its ``progress``; ``stop`` ends
    the retries (the batch is then left unacknowledged, and the broker delivers it again)."""

    def __init__(self, ingestor: Ingestor, stall_after_s: float, stop: threading.Event) -> None:
        self.ingestor = ingestor
        self.progress = Progress()
        self._stall_after_s = stall_after_s
        self._stop = stop
        metrics = ingestor.metrics
        metrics.waiting.set_function(lambda: self.progress.waiting)
        metrics.stalled.set_function(self.progress.stalled_for)
        metrics.stalled_flag.set_function(lambda: float(self.stalled()))

    def stalled(self) -> bool:
        return self.progress.stalled_for() > self._stall_after_s

    def health(self, broker: str, connected: bool) -> str | None:
        """None when healthy; else what is wrong, for ``/healthz``."""
        if not connected:
            return f"{broker} disconnected"
        if self.stalled():
            return "ingest stalled"
        return None

    def commit(self, verifying: Verifying, size: int) -> Outcomes | None:
        """Store one batch of ``size`` messages; its outcomes, or None when stopped first."""
        backoff = 0.1
        while True:
            try:
                results = self.ingestor.store(verifying)
            except DatabaseUnavailable as exc:
                if self._stop.is_set():
                    return None  # not acknowledged: the broker delivers it again
                log.warning("storing a batch of %d failed, retrying: %s", size, exc.detail)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            else:
                self.progress.committed(size)
                return results
