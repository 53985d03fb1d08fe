"""The alert worker: a thread inside ``camwarden-server run``.

Each round: ``alert_events.sync`` (open/close events, create deliveries), the daily trend snapshot
(at most every few minutes), then every due delivery is attempted once. A failed attempt is
retried after ``backoff_s * 2**(attempts-1)`` until ``max_attempts``; then the delivery is
``failed``. Errors are kept on the delivery (the dashboard's alerts page) and logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.alerts.channels import DeliveryFailed, send_email, send_webhook
from server.config import AlertsConfig, WebConfig
from server.storage import Repository, alert_events
from server.times import utc_offset, when, zone_or

log = logging.getLogger(__name__)
SNAPSHOT_EVERY = timedelta(minutes=5)
_ERROR_LIMIT = 512
DEFAULT_ZONE = WebConfig().zone()

SUBJECTS = {
    "finding": "[camwarden] Critical finding / Phát hiện nghiêm trọng: "
    "{code} on {agent_id}/{camera_id}",
    "silent": "[camwarden] Agent silent / Tác tử mất liên lạc: {agent_id} ({site})",
    "audit": "[camwarden] Camera not audited / Camera chưa được kiểm tra: "
    "{agent_id}/{camera_id} ({code})",
}
EVENTS = {"finding": "finding.opened", "silent": "agent.silent", "audit": "camera.not_audited"}


@dataclass(frozen=True, slots=True)
class Round:
    opened: int
    closed: int
    sent: int
    failed: int  # attempts that failed in this round


class AlertWorker:
    def __init__(
        self, config: AlertsConfig, repo: Repository, zone: ZoneInfo = DEFAULT_ZONE
    ) -> None:
        self.config = config
        self.engine = repo.engine
        # e-mails show times in the zone of the alert's unit, else this one (web.timezone);
        # webhooks send ISO 8601
        self.zone = zone
        self._snapshot_at: datetime | None = None

    def run_once(self, now: datetime) -> Round:
        synced = alert_events.sync(self.engine, now, timedelta(seconds=self.config.silent_after_s))
        if self._snapshot_at is None or now - self._snapshot_at >= SNAPSHOT_EVERY:
            alert_events.snapshot(self.engine, now.astimezone(UTC).date())
            self._snapshot_at = now
        sent, failed = self.deliver_due(now)
        return Round(synced.opened, synced.closed, sent, failed)

    def deliver_due(self, now: datetime) -> tuple[int, int]:
        due = alert_events.due_deliveries(self.engine, now)
        sent = failed = 0
        for d in due.deliveries:
            payload = _payload(d, due.org_names(d.site))
            try:
                if d.channel == "webhook":
                    send_webhook(d.target, d.secret or "", payload, now, self.config.timeout_s)
                else:
                    recipients = [a.strip() for a in d.target.split(",") if a.strip()]
                    subject = SUBJECTS[d.kind].format(**payload)
                    zone = zone_or(due.zone_name(d.site), self.zone)
                    text = _text(payload, d.opened_at, zone)
                    send_email(self.config.smtp, recipients, subject, text)
            except DeliveryFailed as exc:
                failed += 1
                self._failed(d.delivery_id, d.attempts + 1, str(exc), now)
                log.warning(
                    "alert %d to route %s failed (attempt %d): %s",
                    d.event_id,
                    d.name,
                    d.attempts + 1,
                    exc,
                )
                continue
            sent += 1
            alert_events.delivery_sent(self.engine, d.delivery_id, d.attempts + 1, now)
        return sent, failed

    def _failed(self, delivery_id: int, attempts: int, error: str, now: datetime) -> None:
        final = attempts >= self.config.max_attempts
        delay = timedelta(seconds=self.config.backoff_s * 2 ** (attempts - 1))
        alert_events.delivery_failed(
            self.engine,
            delivery_id,
            attempts=attempts,
            error=error[:_ERROR_LIMIT],
            final=final,
            retry_at=now if final else now + delay,
        )


def _payload(d: Any, org: list[str]) -> dict[str, Any]:
    return {
        "event": EVENTS[d.kind],
        "alert_id": d.event_id,
        "kind": d.kind,
        "agent_id": d.agent_id,
        "camera_id": d.camera_id or None,
        "code": d.code or None,
        "severity": d.severity,
        "site": d.site,
        "org": org,
        "opened_at": d.opened_at.isoformat(),
        "detail": d.detail,
    }


def _text(payload: dict[str, Any], opened_at: datetime, zone: ZoneInfo) -> str:
    """The e-mail body: the payload's fields, the opening time in ``zone`` as people read it."""
    shown = {k: v for k, v in payload.items() if k not in ("detail", "opened_at")}
    lines = [f"{k}: {v}" for k, v in shown.items() if v not in (None, [])]
    opened = f"opened_at: {when(opened_at, 'vi', zone)} ({zone.key}, {utc_offset(zone, opened_at)})"
    return "\n".join([*lines, opened, "", "detail: " + repr(payload["detail"])])


class Periodic(threading.Thread):
    """Calls ``job(now)`` every ``interval`` seconds until stopped; errors are logged, not fatal."""

    def __init__(self, name: str, interval: float, job: Callable[[datetime], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.job = job
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.job(datetime.now(UTC))
            except Exception:
                log.exception("%s: the round failed; retrying in %.0f s", self.name, self.interval)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
