"""Alerts end to end: a real HTTP receiver and a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol import Finding
from server.alerts.worker import AlertWorker
from server.config import AlertsConfig, SmtpConfig
from server.domain.alerts import Alerts
from server.domain.scope import CLI
from server.storage import Repository
from tests.server.conftest import enroll
from tests.support.agents import SimAgent
from tests.support.mosquitto import free_port
from tests.web.conftest import World, camera, principal_of, process, report_with, scoped_as

pytestmark = pytest.mark.integration


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records requests and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append(Received(dict(self.headers), self.rfile.read(length)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mailbox:
    messages: list[Envelope] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, SmtpConfig]]:
    """A real SMTP server that requires STARTTLS, with its own CA for the client."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield (
            mailbox,
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                starttls=True,
                ca_file=str(cert),
                sender="cw@test.invalid",
            ),
        )
    finally:
        controller.stop()


def test_alerts_are_signed_routed_down_the_tree_and_deduplicated(
    repo: Repository,
    db_url: str,
    world: World,
    receiver: Receiver,
    smtp: tuple[Mailbox, SmtpConfig],
) -> None:
    mailbox, smtp_config = smtp
    root = scoped_as(repo, CLI)
    hook, secret = Alerts(root).create_alert_route(
        org_unit_id=world.agency_a,
        name="Agency A SOC",
        channel="webhook",
        target=receiver.url,
        kinds=["finding"],
    )
    assert secret is not None
    Alerts(root).create_alert_route(
        org_unit_id=world.province,
        name="Province CERT",
        channel="email",
        target="cert@province.invalid, soc@province.invalid",
        kinds=["finding", "silent"],
    )
    # the world's events were opened before these routes existed; a fresh critical finding now
    sim = SimAgent("agent-a3", "site-a")
    enroll(repo, sim)
    critical = Finding(
        code="auth.default_credential",
        check="default-credentials",
        status="fail",
        severity="critical",
        controls=["AUTH-01"],
        evidence={"entry": "hikvision-12345", "account": "admin", "interface": "http"},
    )
    process(repo, db_url, [report_with(sim, [camera("cam-9", [critical])])])
    worker = AlertWorker(AlertsConfig(smtp=smtp_config, backoff_s=0.01), repo)
    now = datetime.now(UTC)
    first = worker.run_once(now)
    # 1 new event; B's world route (a closed port) fails for B's three open findings
    assert (first.opened, first.sent, first.failed) == (1, 2, 3)

    # webhook: JSON, HMAC-SHA256 over timestamp "." body with the route's secret
    (request,) = receiver.requests
    timestamp = request.headers["X-Camwarden-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Camwarden-Signature"] == "sha256=" + expected.hexdigest()
    payload = json.loads(request.body)
    assert payload["event"] == "finding.opened"
    assert (payload["agent_id"], payload["camera_id"], payload["code"]) == (
        "agent-a3",
        "cam-9",
        "auth.default_credential",
    )
    assert payload["org"] == ["Province P", "Agency A", "System A", "site-a"]

    # e-mail through STARTTLS, to both recipients
    (mail,) = mailbox.messages
    assert sorted(mail.rcpt_tos) == ["cert@province.invalid", "soc@province.invalid"]
    assert isinstance(mail.content, bytes)
    parsed = message_from_bytes(mail.content)
    assert "agent-a3/cam-9" in str(parsed["Subject"])
    raw = parsed.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode()
    # the opening time as people read it, in the organisation's zone (the webhook keeps ISO)
    assert re.search(r"opened_at: \d\d/\d\d/\d{4} \d\d:\d\d \(Asia/Ho_Chi_Minh, UTC\+07:00\)", body)
    assert datetime.fromisoformat(payload["opened_at"]).tzinfo is not None

    # the same finding in the next report: no second alert
    process(repo, db_url, [report_with(sim, [camera("cam-9", [critical])])])
    again = worker.run_once(now + timedelta(seconds=30))
    assert (again.opened, again.sent) == (0, 0)
    assert len(receiver.requests) == 1

    # it closes, and a new episode alerts again
    process(repo, db_url, [report_with(sim, [camera("cam-9", [])])])
    closed = worker.run_once(now + timedelta(seconds=60))
    assert (closed.closed, closed.sent) == (1, 0)
    process(repo, db_url, [report_with(sim, [camera("cam-9", [critical])])])
    reopened = worker.run_once(now + timedelta(seconds=90))
    assert (reopened.opened, reopened.sent) == (1, 2)

    # agents going silent: one alert per agent and episode, by e-mail (the route asks for it)
    later = now + timedelta(hours=1)
    silent = worker.run_once(later)
    assert silent.opened == 3  # agent-a1, agent-b1, agent-a3 (approved, seen before)
    assert worker.run_once(later + timedelta(minutes=1)).opened == 0
    subjects = [str(message_from_bytes(m.content)["Subject"]) for m in mailbox.messages[2:]]  # type: ignore[arg-type]
    assert len(subjects) == 3
    assert all("silent" in s for s in subjects)
    assert len(receiver.requests) == 2  # the webhook route takes findings only

    # agency A's administrator sees its own alerts and routes only
    admin_a = scoped_as(repo, principal_of(repo, "admin-a"))
    assert {a.site for a in Alerts(admin_a).alerts()} == {"site-a"}
    assert [r.name for r in Alerts(admin_a).alert_routes()] == ["Agency A SOC"]
    assert hook.org_unit_id == world.agency_a


