from __future__ import annotations

import subprocess

import pytest

from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def test_broker_round_trip_with_real_clients(mosquitto: Mosquitto) -> None:
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            mosquitto.host,
            "-p",
            str(mosquitto.port),
            "-t",
            "t/#",
            "-C",
            "1",
            "-W",
            "5",
            "-V",
            "mqttv5",
        ],
        stdout=subprocess.PIPE,
    )
    # retained publish so the subscriber gets it regardless of start-up order
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            mosquitto.host,
            "-p",
            str(mosquitto.port),
            "-t",
            "t/x",
            "-m",
            "hi",
            "-r",
            "-q",
            "1",
            "-V",
            "mqttv5",
        ],
        check=True,
    )
    out, _ = sub.communicate(timeout=10)
    assert out.strip() == b"hi"
    mosquitto.restart()  # persistence keeps the retained message across a restart
    got = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            mosquitto.host,
            "-p",
            str(mosquitto.port),
            "-t",
            "t/x",
            "-C",
            "1",
            "-W",
            "5",
        ],
        capture_output=True,
        check=True,
    )
    assert got.stdout.strip() == b"hi"
