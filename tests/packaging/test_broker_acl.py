"""packaging/mosquitto on a real Mosquitto: mutual TLS, CN as username, per-agent roles.

The shipped config and dynamic-security file are rendered to temp paths (only paths and the port
change), the test's PKI comes from server.pki and the agents' roles from server.broker_roles
talking to the plugin as the collector, so the files an operator deploys and the code the
collector runs are what is under test.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from server.broker_roles import BrokerRoles, BrokerRolesError, grant, mqtt_transport
from server.certs import AgentCertificates
from server.collector import background_jobs
from server.config import AlertsConfig, MqttConfig, RetentionConfig, ServerConfig
from server.pki import CertificateAuthority, Issued, write_pem
from server.storage import Repository
from tests.agent.support import wait_for
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.support.mosquitto import free_port, wait_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "packaging" / "mosquitto" / "camwarden.conf"
DYNSEC = ROOT / "packaging" / "mosquitto" / "dynamic-security.json"
PACKAGED_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
PACKAGED_STATE = "/var/lib/mosquitto/camwarden-dynamic-security.json"
NOT_AUTHORIZED = 135
REVOKED = "SSLV3_ALERT_CERTIFICATE_REVOKED"  # TLS alert 44, as OpenSSL names it
HOST = "127.0.0.1"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Broker:
    port: int
    pki: Path
    log: Path
    config: Path

    def collector(self) -> MqttConfig:
        """The collector's [mqtt] section for this broker."""
        return MqttConfig(
            port=self.port,
            client_id=f"collector-{time.monotonic_ns()}",
            tls=True,
            ca_file=str(self.pki / "ca.crt"),
            cert_file=str(self.pki / "collector.crt"),
            key_file=str(self.pki / "collector.key"),
            dynamic_security=True,
        )

    def roles(self) -> BrokerRoles:
        """The agents' roles on this broker, as the collector keeps them."""
        return BrokerRoles(mqtt_transport(self.collector()))


def plugin() -> str:
    """The dynamic-security plugin of this machine's mosquitto package (the shipped config names
    amd64's)."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    if not found:
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    return str(found[0])


def render(conf: str, pki: Path, state: Path, port: int) -> str:
    """The shipped config with its deployment paths replaced by the test's."""
    replaced = (
        conf.replace("/etc/mosquitto/certs/camwarden/", f"{pki}/")
        .replace(PACKAGED_STATE, str(state))
        .replace(PACKAGED_PLUGIN, plugin())
        .replace("listener 8883\n", f"listener {port} {HOST}\n")
    )
    assert replaced.count(str(pki)) == 4
    assert f"plugin_opt_config_file {state}\n" in replaced
    assert f"listener {port} {HOST}" in replaced
    return replaced


def configure_broker(work: Path, pki: Path, *, acl: bool = True) -> Broker:
    """The shipped config, PKI from ``pki``, on a free loopback port, in ``work``; with
    ``acl=False`` the misconfiguration of certificates required but every topic open to all
    (no dynamic-security plugin)."""
    state = work / "dynamic-security.json"
    shutil.copy(DYNSEC, state)
    port = free_port(HOST)
    conf = render(CONF.read_text(), pki, state, port)
    if not acl:
        conf = "\n".join(line for line in conf.split("\n") if not line.startswith("plugin"))
    log = work / "mosquitto.log"
    extra = [f"persistence_location {work}/", f"log_dest file {log}", "log_type all"]
    if os.geteuid() == 0:
        extra.append("user root")  # the broker keeps the caller's user, to read the temp dir
    config = work / "mosquitto.conf"
    config.write_text("\n".join(extra) + "\n" + conf)
    return Broker(port, pki, log, config)


