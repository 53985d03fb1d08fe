"""A real MQTT subscriber for tests of the agent, the collector and both together."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Subscriber:
    """A real MQTT v5 subscriber with a persistent session, collecting (topic, payload) pairs.

    Ready once the broker acknowledged the subscription, so nothing published after the
    constructor returns is missed.
    """

    def __init__(
        self, port: int, client_id: str = "test-sub", topic: str = "camwarden/v1/#"
    ) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._topic = topic
        self._lock = threading.Lock()
        self._ready = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.on_connect = self._connected
        client.on_subscribe = lambda *_: self._ready.set()
        client.on_message = self._message
        client.reconnect_delay_set(1, 1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, clean_start=False, properties=props)
        client.loop_start()
        self.client = client
        if not self._ready.wait(10):
            raise TimeoutError("subscriber did not connect")

    def _connected(self, c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        c.subscribe(self._topic, qos=1)

    def _message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload)))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