def test_failed_deliveries_are_retried_with_backoff_then_marked_failed(
    repo: Repository, world: World, receiver: Receiver
) -> None:
    root = scoped_as(repo, CLI)
    Alerts(root).delete_alert_route(world.route_b)  # only the route under test
    Alerts(root).create_alert_route(
        org_unit_id=world.agency_a, name="flaky", channel="webhook", target=receiver.url,
        kinds=["silent"],
    )  # fmt: skip
    receiver.status = 503
    config = AlertsConfig(max_attempts=3, backoff_s=60)
    worker = AlertWorker(config, repo)
    now = datetime.now(UTC) + timedelta(hours=1)  # agent-a1 is silent by then
    assert worker.run_once(now).failed == 1
    assert worker.run_once(now + timedelta(seconds=30)).failed == 0  # backing off (60 s)
    assert worker.run_once(now + timedelta(seconds=61)).failed == 1  # second attempt
    assert worker.run_once(now + timedelta(seconds=150)).failed == 0  # then 120 s
    assert worker.run_once(now + timedelta(seconds=182)).failed == 1  # third and last
    assert worker.run_once(now + timedelta(days=1)).failed == 0
    assert len(receiver.requests) == 3
    (alert,) = [
        a
        for a in Alerts(scoped_as(repo, CLI)).alerts()
        if a.kind == "silent" and a.site == "site-a"
    ]
    (delivery,) = [d for d in alert.deliveries if d.route == "flaky"]
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "HTTP 503 from the webhook"


def test_a_camera_that_could_not_be_audited_is_alerted(
    repo: Repository, db_url: str, world: World, receiver: Receiver
) -> None:
    root = scoped_as(repo, CLI)
    Alerts(root).delete_alert_route(world.route_b)  # only the route under test
    Alerts(root).create_alert_route(
        org_unit_id=world.agency_a, name="vault keepers", channel="webhook",
        target=receiver.url, kinds=["audit"],
    )  # fmt: skip
    sim = SimAgent("agent-a3", "site-a")
    enroll(repo, sim)
    refused = "identification failed: the camera refused the stored password"
    process(repo, db_url, [report_with(sim, [
        camera("cam-9", [], audit="login_failed", reason=refused),
        camera("cam-10", []),
    ])])  # fmt: skip
    worker = AlertWorker(AlertsConfig(), repo)
    first = worker.run_once(datetime.now(UTC))
    assert (first.opened, first.sent, first.failed) == (1, 1, 0)
    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert payload["event"] == "camera.not_audited"
    assert (payload["agent_id"], payload["camera_id"], payload["code"]) == (
        "agent-a3",
        "cam-9",
        "login_failed",
    )
    assert payload["severity"] == "high"
    assert payload["detail"]["reason"] == refused
