"""The MQTT publisher: drains the outbox to the broker. The only module of the agent using paho.

paho runs its network loop in its own thread (``loop_start``), reconnecting with exponential
backoff; its callbacks hand events to the asyncio loop with ``call_soon_threadsafe``, so all
bookkeeping below happens on the event loop thread.

* MQTT v5, ``clean_start=False`` with a session expiry interval (a persistent session), QoS 1.
  With ``[mqtt] protocol = "3.1.1"`` (brokers without 5, such as a NATS cluster's MQTT listener,
  docs/adr/0032): ``clean_session=False`` instead, and no properties at all (the broker keeps
  the session by its own rules, there is no session expiry to ask for). A 3.1.1 PUBACK carries
  no reason code, so a refused publish looks delivered; the entry still waits for the
  collector's signed Ack and is published again until it comes, so no guarantee is lost.
* Entries are published in seq order, at most ``max_inflight`` waiting for a PUBACK at a time.
* End-to-end acknowledgement (when the collector's command key is pinned, see
  ``agent.trust.identity.collector_key``): a PUBACK with a success reason code only marks an
  entry as *sent* (in memory, with the time its ack is due). The entry leaves the outbox when the
  collector, after storing it, says so in a signed ``Ack`` on this agent's ``cmd`` topic (QoS 1
  subscription in the persistent session). A sent entry not acknowledged within
  ``ack_timeout_s`` is published again, and its wait doubles per attempt up to
  ``ack_timeout_max_s``: a broker may PUBACK and still lose a message (mosquitto 2.0 drops an
  offline session's shared subscription on restart). Every message on the ``cmd`` topic is
  verified against the pinned key (size limit, signature, strict schema) before anything reads
  it; one that fails, or an ack for another agent, is counted and logged at WARNING, never
  acted on. A verified command's JWS is handed to ``on_command`` (the executor of
  ``agent.commands``, which checks it again in full: typ, expiry, replay, camera).
* Without a pinned collector key (the agent is not enrolled) an entry is removed on its
  PUBACK, as delivery can then only be broker-acknowledged; one WARNING at start says so.
* A PUBACK failure code (e.g. 135 Not authorized) keeps the entry and logs a WARNING; the entry
  is retried at the next start of the agent (after the operator fixed the broker ACL), not on
  every reconnect: mosquitto 2.0 resets the connection after refusing a publish in a persistent
  session, so a retry per reconnect would loop. paho itself resends messages still waiting for
  their PUBACK after a reconnect.
* After a restart everything still in the outbox is published again; the collector
  deduplicates by (agent_id, seq) and acknowledges duplicates too.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from joserfc.jwk import OKPKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig, TlsFiles
from agent.messaging.outbox import Entry, Outbox
from protocol.envelope import ACK_TYP, DEFAULT_MAX_BYTES, verify
from protocol.errors import MalformedMessage, MisaddressedMessage, ProtocolError, UnknownKey
from protocol.messages import Ack, decode_collector_message
from protocol.topics import topic

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        outbox: Outbox,
        *,
        agent_id: str,
        site: str,
        config: MqttConfig,
        collector_key: OKPKey | None = None,
        on_command: Callable[[bytes], None] | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self._on_command = on_command  # gets the JWS of each verified command (agent.commands)
        self._outbox = outbox
        self._agent_id = agent_id
        self._site = site
        self._config = config
        self._collector_key = collector_key
        self._cmd_topic = topic(site, agent_id, "cmd")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._connected = False
        self._closing = False
        self._connect_failures = 0
        self._cursor = 0  # highest seq handed to paho (or skipped) since the last (re)connect
        self._inflight: dict[int, int] = {}  # paho mid -> seq, until the PUBACK
        self._handed: set[int] = set()  # the seqs in _inflight
        self._refused: set[int] = set()  # seqs the broker refused; retried at the next start
        self._sent: dict[int, float] = {}  # seq -> when its ack is due (monotonic), after PUBACK
        self._attempts: dict[int, int] = {}  # seq -> PUBACKs so far, for the backoff
        self._due: list[tuple[float, int]] = []  # heap of (due, seq); stale if _sent disagrees
        self.acked = 0  # entries removed by an acknowledgement (the collector's, or the PUBACK)
        self.refused = 0  # PUBACKs with a failure code
        self.republished = 0  # sent entries published again for want of an ack
        self.ignored = 0  # messages on the cmd topic dropped unverified or misaddressed
        self._v5 = config.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=agent_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            # 3.1.1: a persistent session (v5 asks for it in connect_async below)
            clean_session=None if self._v5 else False,
        )
        client.max_inflight_messages_set(config.max_inflight)
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        client.on_connect = self._paho_connect
        client.on_connect_fail = self._paho_connect_fail
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        if tls is not None:  # mutual TLS: the certificate's CN (agent_id) is the MQTT username
            client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.cert), keyfile=str(tls.key))
        self._client = client
        if collector_key is None:
            log.warning(
                "no collector key pinned (agent not enrolled, no collector_key_file): messages "
                "leave the outbox on the broker's PUBACK, so delivery is only broker-acknowledged"
            )

    # -- paho's network thread: hand everything to the event loop ------------------------------

    def _call(self, handler: Any, *args: Any) -> None:
        if self._loop is None:  # paho's thread is started by run(), which sets the loop first
            raise RuntimeError("MQTT callback before the publisher runs")
        self._loop.call_soon_threadsafe(handler, *args)

    def _paho_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if self._collector_key is not None and not reason.is_failure:
            client.subscribe(self._cmd_topic, qos=1)
        self._call(self._on_connect, bool(flags.session_present), reason)

    def _paho_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self._call(self._on_connect_fail)

    def _paho_disconnect(
        self, _c: mqtt.Client, _u: Any, _flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._call(self._on_disconnect, reason)

    def _paho_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any
    ) -> None:
        self._call(self._on_publish, mid, reason)

    def _paho_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._call(self._on_collector_message, bytes(msg.payload))

    # -- event loop thread ---------------------------------------------------------------------

    def _on_connect(self, session_present: bool, reason: ReasonCode) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%d refused the connection: %s",
                self._config.host,
                self._config.port,
                reason.getName(),
            )
            return
        log.info(
            "connected to broker %s:%d (session present: %s, %d messages in the outbox)",
            self._config.host,
            self._config.port,
            session_present,
            len(self._outbox),
        )
        self._connected = True
        self._connect_failures = 0
        self._cursor = 0  # republish whatever is still in the outbox, not in flight or refused
        self._wake.set()

    def _on_connect_fail(self) -> None:
        self._connect_failures += 1
        if self._connect_failures == 1:
            log.warning(
                "cannot reach broker %s:%d; messages stay in the outbox, retrying with backoff",
                self._config.host,
                self._config.port,
            )

    def _on_disconnect(self, reason: ReasonCode) -> None:
        if self._connected and not self._closing:
            log.warning(
                "lost the broker connection (%s); messages stay in the outbox",
                reason.getName(),
            )
        self._connected = False

    def _on_publish(self, mid: int, reason: ReasonCode) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        self._handed.discard(seq)
        if reason.is_failure:
            self.refused += 1
            self._refused.add(seq)
            log.warning(
                "broker refused message seq %d (%s); kept in the outbox and retried at the next "
                "start; check the broker ACL for %s",
                seq,
                reason.getName(),
                self._agent_id,
            )
        elif self._collector_key is None:
            self._outbox.remove(seq)
            self.acked += 1
        elif seq in self._outbox:  # not acknowledged by the collector meanwhile
            attempts = self._attempts.get(seq, 0) + 1
            wait = self._config.ack_timeout_s * 2 ** (attempts - 1)
            due = time.monotonic() + min(wait, self._config.ack_timeout_max_s)
            self._attempts[seq] = attempts
            self._sent[seq] = due
            heapq.heappush(self._due, (due, seq))
        self._wake.set()

    def _resolve(self, kid: str) -> OKPKey:
        if self._collector_key is None:  # no subscription without it
            raise UnknownKey(f"key {kid}: no collector key is pinned")
        if kid != self._collector_key.thumbprint():
            raise UnknownKey(f"key {kid} is not the pinned collector key")
        return self._collector_key

    def _on_collector_message(self, payload: bytes) -> None:
        try:
            verified = verify(payload, self._resolve, DEFAULT_MAX_BYTES)
            message = decode_collector_message(verified.payload)
            if (message.agent_id, message.site) != (self._agent_id, self._site):
                raise MisaddressedMessage(f"{message.site}/{message.agent_id} is not this agent")
            if isinstance(message, Ack) and verified.typ != ACK_TYP:
                raise MalformedMessage(f"an ack's typ is {ACK_TYP}, not {verified.typ!r}")
        except ProtocolError as exc:
            self.ignored += 1
            log.warning("ignored a message on %s: %s: %s", self._cmd_topic, exc.reason, exc)
            return
        if not isinstance(message, Ack):
            if self._on_command is not None:
                self._on_command(payload)  # verified again, in full, by the executor
            else:
                log.warning("ignored command %s: no executor", message.command_id)
            return
        for low, high in message.ranges:
            for entry in self._outbox.after(low - 1, high - low + 1):
                if entry.seq > high:
                    break
                self._sent.pop(entry.seq, None)
                self._attempts.pop(entry.seq, None)
                self._refused.discard(entry.seq)
                self.acked += self._outbox.remove(entry.seq)
        self._wake.set()

    def wake(self) -> None:
        """New entries are in the outbox."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def drained(self) -> bool:
        """Nothing in flight and nothing left to publish or to be acknowledged (refused entries
        do not count)."""
        return not self._inflight and len(self._outbox) == len(self._refused)

    def _room(self) -> bool:
        return self._connected and len(self._inflight) < self._config.max_inflight

    def _next_due(self) -> float | None:
        """Seconds until the earliest sent entry is due again; None when nothing can be sent."""
        if not self._due or not self._room():
            return None
        return max(0.0, self._due[0][0] - time.monotonic())

    def _fill(self) -> None:
        now = time.monotonic()
        while self._room() and self._due and self._due[0][0] <= now:
            due, seq = heapq.heappop(self._due)
            if self._sent.get(seq) != due:
                continue  # acknowledged, or rescheduled
            del self._sent[seq]
            entry = self._outbox.get(seq)
            if entry is None:  # a heartbeat dropped by a full outbox meanwhile
                self._attempts.pop(seq, None)
            else:
                self.republished += 1
                self._publish(entry)
        window = self._config.max_inflight
        while self._room():
            batch = self._outbox.after(self._cursor, window - len(self._inflight))
            if not batch:
                return
            for entry in batch:
                self._cursor = entry.seq
                if (
                    entry.seq in self._handed
                    or entry.seq in self._refused
                    or entry.seq in self._sent
                ):
                    continue
                self._publish(entry)

    def _publish(self, entry: Entry) -> None:
        data = self._outbox.read(entry)
        if data is None:  # a heartbeat dropped (or an entry acknowledged) meanwhile
            return
        name = topic(self._site, self._agent_id, entry.channel)
        info = self._client.publish(name, data, qos=1)
        # paho keeps a QoS 1 message it could not send yet and sends it on reconnect
        self._inflight[info.mid] = entry.seq
        self._handed.add(entry.seq)

    async def run(self) -> None:
        """Connect and drain until cancelled; then disconnect and stop paho's thread."""
        self._loop = asyncio.get_running_loop()
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._config.session_expiry_s
            self._client.connect_async(
                self._config.host,
                self._config.port,
                keepalive=self._config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:  # 3.1.1: no properties, the session kept by clean_session=False
            self._client.connect_async(
                self._config.host, self._config.port, keepalive=self._config.keepalive_s
            )
        self._client.loop_start()
        try:
            while True:
                try:
                    async with asyncio.timeout(self._next_due()):
                        await self._wake.wait()
                except TimeoutError:
                    pass  # a sent entry is due for republishing
                self._wake.clear()
                self._fill()
        finally:
            self._closing = True
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
            self._connected = False

    async def wait_drained(self) -> None:
        """Return once the outbox is empty and nothing is in flight (wrap in a timeout)."""
        while not self.drained:
            self._wake.set()
            await asyncio.sleep(0.02)
