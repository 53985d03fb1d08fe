"""One batch through the whole pipeline: stage 1 on a thread pool, stage 2 and storage in one
transaction, then metrics. Shared by the MQTT subscriber and ``camwarden-server import``.

The two halves are separate calls so that the subscriber can overlap them: ``verify`` hands a
batch to the verify threads and returns at once, ``store`` waits for that batch's stage 1 and
commits it. Ed25519 verification releases the GIL, and so does SQLite while it steps and
commits, so batch N+1 is verified while batch N is stored.

Poison isolation: when the database refuses a batch for its data (``RecordRefused``: a value it
cannot hold, a constraint), the batch is bisected and each half stored in a transaction of its
own, down to the single message the database refuses, which is quarantined with the database's
reason (``refused``). A batch of n messages with one such message costs about 2 log2(n) extra
transactions, and everything else in it is stored and acknowledged. A database that is down
(``DatabaseUnavailable``) is the caller's to retry: the parts already committed stay committed
and are not stored again (``Verifying`` remembers them).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from protocol import utc_now
from server.config import ServerConfig
from server.ingest.pipeline import Pipeline, RefusedByDatabase, needed_keys, sequence
from server.metrics import Metrics
from server.storage import DatabaseUnavailable, RecordRefused, Repository
from server.storage.records import Checked, Incoming, Rejected

log = logging.getLogger(__name__)

# messages per verify task: small enough to spread a batch over the threads and start storing
# soon, large enough that the task overhead stays negligible
CHUNK = 50


Outcomes = list[Checked | Rejected]


class Verifying:
    """Stage 1 of one batch, in progress on the verify threads: ``start`` begins checking a chunk.

    Stage 1 reads the database too (an agent's key, the first time it is seen); a chunk whose
    check failed with ``DatabaseUnavailable`` is started again, to be waited for on the next
    attempt, instead of failing the same way forever."""

    def __init__(
        self,
        chunks: Sequence[Sequence[Incoming]],
        start: Callable[[Sequence[Incoming]], Future[Outcomes]],
    ) -> None:
        self._chunks = chunks
        self._start = start
        self._parts = [start(chunk) for chunk in chunks]
        # storing: the parts of the batch still to commit, in batch order, and the outcomes of
        # those committed (a retry after an outage goes on where the last attempt stopped)
        self._todo: deque[Outcomes] | None = None
        self.stored: Outcomes = []

    def result(self) -> Outcomes:
        """The stage 1 outcomes in batch order (waits for them); raises DatabaseUnavailable."""
        outcomes: Outcomes = []
        for i, part in enumerate(self._parts):
            try:
                outcomes += part.result()
            except DatabaseUnavailable:
                self._parts[i] = self._start(self._chunks[i])
                raise
        return outcomes

    def todo(self) -> deque[Outcomes]:
        if self._todo is None:
            self._todo = deque([self.result()])
        return self._todo


class Ingestor:
    def __init__(
        self,
        config: ServerConfig,
        repo: Repository,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
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
            [batch[i : i + CHUNK] for i in range(0, len(batch), CHUNK)],
            lambda chunk: self._pool.submit(check, chunk),
        )

    def store(self, verifying: Verifying) -> Outcomes:
        """Stage 2 and storage of a verified batch, in one transaction unless the database
        refuses part of it (then bisected, see the module docstring). Raises
        ``DatabaseUnavailable``; the same ``verifying`` may then be stored again, and goes on
        with what is not committed yet."""
        todo = verifying.todo()
        while todo:
            part = todo[0]
            try:
                results = self._commit(part)
            except RecordRefused as exc:
                if len(part) > 1:
                    middle = len(part) // 2
                    todo.popleft()
                    todo.extendleft((part[middle:], part[:middle]))  # first half first
                    continue
                results = self._refuse(part[0], exc)
            todo.popleft()
            verifying.stored += results
            self.metrics.record(results, self._clock())
        return verifying.stored

    def _commit(self, part: Sequence[Checked | Rejected]) -> Outcomes:
        """Stage 2 and storage of ``part`` in one transaction; returns the final outcomes."""
        with self._repo.ingest_batch() as batch:
            results = sequence(part, batch.view(*needed_keys(part)))
            batch.write(
                results,
                quarantine_size=self._config.quarantine_size,
                sample_bytes=self._config.quarantine_sample_bytes,
            )
        return results

    def _refuse(self, item: Checked | Rejected, exc: RecordRefused) -> Outcomes:
        """Quarantine the one message the database refused, with the database's reason."""
        refused = Rejected(item.incoming, RefusedByDatabase(exc.detail), item.message)
        log.warning("the database refused a message on %s: %s", item.incoming.topic, exc.detail)
        try:
            return self._commit([refused])
        except RecordRefused as again:  # not even its quarantine row: counted, then dropped
            log.error("the database refused the quarantine row too: %s", again.detail)
            return [refused]

    def process(self, batch: Sequence[Incoming]) -> Outcomes:
        """Check and store ``batch``; raises ``DatabaseUnavailable`` (see ``store``)."""
        return self.store(self.verify(batch))

    def close(self) -> None:
        self._pool.shutdown()
