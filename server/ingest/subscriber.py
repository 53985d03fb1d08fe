"""The collector's MQTT side, and the only server module that imports paho.

MQTT v5, persistent session (clean_start false, session expiry), shared subscriptions, QoS 1 and
manual acknowledgement: a message is acknowledged only after the batch that holds its outcome
(stored or quarantined) is committed. A crash or a database outage therefore loses nothing; the
broker redelivers, and the replay rule turns a redelivery into a harmless duplicate.

Three threads: paho's network thread queues deliveries, those of one socket read together; the
ingest thread gathers them into batches and hands each to the verify threads; the store thread
commits the verified batches in order and only then acknowledges them. While batch N is
committed, batch N+1 is verified. After the commit, the store thread publishes the batch's
end-to-end acks to the agents (``acks``) through the same client.

Health (``health``, behind ``/healthz``): the broker connection, and whether the ingest moves.
It is stalled when received messages wait and no batch was committed for ``stall_after_s``
(the database down, or a store that never returns); the metrics say the same
(``camwarden_ingest_stalled``, ``camwarden_ingest_waiting_messages``,
``camwarden_ingest_stalled_seconds``).
"""

from __future__ import annotations

import gc
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol import collector_subscriptions, utc_now
from server.config import MqttConfig
from server.ingest.acks import AckSender
from server.ingest.batches import Committer
from server.ingest.ingestor import Ingestor, Verifying
from server.storage.records import Incoming

log = logging.getLogger(__name__)

_PUBACK = struct.Struct("!BBH")  # fixed header (type, remaining length 2), packet identifier
# batches verified (or being verified) and waiting for the store thread
_DEPTH = 2
# cyclic GC: the ingest allocates a few hundred thousand short-lived containers per second and
# keeps thousands of deliveries queued; with the default thresholds (700, 10, 10) the cyclic GC
# took 11-13 % of a collector's CPU samples, walking them and the start-up heap again and again
_GC_THRESHOLDS = (20_000, 20, 100)


