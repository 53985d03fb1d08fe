"""The collector on a NATS cluster (``[broker] kind = "nats"``, docs/adr/0032), and the only
server module that imports nats-py.

Agents publish with MQTT 3.1.1 to any node; NATS turns ``camwarden/v1/<site>/<agent>/<channel>``
into the subject ``camwarden.v1.<site>.<agent>.<channel>``, which the work-queue stream
``[broker] stream`` (replicated on ``replicas`` nodes) keeps until a collector acknowledges
it. Every collector pulls from the same durable consumer ``[broker] consumer``, so each message
goes to one of them; it is acknowledged only after the batch holding its outcome (stored or
quarantined) is committed. A collector that dies mid-batch leaves its messages unacknowledged
and the cluster gives them to another after ``ack_wait_s``: the replay rule turns such a
redelivery into a harmless duplicate, acknowledged again.

Acks and commands go to an agent as a plain NATS publish on the subject of its ``cmd`` topic:
the node the agent is connected to hands it over (as MQTT QoS 0), and nothing is kept for an
agent that is away. Delivery does not rest on the broker: a report not acknowledged is
published again by the agent, and a command not answered is published again by the scheduler
(``[firmware] resend_after_s``; the agent refuses, silently, a command it has already seen).
(Handing them to the MQTT listener's QoS 1 stream, ``$MQTT.msgs.<subject>``, was tried: on
nats-server 2.9.10 a 3-node cluster delivered nothing from it to sessions whose consumer leader
sat on another node than the client, in about half of the runs; docs/adr/0032.)

One thread runs an asyncio loop: fetch a batch, verify it (the verify threads), commit it (a
worker thread, retrying while the database is down: ``batches.Committer``), acknowledge it,
send the acks. nats-py reconnects to any node by itself.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Final

import nats
import nats.errors
import nats.js.errors
from joserfc.jwk import OKPKey
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from protocol import utc_now
from protocol.topics import AGENT_CHANNELS, PREFIX
from server.config import BrokerConfig, MqttConfig, ServerConfig
from server.ingest.acks import AckSender
from server.ingest.batches import Committer
from server.ingest.ingestor import Ingestor
from server.ingest.subscriber import tune_gc
from server.storage.records import Incoming

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S: Final = 10.0
_RETRY_S: Final = 1.0
_API_TIMEOUT_S: Final = 10.0


def subject(topic: str) -> str:
    """The NATS subject of an MQTT topic (levels are tokens; agent ids and sites carry no
    ``.`` on a NATS cluster: ``server.broker_roles`` gives such agents no user)."""
    return topic.replace("/", ".")


def topic_of(name: str) -> str:
    """The MQTT topic of a NATS subject (the pipeline checks it as it checks MQTT's)."""
    return name.replace(".", "/")


def stream_config(config: BrokerConfig, max_message_bytes: int) -> StreamConfig:
    """The work-queue stream of the agents' messages."""
    return StreamConfig(
        name=config.stream,
        subjects=[subject(f"{PREFIX}/*/*/{channel}") for channel in AGENT_CHANNELS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=config.replicas,
        max_bytes=config.max_bytes,
        max_age=float(config.max_age_s),
        max_msg_size=max_message_bytes,
    )


def consumer_config(config: BrokerConfig) -> ConsumerConfig:
    """The durable pull consumer all collectors share."""
    return ConsumerConfig(
        durable_name=config.consumer,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=float(config.ack_wait_s),
        max_ack_pending=config.max_ack_pending,
        max_deliver=-1,
        num_replicas=config.replicas,
    )


def tls_context(mqtt: MqttConfig) -> ssl.SSLContext | None:
    """The collector's certificate for the cluster (the nodes map its CN to its user)."""
    if not mqtt.tls:
        return None
    context = ssl.create_default_context(cafile=mqtt.ca_file or None)
    context.load_cert_chain(mqtt.cert_file, mqtt.key_file)
    return context


class NatsSubscriber:
    """The ``Subscriber`` of a NATS cluster: same ``start``, ``stop``, ``health``, ``publish``."""

    def __init__(
        self,
        config: ServerConfig,
        ingestor: Ingestor,
        command_key: OKPKey,
        *,
        tune_process_gc: bool = True,
    ) -> None:
        self._config = config.broker
        self._name = config.mqtt.client_id
        self._tls = tls_context(config.mqtt)
        self._stop = threading.Event()
        self._committer = Committer(ingestor, config.ingest.stall_after_s, self._stop)
        self.progress = self._committer.progress
        self._ingestor = ingestor
        self._stream = stream_config(config.broker, config.ingest.max_message_bytes)
        self._batch_size = config.ingest.batch_size
        self._latency = config.ingest.batch_latency_s
        self._tune_gc = tune_process_gc
        self.connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="camwarden-nats", daemon=True
        )
        self._main: Future[None] | None = None
        self._nc: Client | None = None
        self._pending: set[asyncio.Task[None]] = set()  # acks on their way
        self._acks = AckSender(command_key, self._send_ack, utc_now)

    # -- the collector's surface --------------------------------------------------------------

    def health(self) -> str | None:
        """None when healthy; else what is wrong, for ``/healthz``."""
        return self._committer.health("nats", self.connected.is_set())

    def stalled(self) -> bool:
        return self._committer.stalled()

    def publish(self, name: str, payload: bytes) -> None:
        """Publish on an agent's MQTT topic ``name`` (its ``cmd``) and wait until the node has
        it; raises ``OSError`` when not connected or the node did not answer in time."""
        future = self._submit(self._publish(name, payload))
        try:
            future.result(PUBLISH_TIMEOUT_S + 1.0)
        except (nats.errors.Error, TimeoutError) as exc:
            future.cancel()
            raise OSError(f"the cluster did not store the message for {name}: {exc!r}") from exc

    def start(self) -> None:
        if self._tune_gc:
            tune_gc()
        self._thread.start()
        self._main = self._submit(self._run())

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in progress, acknowledge it, then close the connection."""
        self._stop.set()
        if self._main is not None:
            try:
                self._main.result(timeout)
            except TimeoutError:
                log.warning("the NATS ingest did not stop within %.0f s", timeout)
                self._main.cancel()
            except Exception:  # already logged by _run
                log.debug("the NATS ingest ended with an error", exc_info=True)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._ingestor.close()

    # -- the loop thread ----------------------------------------------------------------------

    def _submit(self, coroutine: Coroutine[Any, Any, None]) -> Future[None]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _publish(self, name: str, payload: bytes) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise nats.errors.ConnectionClosedError
        await self._nc.publish(subject(name), payload)
        await self._nc.flush(timeout=int(PUBLISH_TIMEOUT_S))

    def _send_ack(self, name: str, payload: bytes) -> None:
        task = self._loop.create_task(self._ack(name, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _ack(self, name: str, payload: bytes) -> None:
        try:
            await self._publish(name, payload)
        except (nats.errors.Error, TimeoutError) as exc:  # the agent publishes again, re-acked
            log.warning("an ack to %s was not stored: %r", name, exc)

    async def _connect(self) -> Client:
        async def disconnected() -> None:
            self.connected.clear()
            if not self._stop.is_set():
                log.warning("NATS connection lost; reconnecting")

        async def reconnected() -> None:
            self.connected.set()
            log.info("reconnected to NATS %s", self._nc.connected_url if self._nc else "")

        async def error(exc: Exception) -> None:
            log.warning("NATS: %r", exc)

        while True:
            try:
                return await nats.connect(
                    servers=self._config.servers,
                    name=self._name,
                    tls=self._tls,
                    connect_timeout=5,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                )
            except (nats.errors.Error, OSError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("cannot reach the NATS cluster (%r); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def _bind(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """Create or update the stream and the shared consumer (every collector does; the
        same config is accepted again), then bind to the consumer."""
        while True:
            try:
                try:
                    await js.stream_info(self._stream.name or "")
                    await js.update_stream(self._stream)
                except nats.js.errors.NotFoundError:
                    await js.add_stream(self._stream)
                await js.add_consumer(self._config.stream, consumer_config(self._config))
                return await js.pull_subscribe_bind(
                    durable=self._config.consumer, stream=self._config.stream
                )
            except (nats.errors.Error, TimeoutError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("JetStream not ready for the collector (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def _run(self) -> None:
        try:
            self._nc = await self._connect()
            pull = await self._bind(self._nc.jetstream(timeout=_API_TIMEOUT_S))
            self.connected.set()
            log.info(
                "reading stream %s as %s on NATS %s",
                self._config.stream,
                self._config.consumer,
                self._nc.connected_url.netloc if self._nc.connected_url else "",
            )
            while not self._stop.is_set():
                await self._batch(pull)
        except Exception:
            log.exception("the NATS ingest stopped")
            raise
        finally:
            self.connected.clear()
            if self._pending:
                await asyncio.wait(self._pending, timeout=PUBLISH_TIMEOUT_S)
            if self._nc is not None:
                await self._nc.close()

    async def _batch(self, pull: JetStreamContext.PullSubscription) -> None:
        try:
            messages = await pull.fetch(self._batch_size, timeout=self._latency)
        except TimeoutError:
            return  # nothing waiting
        except nats.errors.Error as exc:  # a node went away mid-fetch; nats-py reconnects
            log.warning("fetching from %s failed: %r", self._config.stream, exc)
            await asyncio.sleep(_RETRY_S)
            return
        now = utc_now()
        self.progress.received(len(messages))
        verifying = self._ingestor.verify(
            [Incoming(topic_of(m.subject), m.data, now) for m in messages]
        )
        results = await asyncio.to_thread(self._committer.commit, verifying, len(messages))
        if results is None:
            return  # stopping before the commit: the cluster redelivers them
        for message in messages:
            try:
                await message.ack()
            except nats.errors.Error as exc:  # redelivered after ack_wait: a duplicate, re-acked
                log.warning("acknowledging to %s failed: %r", self._config.stream, exc)
                break
        self._acks.send(results)


__all__ = ["NatsSubscriber", "consumer_config", "stream_config", "subject", "topic_of"]
