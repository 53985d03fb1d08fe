"""The broker locked down end to end, on a real Mosquitto with the shipped mTLS config.

Enroll two agents (each makes its MQTT TLS key and sends only the public half), approve them
with the CLI (which issues their certificates from the collector's CA and gives them their
roles in the broker's dynamic-security plugin), fetch the certificates by signed challenge, and
run: the collector connects as camwarden-collector, agent a1's messages are stored, and agent
b1 publishing as a1 gets PUBACK 135 "Not authorized". With a misconfigured broker that has no
access control, the collector still rejects the spoofed message by its signature: b1's own
message on a1's topic is misaddressed, a1's name signed by b1's key is unknown_key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import func, select

from agent.cli import main as agent_main
from agent.trust.certificate import PURPOSE
from protocol.envelope import sign
from protocol.keys import load_private_key
from server.cli import main as server_main
from server.storage import Repository
from server.storage.models import Message
from tests.agent.support import AGENT, wait_for
from tests.packaging.test_broker_acl import (
    NOT_AUTHORIZED,
    Broker,
    configure_broker,
    make_pki,
    peer,
    run_broker,
    stop_broker,
)
from tests.support.agents import SimAgent
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.integration

SERVER = [sys.executable, "-m", "server"]
T = TypeVar("T")


@dataclass
class Site:
    tmp: Path
    broker: Broker
    server_config: Path
    http_port: int
    collector: subprocess.Popen[bytes]
    acl: bool

    def server(self, *args: str) -> int:
        return server_main(["--config", str(self.server_config), *args])

    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def read(self, what: Callable[[Repository], T]) -> T:
        repo = Repository.open(f"sqlite:///{self.tmp / 'collector' / 'collector.db'}")
        try:
            return what(repo)
        finally:
            repo.close()


@pytest.fixture(params=[True, False], ids=["acl", "no-acl"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    pki = tmp_path / "pki"
    make_pki(pki)
    broker = configure_broker(tmp_path, pki, acl=request.param)
    broker_proc = run_broker(broker)
    http_port = free_port()
    config = tmp_path / "server.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "collector"}"\n'
        f"[mqtt]\nport = {broker.port}\ntls = true\n"
        f'ca_file = "{pki / "ca.crt"}"\ncert_file = "{pki / "collector.crt"}"\n'
        f'key_file = "{pki / "collector.key"}"\n'
        f"dynamic_security = {'true' if request.param else 'false'}\n"
        f'[http]\nport = {http_port}\n[pki]\nca_dir = "{pki}"\n'
        "[ingest]\nbatch_latency_s = 0.05\n"
    )
    log = (tmp_path / "collector.log").open("wb")
    collector = subprocess.Popen([*SERVER, "--config", str(config), "run"], stderr=log)
    try:
        # healthy means the collector holds its MQTT session: it got in as camwarden-collector
        wait_for(lambda: healthy(http_port), timeout=30)
        yield Site(tmp_path, broker, config, http_port, collector, request.param)
    finally:
        collector.terminate()
        collector.wait(10)
        stop_broker(broker_proc)
        log.close()


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def agent_home(site: Site, agent_id: str) -> Path:
    home = site.tmp / agent_id
    home.mkdir()
    config = home / "agent.toml"
    config.write_text(
        f'agent_id = "{agent_id}"\nsite = "s1"\nkey_file = "{home / "agent.key"}"\n'
        f'state_dir = "{home / "state"}"\ncollector_url = "{site.url()}"\n'
        f"[mqtt]\nport = {site.broker.port}\ntls = true\nreconnect_max_s = 1\n"
        "ack_timeout_s = 1\n[intervals]\nheartbeat_s = 0.2\nreport_s = 0.5\n"
    )
    assert agent_main(["keygen", "--key", str(home / "agent.key")]) == 0
    return config


def token(site: Site, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert site.server("tokens", "create", "--site", "s1") == 0
    return capsys.readouterr().out.strip()


def test_enrolled_and_approved_agents_on_the_locked_broker(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    a1 = agent_home(site, "a1")
    state = a1.parent / "state"
    assert agent_main(["enroll", "--token", token(site, capsys), "--config", str(a1)]) == 0
    assert "MQTT certificate: not yet" in capsys.readouterr().out
    assert (state / "mqtt.key").stat().st_mode & 0o777 == 0o600
    assert agent_main(["certificate", "--config", str(a1)]) == 1  # pending: nothing to fetch
    assert site.server("agents", "approve", "a1") == 0
    assert agent_main(["certificate", "--config", str(a1)]) == 0
    assert (state / "mqtt.crt").exists()
    key = (state / "mqtt.key").read_bytes()  # the TLS key stayed on the agent
    assert all(p.read_bytes() != key for p in site.tmp.joinpath("pki").rglob("*") if p.is_file())

    # b1 uses enroll --wait: it polls until the operator approves it
    b1 = agent_home(site, "b1")
    waiting = subprocess.Popen(
        [
            *AGENT,
            "enroll",
            "--token",
            token(site, capsys),
            "--wait",
            "--poll-s",
            "0.2",
            "--config",
            str(b1),
        ],
        stdout=subprocess.PIPE,
    )
    wait_for(lambda: site.read(lambda r: r.agent("b1")) is not None)
    assert site.server("agents", "approve", "b1") == 0
    out, _ = waiting.communicate(timeout=30)
    assert waiting.returncode == 0
    assert b"MQTT certificate:" in out
    b_state = b1.parent / "state"
    certificate_requests_are_bound_to_the_agent_key(site)

    with (site.tmp / "a1.log").open("wb") as log:
        agent = subprocess.Popen([*AGENT, "run", "--config", str(a1)], stderr=log)
        try:
            wait_for(lambda: stored(site, "a1") >= 3, timeout=30)
        finally:
            agent.terminate()
            assert agent.wait(10) == 0

    # b1 publishing as a1, with b1's own certificate and key
    pki = site.broker.pki
    shutil.copy(b_state / "mqtt.crt", pki / "b1.crt")
    shutil.copy(b_state / "mqtt.key", pki / "b1.key")
    b_key = load_private_key(b1.parent / "agent.key")
    resent = SimAgent("b1", site="s1", key=b_key)  # b1's own message, sent on a1's topic
    forged = SimAgent("a1", site="s1", key=b_key)  # a1's name, b1's signature
    before = stored(site, "a1")
    with peer(site.broker, "b1") as b:
        spoofed = b.publish("camwarden/v1/s1/a1/report", resent.report()[1])
        strange = b.publish("camwarden/v1/s1/a1/report", forged.report()[1])
    if site.acl:
        assert (spoofed.value, strange.value) == (NOT_AUTHORIZED, NOT_AUTHORIZED)
    else:
        assert not spoofed.is_failure  # the broker let them in
        assert not strange.is_failure
        wait_for(lambda: sum(site.read(Repository.quarantine_reasons).values()) >= 2)
        reasons = site.read(Repository.quarantine_reasons)
        assert reasons.get("misaddressed") == 1, reasons
        assert reasons.get("unknown_key") == 1, reasons
    assert stored(site, "a1") == before


def stored(site: Site, agent_id: str) -> int:
    def count(repo: Repository) -> int:
        query = select(func.count()).select_from(Message).where(Message.agent_id == agent_id)
        with repo.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    return site.read(count)


def certificate_requests_are_bound_to_the_agent_key(site: Site) -> None:
    """Only a1's enrolled key, over a fresh single-use challenge for a1 and this purpose,
    fetches a1's certificate."""
    base = f"{site.url()}/api/v1/agents/a1"
    a_key = load_private_key(site.tmp / "a1" / "agent.key")
    b_key = load_private_key(site.tmp / "b1" / "agent.key")

    def ask(key: OKPKey, purpose: str = PURPOSE, challenge: str | None = None) -> httpx.Response:
        value = challenge or httpx.post(f"{base}/challenge").json()["challenge"]
        claims = {"purpose": purpose, "agent_id": "a1", "challenge": value}
        return httpx.post(
            f"{base}/certificate", json={"jws": sign(json.dumps(claims).encode(), key)}
        )

    assert ask(b_key).status_code == 403  # another agent's key
    assert ask(a_key, purpose="something else").status_code == 403
    used = httpx.post(f"{base}/challenge").json()["challenge"]
    assert ask(a_key, challenge=used).status_code == 200
    assert ask(a_key, challenge=used).status_code == 403  # a challenge serves once