def run_broker(broker: Broker, approved: Collection[str] = ()) -> subprocess.Popen[bytes]:
    """Start (or restart, after :func:`stop_broker`) the configured broker, with the roles of
    the ``approved`` agents (what the collector's sync gives them)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed (scripts/install-system-deps.sh)")
    proc = subprocess.Popen([binary, "-c", str(broker.config)], stderr=subprocess.PIPE)
    wait_port(HOST, broker.port)
    if approved:
        broker.roles().sync(lambda: approved)
    return proc


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def make_pki(pki: Path) -> CertificateAuthority:
    """A CA (with its empty CRL), the broker's certificate and the collector's."""
    ca = CertificateAuthority.create()
    ca.save(pki)
    write_pem(
        ca.issue_server_certificate(["localhost"], [ipaddress.ip_address(HOST)]), pki / "server"
    )
    write_pem(ca.issue_collector_certificate(), pki / "collector")
    return ca


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    work = tmp_path_factory.mktemp("broker")
    pki = work / "pki"
    ca = make_pki(pki)
    for agent in ("agent-a", "agent-b", "camwarden-collector.evil"):
        write_pem(ca.issue_agent_certificate(agent), pki / agent)
    stranger = CertificateAuthority.create("some other CA")
    write_pem(stranger.issue_agent_certificate("agent-a"), pki / "stranger-agent-a")
    write_pem(stranger.issue_collector_certificate(), pki / "stranger-collector")
    configured = configure_broker(work, pki)
    proc = run_broker(configured, ["agent-a", "agent-b", "camwarden-collector.evil"])
    try:
        yield configured
    finally:
        stop_broker(proc)


@dataclass
class Peer:
    """A paho-mqtt 2.x MQTT v5 client that records what the broker answered."""

    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes = b"x") -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        return self._wait(lambda: self.acks.get(info.mid))

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        return self._wait(lambda: self.subacks.get(mid))

    def messages(self, settle: float = 0.5) -> list[tuple[str, bytes]]:
        time.sleep(settle)
        with self.changed:
            return list(self.received)

    def _wait(self, get: Callable[[], T | None], timeout: float = 5.0) -> T:
        with self.changed:
            if not self.changed.wait_for(lambda: get() is not None, timeout):
                raise TimeoutError("the broker did not answer")
            value = get()
            assert value is not None
            return value


def client(broker: Broker, name: str | None, *, ca: Path | None = None) -> mqtt.Client:
    """A client presenting ``<name>.crt`` (none if ``name`` is None), trusting ``ca``."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-{name}-{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5,
    )
    certfile = keyfile = None
    if name is not None:
        certfile, keyfile = str(broker.pki / f"{name}.crt"), str(broker.pki / f"{name}.key")
    c.tls_set(ca_certs=str(ca or broker.pki / "ca.crt"), certfile=certfile, keyfile=keyfile)
    return c


@contextmanager
def peer(broker: Broker, name: str) -> Iterator[Peer]:
    p = Peer(client(broker, name))

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, pr: object) -> None:
        if not rc.is_failure:
            p.connected.set()

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: ReasonCode, pr: object) -> None:
        with p.changed:
            p.acks[mid] = rc
            p.changed.notify_all()

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], pr: object
    ) -> None:
        with p.changed:
            p.subacks[mid] = rcs
            p.changed.notify_all()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with p.changed:
            p.received.append((msg.topic, bytes(msg.payload)))
            p.changed.notify_all()

    def on_disconnect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, pr: object) -> None:
        p.disconnected.set()

    p.client.on_connect = on_connect
    p.client.on_disconnect = on_disconnect
    p.client.on_publish = on_publish
    p.client.on_subscribe = on_subscribe
    p.client.on_message = on_message
    p.client.connect(HOST, broker.port)
    p.client.loop_start()
    try:
        assert p.connected.wait(5), f"{name} could not connect"
        yield p
    finally:
        p.client.disconnect()
        p.client.loop_stop()


