"""One batch through the whole pipeline: stage 1 on a thread pool, stage 2 and storage in one
transaction, then metrics. Shared by the MQTT subscriber and ``camwarden-server import``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from server.config import ServerConfig
from server.ingest.pipeline import Checked, Incoming, Pipeline, Rejected
from server.metrics import Metrics
from server.storage import Repository


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ingestor:
    def __init__(
        self,
        config: ServerConfig,
        repo: Repository,
        metrics: Metrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._config = config.ingest
        self._repo = repo
        self.metrics = metrics
        self._clock = clock
        self.pipeline = Pipeline(
            repo.key_for, config.freshness.rules(), config.ingest.max_message_bytes, clock
        )
        # Ed25519 verification releases the GIL, so stage 1 scales over a few threads
        self._pool = ThreadPoolExecutor(config.ingest.verify_threads, "camwarden-verify")

    def process(self, batch: Sequence[Incoming]) -> list[Checked | Rejected]:
        """Check and store ``batch``; raises SQLAlchemy errors with nothing stored."""
        threads = self._config.verify_threads
        size = -(-len(batch) // threads)
        parts = [batch[i : i + size] for i in range(0, len(batch), size)] if batch else []
        checked = [r for part in self._pool.map(self.pipeline.check_all, parts) for r in part]
        results = self._repo.commit_batch(
            checked,
            quarantine_size=self._config.quarantine_size,
            sample_bytes=self._config.quarantine_sample_bytes,
        )
        self.metrics.record(results, self._clock())
        return results

    def close(self) -> None:
        self._pool.shutdown()
