"""Enrollment as ``enroll`` and ``setup`` both run it, and the collector's HTTPS trust."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from joserfc.jwk import OKPKey

from agent import certificate
from agent.config import AgentConfig
from agent.identity import enroll

__all__ = ["enroll_agent", "trust_collector"]


def trust_collector(config: AgentConfig) -> None:
    """With ``collector_ca_file``, HTTPS trusts that CA only: httpx, urllib3 and ssl's default
    contexts all read ``SSL_CERT_FILE``, and the audit worker inherits it."""
    if config.collector_ca_file:
        os.environ["SSL_CERT_FILE"] = config.collector_ca_file


def enroll_agent(
    config: AgentConfig,
    key: OKPKey,
    server: str,
    token: str | None,
    *,
    poll_s: float,
    wait_s: float,
    say: Callable[[str], object],
    progress: Callable[[float], None] | None = None,
) -> None:
    """Enroll with ``token`` (None: enrolled before), with the MQTT TLS public key when
    ``[mqtt] tls``; then, if ``wait_s``, wait that long for approval and the certificate."""
    files = config.mqtt_tls
    if token is not None:
        answer = enroll(
            server,
            token,
            agent_id=config.agent_id,
            site=config.site,
            key=key,
            hostname=socket.gethostname(),
            state_dir=config.state_path,
            mqtt_public_key=certificate.tls_key(files.key) if files else None,
        )
        say(f"enrolled {config.agent_id} at site {config.site}: {answer['status']}")
        if files is not None and answer.get("mqtt_certificate"):
            certificate.store(files, answer["mqtt_certificate"], answer["mqtt_ca"])
    if files is not None and not files.cert.exists() and wait_s > 0:
        say("waiting for approval and the MQTT certificate")
        certificate.wait(
            server, config, key, files, poll_s=poll_s, limit_s=wait_s, progress=progress
        )
    if files is not None and files.cert.exists():
        say(f"MQTT certificate: {files.cert}")
