"""``camwarden-server run``: the long-running collector.

The ingest (``Subscriber`` on an MQTT broker, ``NatsSubscriber`` on a NATS cluster), the HTTP
API and dashboard (uvicorn), the firmware scheduler and the background jobs (broker rights,
alert worker, retention) in one process, with systemd notification. Kept apart from the command
line so that short commands do not import the web stack.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from joserfc.jwk import OKPKey

from protocol import utc_now
from server import broker_roles
from server.alerts.worker import AlertWorker, Periodic
from server.api import create_app
from server.config import ServerConfig
from server.firmware import lifetimes
from server.firmware.scheduler import Scheduler
from server.firmware.tuf_repo import TufRepository
from server.ingest.ingestor import Ingestor
from server.ingest.subscriber import Subscriber
from server.keys import load_or_create
from server.metrics import Metrics
from server.storage import Repository
from server.storage.retention import prune_now
from service.systemd import Notifier

if TYPE_CHECKING:
    from server.ingest.jetstream import NatsSubscriber

log = logging.getLogger(__name__)


def run(config: ServerConfig) -> int:
    key = load_or_create(config.state_dir)
    repo = Repository.open_migrated(config)
    ingestor = Ingestor(config, repo, Metrics())
    subscriber = broker_client(config, ingestor, key)
    app = create_app(
        config,
        repo,
        command_key=key,
        metrics=ingestor.metrics,
        health=subscriber.health,
    )
    http = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.http.bind,
            port=config.http.port,
            log_level="warning",
            lifespan="off",
            # forwarded headers are believed only from http.trusted_proxies (server.api)
            proxy_headers=False,
            ssl_certfile=config.http.tls_cert_file or None,
            ssl_keyfile=config.http.tls_key_file or None,
        )
    )
    scheduler = Scheduler(
        repo,
        TufRepository.under(config.state_dir, lifetimes(config.firmware)),
        key,
        subscriber.publish,
        clock=utc_now,
        interval_s=config.firmware.scheduler_interval_s,
        resend_after_s=config.firmware.resend_after_s,
        silent_after=timedelta(seconds=config.web.silent_after_s),
    )
    stop = threading.Event()
    jobs = background_jobs(config, repo)
    notifier = Notifier(os.environ)

    def status() -> str:
        stored, rejected = ingestor.metrics.totals()
        broker = "connected" if subscriber.connected.is_set() else "disconnected"
        return f"broker {broker}, {stored} messages stored, {rejected} rejected"

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    web = threading.Thread(target=http.run, name="camwarden-http", daemon=True)
    try:
        subscriber.start()
        scheduler.start()
        web.start()
        for job in jobs:
            job.start()
        while not (http.started or stop.is_set()):  # READY once the HTTP port listens
            if not web.is_alive():
                log.error("the HTTP server did not start")
                return 1
            stop.wait(0.05)
        log.info("collector running; HTTP on %s:%d", config.http.bind, config.http.port)
        notifier.send("READY=1", f"STATUS={status()}")
        # this loop pings the watchdog: if it stalls, or the HTTP server dies, systemd restarts us
        tick = min(0.5, notifier.ping_every_s)
        due = time.monotonic() + notifier.ping_every_s
        while not stop.wait(tick):
            if not web.is_alive():
                log.error("the HTTP server stopped")
                return 1
            if notifier.enabled and time.monotonic() >= due:
                notifier.ping(status())
                due = time.monotonic() + notifier.ping_every_s
        return 0
    finally:
        notifier.send("STOPPING=1", "STATUS=stopping")
        http.should_exit = True
        web.join(5)
        for job in jobs:
            job.stop()
        scheduler.stop()
        subscriber.stop()
        repo.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def broker_client(
    config: ServerConfig, ingestor: Ingestor, key: OKPKey
) -> Subscriber | NatsSubscriber:
    """The MQTT subscriber, or the NATS cluster's consumer (``[broker] kind``)."""
    if config.broker.kind == "nats":
        from server.ingest.jetstream import NatsSubscriber  # noqa: PLC0415  # nats-py if used

        return NatsSubscriber(config, ingestor, key)
    return Subscriber(
        config.mqtt,
        ingestor,
        config.ingest.batch_size,
        config.ingest.batch_latency_s,
        key,
        stall_after_s=config.ingest.stall_after_s,
    )


def background_jobs(config: ServerConfig, repo: Repository) -> list[Periodic]:
    """The broker roles' sync, the alert worker and the retention job, as configured."""
    jobs = []
    approved = broker_roles.approved_agents(repo)
    if (rights := broker_roles.from_config(config, approved)) is not None:
        jobs.append(
            Periodic(
                "camwarden-broker-roles",
                broker_roles.SYNC_INTERVAL_S,
                lambda now: rights.sync(approved),
            )
        )
    if config.alerts.enabled:
        worker = AlertWorker(config.alerts, repo, config.web.zone())
        jobs.append(Periodic("camwarden-alerts", config.alerts.interval_s, worker.run_once))
    if config.retention.enabled:
        jobs.append(
            Periodic(
                "camwarden-retention",
                config.retention.interval_s,
                lambda now: prune_now(config, repo.engine, now),
            )
        )
    return jobs