def refused(broker: Broker, name: str | None, *, ca: Path | None = None) -> str:
    """How the broker refused this client, or "" if it accepted the connection."""
    c = client(broker, name, ca=ca)
    outcome: list[str] = []

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, pr: object) -> None:
        outcome.append("" if not rc.is_failure else f"CONNACK {rc}")

    def on_disconnect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, pr: object) -> None:
        outcome.append(f"disconnected: {rc}")

    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    try:
        c.connect(HOST, broker.port)
    except (ssl.SSLError, OSError) as exc:
        return f"TLS: {exc}"
    try:
        deadline = time.monotonic() + 5
        while not outcome and time.monotonic() < deadline:
            rc = c.loop(0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                outcome.append(f"loop: {mqtt.error_string(rc)}")
    finally:
        c.disconnect()
        sock = c.socket()
        if sock is not None:
            sock.close()
    assert outcome, "no answer from the broker"
    return outcome[0]


def tls_alert(broker: Broker, name: str) -> str:
    """The alert the broker answers this client's certificate with ("" if it is accepted), in
    TLS 1.2, where the verdict is part of the handshake (TLS 1.3 gives it after, as an EOF)."""
    context = ssl.create_default_context(cafile=broker.pki / "ca.crt")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(broker.pki / f"{name}.crt", broker.pki / f"{name}.key")
    with socket.create_connection((HOST, broker.port), timeout=5) as raw:
        try:
            context.wrap_socket(raw, server_hostname="localhost").close()
        except ssl.SSLError as exc:
            return str(exc.reason)
    return ""


def topic(agent: str, channel: str, site: str = "site1") -> str:
    return f"camwarden/v1/{site}/{agent}/{channel}"


@pytest.mark.parametrize("channel", ["report", "heartbeat", "cmd-result"])
def test_agent_publishes_to_its_own_channels(broker: Broker, channel: str) -> None:
    with peer(broker, "agent-a") as a:
        assert not a.publish(topic("agent-a", channel)).is_failure


def test_agent_cannot_publish_as_another_agent(broker: Broker) -> None:
    with peer(broker, "collector") as collector, peer(broker, "agent-a") as a:
        collector.subscribe("$share/collectors/camwarden/v1/+/+/report")
        rc = a.publish(topic("agent-b", "report"), b"forged")
        assert rc.value == NOT_AUTHORIZED, rc
        assert str(rc) == "Not authorized"
        # nor write its own command channel, nor outside the camwarden tree
        assert a.publish(topic("agent-a", "cmd")).value == NOT_AUTHORIZED
        assert a.publish("camwarden/v1/site1/agent-a/report/x").value == NOT_AUTHORIZED
        assert a.publish("$SYS/broker/fake").value == NOT_AUTHORIZED
        assert collector.messages() == []


def test_agent_cannot_read_another_agents_commands(broker: Broker) -> None:
    """The dynamic-security plugin checks SUBSCRIBE: a foreign filter gets SUBACK 135."""
    spying = [
        topic("agent-b", "cmd"),
        "camwarden/v1/+/+/cmd",
        "camwarden/#",
        "#",
        "$share/g/camwarden/v1/+/+/report",
        "$SYS/#",
        "$CONTROL/dynamic-security/v1/response",
    ]
    with (
        peer(broker, "collector") as collector,
        peer(broker, "agent-a") as a,
        peer(broker, "agent-b") as b,
    ):
        for pattern in spying:
            assert [rc.value for rc in a.subscribe(pattern)] == [NOT_AUTHORIZED], pattern
        assert [rc.value for rc in b.subscribe(topic("agent-b", "cmd"))] == [1]
        assert not collector.publish(topic("agent-b", "cmd"), b"for b").is_failure
        assert not b.publish(topic("agent-b", "report"), b"b's report").is_failure
        assert b.messages() == [(topic("agent-b", "cmd"), b"for b")]
        assert a.messages(settle=0) == []


@pytest.mark.parametrize(
    "group",
    [
        "$share/collectors/camwarden/v1/+/+/report",
        "$share/+/camwarden/v1/+/+/report",
        "$share/collectors/#",
        "$share/collectors/camwarden/v1/site1/agent-b/report",
    ],
)
def test_agent_cannot_divert_the_collectors_shared_subscription(broker: Broker, group: str) -> None:
    """Mosquitto 2.0's acl_file granted this SUBSCRIBE, and the agent took every other report
    of the round robin (5 of 10 lost); the plugin refuses it, the collector gets all."""
    shared = "$share/collectors/camwarden/v1/+/+/report"
    with (
        peer(broker, "collector") as collector,
        peer(broker, "agent-a") as a,
        peer(broker, "agent-b") as b,
    ):
        assert [rc.value for rc in collector.subscribe(shared)] == [1]
        assert [rc.value for rc in a.subscribe(group)] == [NOT_AUTHORIZED]
        for i in range(10):
            assert not b.publish(topic("agent-b", "report"), str(i).encode()).is_failure
        wait_for(lambda: len(collector.messages(settle=0)) >= 10)
        assert a.messages() == []
        assert sorted(p for _, p in collector.messages(settle=0)) == [
            str(i).encode() for i in range(10)
        ]


def test_collector_reads_through_the_shared_subscription(broker: Broker) -> None:
    with peer(broker, "collector") as collector, peer(broker, "agent-a") as a:
        for channel in ("report", "heartbeat", "cmd-result"):
            granted = collector.subscribe(f"$share/collectors/camwarden/v1/+/+/{channel}")
            assert [rc.value for rc in granted] == [1]
        for channel in ("report", "heartbeat", "cmd-result"):
            assert not a.publish(topic("agent-a", channel), channel.encode()).is_failure
        got = sorted(collector.messages())
        assert got == sorted(
            (topic("agent-a", ch), ch.encode()) for ch in ("report", "heartbeat", "cmd-result")
        )
        # the collector cannot forge an agent's report either
        assert collector.publish(topic("agent-a", "report")).value == NOT_AUTHORIZED


def test_an_agent_named_like_the_collector_gets_no_collector_rights(broker: Broker) -> None:
    with peer(broker, "camwarden-collector.evil") as evil, peer(broker, "agent-a") as a:
        evil.subscribe("camwarden/v1/+/+/report")
        assert not a.publish(topic("agent-a", "report")).is_failure
        assert evil.messages() == []
        assert evil.publish(topic("agent-a", "cmd")).value == NOT_AUTHORIZED


def test_client_without_certificate_is_refused(broker: Broker) -> None:
    assert refused(broker, None)


@pytest.mark.parametrize("name", ["stranger-agent-a", "stranger-collector"])
def test_certificate_from_another_ca_is_refused(broker: Broker, name: str) -> None:
    assert refused(broker, name)
    assert refused(broker, "agent-a") == ""  # the same client with our CA's cert gets in


def revocable(work: Path) -> tuple[Broker, AgentCertificates]:
    """A broker whose CA issues as the collector does on approval: agent-r (twice: its first
    certificate is kept as agent-r-old) and agent-s, each with its own key."""
    pki = work / "pki"
    make_pki(pki)
    certs = AgentCertificates(pki)
    for name, agent in (("agent-r-old", "agent-r"), ("agent-r", "agent-r"), ("agent-s", "agent-s")):
        key = ec.generate_private_key(ec.SECP256R1())
        certs.request(agent, key.public_key())
        assert certs.issue(agent)
        pem = certs.certificate(agent)
        assert pem is not None
        write_pem(Issued(x509.load_pem_x509_certificate(pem), key), pki / name)
    return configure_broker(work, pki), certs


def test_revoked_agent_is_refused_after_the_broker_reloads(tmp_path: Path) -> None:
    """Revoking (the status listener the CLI, the API and the dashboard share) puts every
    certificate of the agent on the CRL; Mosquitto 2.0.11 rereads ``crlfile`` on SIGHUP and then
    refuses them, while other agents get in. A connection made before stays up."""
    broker, certs = revocable(tmp_path)
    proc = run_broker(broker, ["agent-r", "agent-s"])
    try:
        assert [tls_alert(broker, n) for n in ("agent-r", "agent-r-old", "agent-s")] == [""] * 3
        with peer(broker, "agent-r") as live:
            certs.on_status("agent-r", "revoked")
            assert certs.certificate("agent-r") is None
            proc.send_signal(signal.SIGHUP)  # what camwarden-broker-crl.service has systemd do
            wait_for(lambda: "Reloading config" in broker.log.read_text())
            assert tls_alert(broker, "agent-r") == REVOKED
            assert tls_alert(broker, "agent-r-old") == REVOKED
            assert tls_alert(broker, "agent-s") == ""
            assert refused(broker, "agent-s") == ""
            assert not live.publish(topic("agent-r", "report")).is_failure
        # a second revocation replaces the CRL rather than piling up beside the first
        certs.on_status("agent-s", "revoked")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: broker.log.read_text().count("Reloading config") == 2)
        assert tls_alert(broker, "agent-s") == REVOKED
        assert refused(broker, "agent-s").startswith("disconnected")  # TLS 1.3, paho's view
        stop_broker(proc)
        proc = run_broker(broker)  # and the CRL holds from the start
        assert [tls_alert(broker, n) for n in ("agent-r", "agent-s", "collector")] == [
            REVOKED,
            REVOKED,
            "",
        ]
    finally:
        stop_broker(proc)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Broker]:
    """A broker of its own, whose plugin knows no agent yet; agent-n has a certificate."""
    pki = tmp_path / "pki"
    ca = make_pki(pki)
    write_pem(ca.issue_agent_certificate("agent-n"), pki / "agent-n")
    configured = configure_broker(tmp_path, pki)
    proc = run_broker(configured)
    try:
        yield configured
    finally:
        stop_broker(proc)


