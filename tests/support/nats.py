"""A NATS cluster with mutual TLS on loopback, as a deployment runs it (docs/adr/0032): every
client shows a certificate from the test CA and the nodes map its subject to a user of the
shared authorization file (``verify_and_map``); agents speak MQTT 3.1.1 to a node."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from lab.cluster import NatsCluster
from server.broker_roles import nats_authorization
from server.pki import write_pem
from tests.packaging.test_broker_acl import make_pki

T = TypeVar("T")
HOST = "127.0.0.1"


def _tls(pki: Path) -> str:
    files = f'cert_file: "{pki}/server.crt", key_file: "{pki}/server.key"'
    return f'tls {{ {files}, ca_file: "{pki}/ca.crt", verify_and_map: true, timeout: 5 }}'


def tls_cluster(
    work: Path, agents: Collection[str], approved: Collection[str], size: int = 3
) -> NatsCluster:
    """A cluster (not started) whose clients need certificates of ``work/pki``; the CA issues
    one per name of ``agents``, and the authorization lets the collector and ``approved`` in."""
    pki = work / "pki"
    ca = make_pki(pki)
    for agent_id in agents:
        write_pem(ca.issue_agent_certificate(agent_id), pki / agent_id)
    cluster = NatsCluster(work / "nats", size, extra=_tls(pki), mqtt_extra=_tls(pki))
    cluster.auth_file.write_text(nats_authorization(approved))
    return cluster


def pki_of(cluster: NatsCluster) -> Path:
    return cluster.workdir.parent / "pki"


def reload_commands(cluster: NatsCluster) -> list[list[str]]:
    """What an operator configures as ``[broker] reload_commands``: one per node."""
    binary = shutil.which("nats-server") or "nats-server"
    return [[binary, "--signal", f"reload={node.pid_file}"] for node in cluster.nodes]


@dataclass
class Peer:
    """An MQTT 3.1.1 client with a certificate of the test CA, recording what the node said."""

    name: str
    client: mqtt.Client
    connects: list[ReasonCode] = field(default_factory=list)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        return self.wait(lambda: self.subacks.get(mid))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait(self, get: Callable[[], T | None], timeout: float = 20.0) -> T:
        with self.changed:
            if not self.changed.wait_for(lambda: get() is not None, timeout):
                raise TimeoutError(f"{self.name}: no answer from the node")
            value = get()
            assert value is not None
            return value

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def peer(cluster: NatsCluster, name: str, node: int) -> Peer:
    """``name``'s certificate on node ``node``'s MQTT listener; returns once the node answered
    the CONNECT (``connects[-1]``), accepted or not. paho retries a refused connection."""
    pki = pki_of(cluster)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{name}-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    client.tls_set(
        ca_certs=str(pki / "ca.crt"),
        certfile=str(pki / f"{name}.crt"),
        keyfile=str(pki / f"{name}.key"),
    )
    client.reconnect_delay_set(1, 2)
    p = Peer(name, client)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        with p.changed:
            p.connects.append(rc)
            p.changed.notify_all()

    def on_subscribe(
        _c: mqtt.Client, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        with p.changed:
            p.subacks[mid] = rcs
            p.changed.notify_all()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with p.changed:
            p.received.append((msg.topic, bytes(msg.payload)))
            p.changed.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect_async(HOST, cluster.nodes[node].mqtt_port, keepalive=10)
    client.loop_start()
    p.wait(lambda: p.connects or None)
    return p


def settle(seconds: float = 0.5) -> None:
    """Let deliveries in flight arrive before asserting that something did not."""
    time.sleep(seconds)
