"""The alert worker: a thread inside ``camwarden-server run``.

Each round: ``tracker.sync`` (open/close events, create deliveries), the daily trend snapshot
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

from sqlalchemy import Engine, or_, select, update

from server.alerts import tracker
from server.alerts.channels import DeliveryFailed, send_email, send_webhook
from server.config import AlertsConfig, WebConfig
from server.storage.org_models import AlertDelivery, AlertEvent, AlertRoute, OrgUnit
from server.web.display import utc_offset, when

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
    def __init__(self, config: AlertsConfig, engine: Engine, zone: ZoneInfo = DEFAULT_ZONE) -> None:
        self.config = config
        self.engine = engine
        self.zone = zone  # of the times e-mails show (web.timezone); webhooks send ISO 8601
        self._snapshot_at: datetime | None = None

    def run_once(self, now: datetime) -> Round:
        synced = tracker.sync(self.engine, now, timedelta(seconds=self.config.silent_after_s))
        if self._snapshot_at is None or now - self._snapshot_at >= SNAPSHOT_EVERY:
            tracker.snapshot(self.engine, now.astimezone(UTC).date())
            self._snapshot_at = now
        sent, failed = self.deliver_due(now)
        return Round(synced.opened, synced.closed, sent, failed)

    def deliver_due(self, now: datetime) -> tuple[int, int]:
        with self.engine.connect() as conn:
            due = conn.execute(
                select(
                    AlertDelivery.id.label("delivery_id"),
                    AlertDelivery.attempts,
                    AlertRoute.channel,
                    AlertRoute.target,
                    AlertRoute.secret,
                    AlertRoute.name,
                    AlertEvent.id.label("event_id"),
                    AlertEvent.kind,
                    AlertEvent.agent_id,
                    AlertEvent.camera_id,
                    AlertEvent.code,
                    AlertEvent.site,
                    AlertEvent.severity,
                    AlertEvent.detail,
                    AlertEvent.opened_at,
                )
                .join(AlertRoute, AlertRoute.id == AlertDelivery.route_id)
                .join(AlertEvent, AlertEvent.id == AlertDelivery.event_id)
                .where(
                    AlertDelivery.state == "pending",
                    AlertDelivery.next_attempt_at <= now,
                    # a silenced alert waits (server.domain.alert_workflow)
                    or_(AlertEvent.silenced_until.is_(None), AlertEvent.silenced_until <= now),
                )
                .order_by(AlertDelivery.id)
            ).all()
            orgs = dict(
                conn.execute(select(OrgUnit.site, OrgUnit.path).where(OrgUnit.kind == "site")).all()
            )
            names = dict(conn.execute(select(OrgUnit.id, OrgUnit.name)).all())
        sent = failed = 0
        for d in due:
            payload = _payload(d, _org_names(orgs.get(d.site), names))
            try:
                if d.channel == "webhook":
                    send_webhook(d.target, d.secret or "", payload, now, self.config.timeout_s)
                else:
                    recipients = [a.strip() for a in d.target.split(",") if a.strip()]
                    subject = SUBJECTS[d.kind].format(**payload)
                    text = _text(payload, d.opened_at, self.zone)
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
            with self.engine.begin() as conn:
                conn.execute(
                    update(AlertDelivery)
                    .where(AlertDelivery.id == d.delivery_id)
                    .values(state="sent", attempts=d.attempts + 1, sent_at=now, last_error=None)
                )
        return sent, failed

    def _failed(self, delivery_id: int, attempts: int, error: str, now: datetime) -> None:
        final = attempts >= self.config.max_attempts
        delay = timedelta(seconds=self.config.backoff_s * 2 ** (attempts - 1))
        with self.engine.begin() as conn:
            conn.execute(
                update(AlertDelivery)
                .where(AlertDelivery.id == delivery_id)
                .values(
                    state="failed" if final else "pending",
                    attempts=attempts,
                    last_error=error[:_ERROR_LIMIT],
                    next_attempt_at=now if final else now + delay,
                )
            )


def _org_names(path: str | None, names: dict[int, str]) -> list[str]:
    if path is None:
        return []
    return [names[int(part)] for part in path.strip("/").split("/") if int(part) in names]


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
