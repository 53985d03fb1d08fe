"""Prometheus metrics of the collector, in a registry of their own (one per collector)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from protocol import CHANNEL_OF, REASONS
from server.ingest.pipeline import RefusedByDatabase
from server.storage.records import Checked, Rejected

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rejected = Counter(
            "camwarden_ingest_rejected",
            "Agent messages rejected by the collector, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "camwarden_ingest_accepted",
            "Agent messages verified and stored, by message type",
            ["type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "camwarden_ingest_latency_seconds",
            "Time from receiving a message to committing its outcome",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # set by the broker client (server.ingest.batches.Progress)
        self.waiting = Gauge(
            "camwarden_ingest_waiting_messages",
            "Agent messages received from the broker and not committed yet",
            registry=self.registry,
        )
        self.stalled = Gauge(
            "camwarden_ingest_stalled_seconds",
            "Seconds since the ingest last committed while messages wait (0 when none wait)",
            registry=self.registry,
        )
        self.stalled_flag = Gauge(
            "camwarden_ingest_stalled",
            "1 while the ingest is stalled (messages wait, no commit for ingest.stall_after_s)",
            registry=self.registry,
        )
        for reason in (*REASONS, RefusedByDatabase.reason):
            self.rejected.labels(reason)
        for kind in CHANNEL_OF:
            self.accepted.labels(kind)

    def record(self, results: Sequence[Checked | Rejected], committed_at: datetime) -> None:
        for item in results:
            if isinstance(item, Rejected):
                self.rejected.labels(item.error.reason).inc()
            else:
                self.accepted.labels(item.type).inc()
            self.latency.observe((committed_at - item.incoming.received_at).total_seconds())

    def totals(self) -> tuple[int, int]:
        """Messages stored and rejected since the start, over every type and reason."""

        def total(counter: Counter) -> int:
            return int(
                sum(
                    s.value
                    for m in counter.collect()
                    for s in m.samples
                    if s.name.endswith("_total")
                )
            )

        return total(self.accepted), total(self.rejected)
