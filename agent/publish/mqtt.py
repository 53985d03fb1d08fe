"""The MQTT publisher: drains the outbox to the broker. The only module of the agent using paho.

paho runs its network loop in its own thread (``loop_start``), reconnecting with exponential
backoff; its callbacks hand events to the asyncio loop with ``call_soon_threadsafe``, so all
bookkeeping below happens on the event loop thread.

* MQTT v5, ``clean_start=False`` with a session expiry interval (a persistent session), QoS 1.
* Entries are published in seq order, at most ``max_inflight`` unacknowledged at a time.
* An entry is removed from the outbox only on a PUBACK with a success reason code. A failure
  code (e.g. 135 Not authorized) keeps the entry and logs a WARNING; the entry is retried at the
  next start of the agent (after the operator fixed the broker ACL), not on every reconnect:
  mosquitto 2.0 resets the connection after refusing a publish in a persistent session, so a
  retry per reconnect would loop. paho itself resends unacknowledged messages after a reconnect.
* After a restart everything still in the outbox is published again; the collector
  deduplicates by (agent_id, seq).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig
from agent.publish.outbox import Outbox
from protocol.topics import topic

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, outbox: Outbox, *, agent_id: str, site: str, config: MqttConfig) -> None:
        self._outbox = outbox
        self._agent_id = agent_id
        self._site = site
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._connected = False
        self._closing = False
        self._connect_failures = 0
        self._cursor = 0  # highest seq handed to paho (or skipped) since the last (re)connect
        self._inflight: dict[int, int] = {}  # paho mid -> seq, until the PUBACK
        self._handed: set[int] = set()  # the seqs in _inflight
        self._refused: set[int] = set()  # seqs the broker refused; retried at the next start
        self.acked = 0
        self.refused = 0
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=agent_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(config.max_inflight)
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        client.on_connect = self._paho_connect
        client.on_connect_fail = self._paho_connect_fail
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        self._client = client

    # -- paho's network thread: hand everything to the event loop ------------------------------

    def _call(self, handler: Any, *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(handler, *args)

    def _paho_connect(
        self, _c: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
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
        else:
            self._outbox.remove(seq)
            self.acked += 1
        self._wake.set()

    def wake(self) -> None:
        """New entries are in the outbox."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def drained(self) -> bool:
        """Nothing in flight and nothing left to publish (refused entries do not count)."""
        return not self._inflight and len(self._outbox) == len(self._refused)

    def _fill(self) -> None:
        window = self._config.max_inflight
        while self._connected and len(self._inflight) < window:
            batch = self._outbox.after(self._cursor, window - len(self._inflight))
            if not batch:
                return
            for entry in batch:
                self._cursor = entry.seq
                if entry.seq in self._handed or entry.seq in self._refused:
                    continue
                data = self._outbox.read(entry)
                if data is None:  # a heartbeat dropped meanwhile
                    continue
                name = topic(self._site, self._agent_id, entry.channel)
                info = self._client.publish(name, data, qos=1)
                # paho keeps a QoS 1 message it could not send yet and sends it on reconnect
                self._inflight[info.mid] = entry.seq
                self._handed.add(entry.seq)

    async def run(self) -> None:
        """Connect and drain until cancelled; then disconnect and stop paho's thread."""
        self._loop = asyncio.get_running_loop()
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
        try:
            while True:
                await self._wake.wait()
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
