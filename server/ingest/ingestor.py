"""One batch through the whole pipeline: stage 1 on a thread pool, stage 2 and storage in one
transaction, then metrics. Shared by the MQTT subscriber and ``camwarden-server import``.

The two halves are separate calls so that the subscriber can overlap them: ``verify`` hands a
batch to the verify threads and returns at once, ``store`` waits for that batch's stage 1 and
commits it. Ed25519 verification releases the GIL, and so does SQLite while it steps and
commits, so batch N+1 is verified while batch N is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from server.config import ServerConfig
from server.ingest.pipeline import Checked, Incoming, Pipeline, Rejected
from server.metrics import Metrics
from server.storage import Repository

# messages per verify task: small enough to spread a batch over the threads and start storing
# soon, large enough that the task overhead stays negligible
CHUNK = 50


def utcnow() -> datetime:
    return datetime.now(UTC)


class Verifying:
    """Stage 1 of one batch, in progress on the verify threads."""

    def __init__(self, parts: list[Future[list[Checked | Rejected]]]) -> None:
        self._parts = parts

    def result(self) -> list[Checked | Rejected]:
        """The stage 1 outcomes in batch order (waits for them)."""
        return [item for part in self._parts for item in part.result()]


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

    def verify(self, batch: Sequence[Incoming]) -> Verifying:
        """Start stage 1 of ``batch`` on the verify threads; returns at once."""
        check = self.pipeline.check_all
        return Verifying(
            [self._pool.submit(check, batch[i : i + CHUNK]) for i in range(0, len(batch), CHUNK)]
        )

    def store(self, verifying: Verifying) -> list[Checked | Rejected]:
        """Stage 2 and storage of a verified batch in one transaction; raises SQLAlchemy errors
        with nothing stored (the same ``verifying`` may then be stored again)."""
        results = self._repo.commit_batch(
            verifying.result(),
            quarantine_size=self._config.quarantine_size,
            sample_bytes=self._config.quarantine_sample_bytes,
        )
        self.metrics.record(results, self._clock())
        return results

    def process(self, batch: Sequence[Incoming]) -> list[Checked | Rejected]:
        """Check and store ``batch``; raises SQLAlchemy errors with nothing stored."""
        return self.store(self.verify(batch))

    def close(self) -> None:
        self._pool.shutdown()
