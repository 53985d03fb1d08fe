"""The collector's MQTT client overrides three paho 2.x internals for throughput
(server/ingest/subscriber.py, ``_BufferedClient``). A paho release that changes them must fail
here, loudly, rather than corrupt MQTT framing at run time."""

from __future__ import annotations

import inspect

import paho.mqtt.client as mqtt


def test_the_paho_internals_the_collector_relies_on_are_unchanged() -> None:
    expected = {
        "_sock_recv": ["self", "bufsize"],
        "_sock_close": ["self"],
        "_packet_queue": ["self", "command", "packet", "mid", "qos", "info"],
        "loop_read": ["self", "max_packets"],
    }
    for name, params in expected.items():
        method = getattr(mqtt.Client, name)
        assert list(inspect.signature(method).parameters) == params, name