def test_approval_gives_the_agent_its_role_and_revocation_takes_it_and_the_connection(
    fresh: Broker,
) -> None:
    """``on_status`` is the listener the CLI, the operator API and the dashboard share."""
    roles = fresh.roles()
    own = topic("agent-n", "report")
    with peer(fresh, "agent-n") as n:  # a valid certificate, but the plugin does not know it
        assert n.publish(own).value == NOT_AUTHORIZED
        assert [rc.value for rc in n.subscribe(topic("agent-n", "cmd"))] == [NOT_AUTHORIZED]
    roles.on_status("agent-n", "approved")
    with peer(fresh, "collector") as collector, peer(fresh, "agent-n") as n:
        collector.subscribe("$share/collectors/camwarden/v1/+/+/report")
        assert [rc.value for rc in n.subscribe(topic("agent-n", "cmd"))] == [1]
        assert not n.publish(own, b"approved").is_failure
        assert n.publish(topic("agent-m", "report")).value == NOT_AUTHORIZED
        assert not collector.publish(topic("agent-n", "cmd"), b"do").is_failure
        wait_for(lambda: n.messages(settle=0) == [(topic("agent-n", "cmd"), b"do")])
        assert collector.messages() == [(own, b"approved")]
        roles.on_status("agent-n", "revoked")
        assert n.disconnected.wait(5), "the plugin did not disconnect the revoked agent"
        assert n.publish(own, b"revoked").value == NOT_AUTHORIZED  # paho reconnected
        assert collector.messages() == [(own, b"approved")]