def tune_gc() -> None:
    """For a process whose work is the ingest: the start-up heap (libraries, app, metadata)
    leaves the cyclic GC's view for good, and young collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


class _BufferedClient(mqtt.Client):
    """paho's client reading the socket in large chunks and acknowledging a batch at once.

    paho reads each packet with several ``recv`` calls (type byte, each length byte, body): five
    system calls, each dropping and retaking the GIL, per 2 KB report. Here one ``recv`` of up
    to 256 KB feeds many packets; ``loop_read`` then drains what is buffered, since the
    socket's readiness no longer tells whether packets are waiting. And ``ack`` queues one
    PUBACK per call, each with two system calls (wake the network thread, send 4 bytes);
    ``ack_all`` queues a batch's PUBACKs as one write. A QoS 1 PUBLISH without properties
    skips paho's per-packet ``Properties`` object (``_handle_publish``). Relies on paho 2.x's
    ``_sock_recv``, ``_sock_close``, ``_packet_queue``, ``_handle_publish``, ``_in_packet`` and
    ``_handle_on_message`` (the dependency is pinned below 3; tests/server/test_paho_internals.py
    fails if they change).
    """

    _CHUNK = 256 * 1024
    _rbuf = b""
    _rpos = 0
    # called on the network thread once the packets of a read were handled (after on_message)
    on_read: Callable[[], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(max(bufsize, self._CHUNK))  # raises BlockingIOError
            if len(buf) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return buf
            pos = 0
            self._rbuf = buf
        self._rpos = pos + bufsize
        return buf[pos : pos + bufsize]

    def _buffered(self) -> bool:
        return self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered() and self._sock is not None:
            rc = super().loop_read(1)
        if self.on_read is not None:
            self.on_read()
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        # a QoS 1 PUBLISH without properties, what agents send, goes straight to ``on_message``
        # as the same ``MQTTMessage`` paho builds, minus the empty ``Properties`` object (about
        # 40 % of paho's CPU per message: it fills several dicts per instance) and the debug
        # line; anything else (QoS 0 or 2, properties, a short packet) goes through paho
        command, packet = self._in_packet["command"], self._in_packet["packet"]
        end = 2 + int.from_bytes(packet[:2], "big")  # after the topic
        if (
            command & 0x06 != 0x02
            or len(packet) < end + 3
            or packet[end + 2] != 0
            or not self._manual_ack
            or self._protocol != mqtt.MQTTv5
        ):
            return super()._handle_publish()
        view = memoryview(packet)  # a bytearray; paho hands out bytes, copied once
        message = mqtt.MQTTMessage(int.from_bytes(view[end : end + 2], "big"), bytes(view[2:end]))
        message.qos = 1
        message.dup = bool(command & 0x08)
        message.retain = bool(command & 0x01)
        message.payload = bytes(view[end + 3 :])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS  # manual_ack: acknowledged after the commit

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0  # bytes of a closed connection never reach the next one
        super()._sock_close()

    def ack_all(self, mids: Sequence[int]) -> None:
        """PUBACK (QoS 1) every message in ``mids``, in one write."""
        if mids:
            packets = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            # queued like paho's own PUBACK; as a plain write it carries no mid or QoS to track
            self._packet_queue(mqtt.PUBACK, packets, 0, 0)


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
        *,
        stall_after_s: float = 60.0,
        tune_process_gc: bool = True,
    ) -> None:
        """``stall_after_s``: see ``health``. ``tune_process_gc``: call ``tune_gc`` on start
        (process-wide; the collector's ``run`` wants it, an embedding process such as the test
        suite may not)."""
        self._config = config
        self._stop = threading.Event()
        self._committer = Committer(ingestor, stall_after_s, self._stop)
        self.progress = self._committer.progress
        self._tune_gc = tune_process_gc
        self._ingestor = ingestor
        self._batch_size = batch_size
        self._latency = batch_latency_s
        # deliveries go to the ingest thread a read at a time, not one by one: each put may
        # wake the ingest thread, a thread switch (and GIL hand-over) per message otherwise
        self._received: list[_Delivery] = []  # network thread only
        self._queue: queue.SimpleQueue[list[_Delivery]] = queue.SimpleQueue()
        self._carry: list[_Delivery] = []  # ingest thread only: received beyond a full batch
        self._verified: queue.Queue[tuple[list[_Delivery], Verifying] | None] = queue.Queue(_DEPTH)
        self._generation = 0
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camwarden-ingest", daemon=True)
        self._storer = threading.Thread(target=self._store, name="camwarden-store", daemon=True)
        self._client = _BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_read = self._hand_over
        self._client.reconnect_delay_set(1, 5)
        self._client.enable_logger(log)
        if config.tls:  # mutual TLS; the certificate's CN (camwarden-collector) is the username
            self._client.tls_set(
                ca_certs=config.ca_file, certfile=config.cert_file, keyfile=config.key_file
            )
        self._acks = AckSender(
            command_key, lambda name, payload: self._client.publish(name, payload, qos=1), utc_now
        )

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        self._generation += 1
        client.subscribe([(name, 1) for name in collector_subscriptions(self._config.share_group)])
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
        incoming = Incoming(msg.topic, bytes(msg.payload), utc_now())
        self._received.append(_Delivery(msg.mid, msg.qos, self._generation, incoming))

    def _hand_over(self) -> None:
        if self._received:
            self.progress.received(len(self._received))
            self._queue.put(self._received)
            self._received = []

    def health(self) -> str | None:
        """None when healthy; else what is wrong, for ``/healthz``."""
        return self._committer.health("mqtt", self.connected.is_set())

    def stalled(self) -> bool:
        return self._committer.stalled()

    def publish(self, name: str, payload: bytes) -> None:
        """Publish QoS 1 through this client (signed commands from ``server.firmware``)."""
        self._client.publish(name, payload, qos=1)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._tune_gc:
            tune_gc()
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
        self._storer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish and acknowledge the batches in progress, then disconnect."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)
        self._storer.join(max(0.0, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()
        self._ingestor.close()

    # -- the batch loop (ingest thread) -----------------------------------------------------

    def _collect(self) -> list[_Delivery]:
        batch = self._carry
        if not batch:
            try:
                batch = self._queue.get(timeout=self._latency)
            except queue.Empty:
                return []
        deadline = time.monotonic() + self._latency
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch += (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
        self._carry = batch[self._batch_size :]
        return batch[: self._batch_size]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._collect()
                if batch:
                    verifying = self._ingestor.verify([d.incoming for d in batch])
                    self._verified.put((batch, verifying))  # waits while the store thread is behind
        finally:
            self._verified.put(None)

    def _store(self) -> None:
        while (item := self._verified.get()) is not None:
            batch, verifying = item
            results = self._committer.commit(verifying, len(batch))
            if results is not None:
                generation = self._generation
                self._client.ack_all(
                    [d.mid for d in batch if d.qos == 1 and d.generation == generation]
                )
                for d in batch:
                    if d.qos == 2 and d.generation == generation:  # not subscribed at QoS 2
                        self._client.ack(d.mid, d.qos)
                self._acks.send(results)


def control_request(
    config: MqttConfig,
    request: tuple[str, bytes],
    response_topic: str,
    answers: Callable[[bytes], bool],
    timeout_s: float,
) -> bytes:
    """One request to the broker's control API (``$CONTROL/...``) on a connection of its own.

    Connects with the collector's identity (client id ``<client_id>-control``, clean start),
    subscribes to ``response_topic``, publishes ``request`` (topic, payload) once the broker
    granted that subscription, and returns the first response payload for which ``answers`` is
    true (other collectors' answers share the topic). Raises ``OSError`` when the broker cannot
    be reached or refuses, ``TimeoutError`` when no answer comes within ``timeout_s``.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{config.client_id}-control", protocol=mqtt.MQTTv5
    )
    if config.tls:
        client.tls_set(ca_certs=config.ca_file, certfile=config.cert_file, keyfile=config.key_file)
    subscribed = threading.Event()
    refused: list[str] = []
    answer: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(f"connection refused: {reason}")
            subscribed.set()
        else:
            c.subscribe(response_topic, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            refused.append(f"subscription to {response_topic} refused: {reasons[0]}")
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        if answers(payload):
            answer.put(payload)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    deadline = time.monotonic() + timeout_s
    client.connect(config.host, config.port, keepalive=config.keepalive_s)
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s):
            raise TimeoutError(f"the broker at {config.host}:{config.port} did not answer")
        if refused:
            raise PermissionError(refused[0])
        client.publish(*request, qos=1)
        try:
            return answer.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no answer on {response_topic} in {timeout_s:g} s") from None
    finally:
        client.disconnect()
        client.loop_stop()
