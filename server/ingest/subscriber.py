"""The collector's MQTT side, and the only server module that imports paho.

MQTT v5, persistent session (clean_start false, session expiry), shared subscriptions, QoS 1 and
manual acknowledgement: a message is acknowledged only after the batch that holds its outcome
(stored or quarantined) is committed. A crash or a database outage therefore loses nothing; the
broker redelivers, and the replay rule turns a redelivery into a harmless duplicate. After the
commit, the same client publishes the batch's end-to-end acks to the agents (``acks``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import SQLAlchemyError

from protocol import collector_subscriptions
from server.config import MqttConfig
from server.ingest.acks import AckSender
from server.ingest.ingestor import Ingestor, utcnow
from server.ingest.pipeline import Checked, Incoming, Rejected

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class _Delivery:
    mid: int
    qos: int
    generation: int  # which connection delivered it; acks never cross a reconnect
    incoming: Incoming


class Subscriber:
    def __init__(
        self,
        config: MqttConfig,
        ingestor: Ingestor,
        batch_size: int,
        batch_latency_s: float,
        command_key: OKPKey,
    ) -> None:
        self._config = config
        self._ingestor = ingestor
        self._batch_size = batch_size
        self._latency = batch_latency_s
        self._queue: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._generation = 0
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camwarden-ingest", daemon=True)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)
        self._client.enable_logger(log)
        self._acks = AckSender(
            command_key, lambda name, payload: self._client.publish(name, payload, qos=1), utcnow
        )

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        self._generation += 1
        client.subscribe([(name, 1) for name in collector_subscriptions()])
        log.info(
            "connected to MQTT %s:%d as %s",
            self._config.host,
            self._config.port,
            self._config.client_id,
        )
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT connection lost: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        incoming = Incoming(msg.topic, bytes(msg.payload), utcnow())
        self._queue.put(_Delivery(msg.mid, msg.qos, self._generation, incoming))

    def publish(self, name: str, payload: bytes) -> None:
        """Publish QoS 1 through this client (signed commands from ``server.firmware``)."""
        self._client.publish(name, payload, qos=1)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._config.session_expiry_s
        self._client.connect_async(
            self._config.host,
            self._config.port,
            keepalive=self._config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish and acknowledge the batch in progress, then disconnect."""
        self._stop.set()
        self._thread.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._ingestor.close()

    # -- the batch loop (ingest thread) -----------------------------------------------------

    def _collect(self) -> list[_Delivery]:
        try:
            batch = [self._queue.get(timeout=self._latency)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._latency
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._collect()
            results = self._commit(batch) if batch else None
            if results is not None:
                for d in batch:
                    if d.qos > 0 and d.generation == self._generation:
                        self._client.ack(d.mid, d.qos)
                self._acks.send(results)

    def _commit(self, batch: list[_Delivery]) -> list[Checked | Rejected] | None:
        backoff = 0.1
        while True:
            try:
                return self._ingestor.process([d.incoming for d in batch])
            except SQLAlchemyError as exc:
                if self._stop.is_set():
                    return None  # not acknowledged: the broker redelivers to the session
                log.warning("storing a batch of %d failed, retrying: %s", len(batch), exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