def test_sync_repairs_what_the_broker_missed_and_is_idempotent(fresh: Broker) -> None:
    """An approval made while the broker was down, a revocation it never heard of: the
    collector's periodic sync makes the plugin hold exactly the approved agents."""
    roles = fresh.roles()
    roles.apply([*grant("agent-gone"), grant("agent-half")[0]])  # revoked since; role, no client
    assert (
        roles.sync(lambda: ["agent-n", "agent-half"]) == 5
    )  # n: role, client; half: client; gone: 2
    assert roles.sync(lambda: ["agent-n", "agent-half"]) == 0
    listed = roles.apply([{"command": "listRoles"}, {"command": "listClients"}])
    assert sorted(listed[0]["data"]["roles"]) == [
        "camwarden-agent-agent-half",
        "camwarden-agent-agent-n",
        "camwarden-broker-admin",
        "camwarden-collector",
    ]
    assert sorted(listed[1]["data"]["clients"]) == ["agent-half", "agent-n", "camwarden-collector"]
    with peer(fresh, "agent-n") as n:
        assert not n.publish(topic("agent-n", "heartbeat")).is_failure


def test_an_unreachable_broker_is_a_typed_error_and_approval_still_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = tmp_path / "pki"
    make_pki(pki)
    gone = configure_broker(tmp_path, pki)  # never started: nothing listens on its port
    roles = BrokerRoles(mqtt_transport(gone.collector(), timeout_s=2))
    with pytest.raises(BrokerRolesError):
        roles.sync(lambda: ["agent-n"])
    roles.on_status("agent-n", "approved")  # a status listener: logs, never raises
    assert "retries within" in caplog.text


def test_the_collectors_sync_job_brings_a_pre_approved_agent_to_the_broker(
    fresh: Broker, tmp_path: Path
) -> None:
    """Enrolling with a pre-approved token changes no status, so no listener runs; the job
    ``camwarden-server run`` starts (collector.background_jobs) gives the agent its role."""
    config = ServerConfig(
        state_dir=str(tmp_path / "collector"),
        mqtt=fresh.collector(),
        alerts=AlertsConfig(enabled=False),
        retention=RetentionConfig(enabled=False),
    )
    repo = Repository.open_migrated(config)
    try:
        enroll(repo, SimAgent("agent-n", site="site1"), approved=True)
        [job] = background_jobs(config, repo)
        assert job.name == "camwarden-broker-roles"
        job.start()
        try:
            with peer(fresh, "agent-n") as n:
                wait_for(lambda: not n.publish(topic("agent-n", "report")).is_failure)
        finally:
            job.stop()
    finally:
        repo.close()
