"""The agent's MQTT client certificate for the broker's mutual TLS.

The TLS key (EC P-256) is made here, on the agent, at enrollment (``<state_dir>/mqtt.key``, mode
0600) and only its public key goes to the collector (``mqtt_public_key``). Once an operator
approves the agent, the collector issues a certificate with CN = agent_id; the agent fetches it
by signing a fresh challenge from the collector with its Ed25519 identity key:

    POST <server>/api/v1/agents/<id>/challenge    -> {"challenge": ...}
    POST <server>/api/v1/agents/<id>/certificate  {"jws": sign({purpose, agent_id, challenge})}
                                                   -> 200 {"certificate", "ca"} | 409 pending

``camwarden-agent enroll --wait`` polls until the certificate is there; ``camwarden-agent
certificate`` fetches it again (renewal: agent certificates are valid for 30 days).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import OKPKey

from agent.config import AgentConfig, TlsFiles
from agent.errors import AgentError, EnrollmentError
from agent.state import atomic_write
from agent.trust.keyfiles import check_private_file
from protocol.envelope import sign

log = logging.getLogger(__name__)

PURPOSE = "camwarden-mqtt-certificate"


def tls_key(path: Path) -> str:
    """The public half (PEM) of the MQTT TLS key at ``path``, made first if missing."""
    if not path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("created the MQTT TLS key %s", path)
    check_private_file(path, "MQTT TLS key")
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    except ValueError as exc:
        raise AgentError(f"{path} is not a PEM private key") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise AgentError(f"{path} is not an EC private key")
    public = loaded.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def store(files: TlsFiles, certificate: str, ca: str) -> None:
    atomic_write(files.ca, ca.encode(), 0o644)
    atomic_write(files.cert, certificate.encode(), 0o644)
    log.info("stored the MQTT certificate %s", files.cert)


def fetch(server: str, agent_id: str, key: OKPKey, timeout: float = 10.0) -> tuple[str, str] | None:
    """The (certificate, ca) PEMs once the agent is approved; None while it is not yet."""
    import httpx  # noqa: PLC0415  # only enrollment needs it; keeps the daemon small

    base = f"{server.rstrip('/')}/api/v1/agents/{agent_id}"
    try:
        answer = httpx.post(f"{base}/challenge", timeout=timeout)
        answer.raise_for_status()
        claims = {"purpose": PURPOSE, "agent_id": agent_id, "challenge": answer.json()["challenge"]}
        token = sign(json.dumps(claims).encode(), key)
        answer = httpx.post(f"{base}/certificate", json={"jws": token}, timeout=timeout)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise EnrollmentError(f"cannot fetch the MQTT certificate from {base}: {exc}") from exc
    if answer.status_code == 409:
        return None
    if answer.status_code != 200:
        raise EnrollmentError(
            f"the collector refused the certificate request: HTTP {answer.status_code}"
        )
    body = answer.json()
    return str(body["certificate"]), str(body["ca"])


def wait(
    server: str, config: AgentConfig, key: OKPKey, files: TlsFiles, *, poll_s: float, limit_s: float
) -> None:
    """Poll until the certificate is issued (the agent approved), then store it."""
    deadline = time.monotonic() + limit_s
    while (found := fetch(server, config.agent_id, key)) is None:
        if time.monotonic() > deadline:
            raise EnrollmentError(f"no certificate after {limit_s:.0f} s: is the agent approved?")
        time.sleep(poll_s)
    store(files, *found)


def tls_files(config: AgentConfig) -> TlsFiles | None:
    """``config.mqtt_tls`` checked: files present, the key readable by this service only."""
    files = config.mqtt_tls
    if files is None:
        return None
    for path, what in ((files.ca, "broker CA"), (files.cert, "MQTT certificate")):
        if not path.is_file():
            raise AgentError(
                f"[mqtt] tls is on but the {what} {path} is missing: "
                "run camwarden-agent enroll --wait (or certificate) once the agent is approved"
            )
    check_private_file(files.key, "MQTT TLS key")
    return files
