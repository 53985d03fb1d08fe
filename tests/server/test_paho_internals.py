"""The collector's MQTT client overrides paho 2.x internals for throughput
(server/ingest/subscriber.py, ``_BufferedClient``). A paho release that changes them must fail
here, loudly, rather than corrupt MQTT framing or deliveries at run time."""

from __future__ import annotations

import inspect
import struct

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from server.ingest.subscriber import _BufferedClient


def test_the_paho_internals_the_collector_relies_on_are_unchanged() -> None:
    expected = {
        "_sock_recv": ["self", "bufsize"],
        "_sock_close": ["self"],
        "_packet_queue": ["self", "command", "packet", "mid", "qos", "info"],
        "loop_read": ["self", "max_packets"],
        "_handle_publish": ["self"],
        "_handle_on_message": ["self", "message"],
    }
    for name, params in expected.items():
        method = getattr(mqtt.Client, name)
        assert list(inspect.signature(method).parameters) == params, name


def _publish(command: int, topic: bytes, mid: int, properties: bytes, payload: bytes) -> bytes:
    """A PUBLISH packet after its fixed header, as paho keeps it in ``_in_packet``."""
    ident = struct.pack("!H", mid) if command & 0x06 else b""
    return struct.pack("!H", len(topic)) + topic + ident + properties + payload


_PACKETS = [
    # QoS 1, no properties: the collector's fast path
    (0x32, b"camwarden/v1/site-1/pi-1/report", 7, b"\x00", b"header.payload.signature"),
    (0x3B, b"camwarden/v1/site-1/pi-1/report", 65535, b"\x00", b""),  # dup, retain
    (0x32, "camwarden/v1/hà-nội/pi-1/report".encode(), 1, b"\x00", b"x" * 3000),
    # paho's own path: properties (payload format indicator, user property), QoS 0
    (0x32, b"camwarden/v1/site-1/pi-1/report", 9, b"\x02\x01\x01", b"p"),
    (0x32, b"t", 3, b"\x09\x26\x00\x01k\x00\x01v\x01\x01", b"p"),
    (0x30, b"camwarden/v1/site-1/pi-1/heartbeat", 0, b"\x00", b"p"),
]


@pytest.mark.parametrize("packet", _PACKETS)
def test_fast_publish_path_delivers_what_paho_delivers(
    packet: tuple[int, bytes, int, bytes, bytes],
) -> None:
    command = packet[0]
    delivered: list[list[object]] = []
    for cls in (mqtt.Client, _BufferedClient):
        client = cls(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
        seen: list[mqtt.MQTTMessage] = []
        client.on_message = lambda _c, _u, msg, seen=seen: seen.append(msg)
        client._in_packet["command"] = command
        client._in_packet["packet"] = bytearray(_publish(*packet))  # as paho reads it
        assert client._handle_publish() == mqtt.MQTT_ERR_SUCCESS
        [msg] = seen
        props = msg.properties
        delivered.append(
            [
                msg.topic,
                msg.payload,
                type(msg.payload),
                msg.mid,
                msg.qos,
                msg.dup,
                msg.retain,
                msg.state,
                msg.info.mid,
                None if props is None or props.isEmpty() else props.json(),  # type: ignore[no-untyped-call]
            ]
        )
    paho, ours = delivered
    assert ours == paho
