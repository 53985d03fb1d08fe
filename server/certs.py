"""Agent certificates for the broker's mutual TLS, issued when an agent is approved.

The agent makes its MQTT TLS key (EC P-256) itself and sends only the public key at enrollment
(``mqtt_public_key``, PEM); its private key never leaves the agent. When the agent is approved
(CLI ``agents approve``, the operator API or the dashboard: all go through
``Repository.set_status``), a certificate with CN = agent_id is issued from the CA in
``[pki] ca_dir`` (``server.pki``); the agent fetches it with a fresh challenge signed by its
enrolled Ed25519 key (``server.api``). Revoking puts every certificate issued to the agent on
the CA's revocation list ``<ca_dir>/crl.pem`` (the broker's ``crlfile``, in force once the broker
reloads: packaging/mosquitto/README.md) and removes the stored one, so no copy is handed out
again.

Files, in ``<ca_dir>/agents/``: ``<agent_id>.pub.pem`` (the request), ``<agent_id>.crt`` and
``<agent_id>.serials`` (the serial number of every certificate issued to it, hex, one a line).
They are files beside the CA rather than database rows so that the issuing stays next to the
CA key; a fleet with several collectors shares ``ca_dir``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.pki import CRL_FILE, CertificateAuthority, write_pem
from service.files import atomic_write

log = logging.getLogger(__name__)

MAX_PEM_BYTES = 1024


class BadPublicKey(ValueError):
    """The agent's MQTT public key is not a P-256 public key in PEM."""


def parse_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    if len(pem) > MAX_PEM_BYTES:
        raise BadPublicKey("the MQTT public key is too long")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise BadPublicKey("the MQTT public key is not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadPublicKey("the MQTT public key must be EC P-256")
    return key


class AgentCertificates:
    def __init__(self, ca_dir: Path) -> None:
        self.ca_dir = ca_dir
        self._dir = ca_dir / "agents"

    def request(self, agent_id: str, public_key: ec.EllipticCurvePublicKey) -> None:
        """Keep the agent's public key until it is approved (the latest request wins)."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        atomic_write(self._dir / f"{agent_id}.pub.pem", pem, 0o644)

    def issue(self, agent_id: str) -> bool:
        """Issue the certificate for a requested key; False if the agent sent none."""
        try:
            pem = (self._dir / f"{agent_id}.pub.pem").read_text()
        except FileNotFoundError:
            return False
        ca = CertificateAuthority.load(self.ca_dir)
        issued = ca.issue_agent_certificate(agent_id, public_key=parse_public_key(pem))
        with (self._dir / f"{agent_id}.serials").open("a") as log_file:
            log_file.write(f"{issued.certificate.serial_number:x}\n")  # before it is handed out
        write_pem(issued, self._dir / agent_id)
        log.info("issued the MQTT certificate of agent %s", agent_id)
        return True

    def revoke(self, agent_id: str) -> int:
        """Put every certificate issued to the agent on the CRL and withdraw the stored one.

        Returns how many serial numbers were revoked (0: none was ever issued, the CRL stays).
        """
        try:
            lines = (self._dir / f"{agent_id}.serials").read_text().split()
        except FileNotFoundError:
            lines = []
        serials = [int(line, 16) for line in lines]
        if serials:
            CertificateAuthority.load(self.ca_dir).update_crl(self.ca_dir, serials)
            log.warning(
                "revoked %d MQTT certificate(s) of agent %s in %s; the broker refuses them "
                "once it reloads (camwarden-broker-crl.path)",
                len(serials),
                agent_id,
                self.ca_dir / CRL_FILE,
            )
        (self._dir / f"{agent_id}.crt").unlink(missing_ok=True)
        return len(serials)

    def on_status(self, agent_id: str, status: str) -> None:
        """``Repository.status_listeners``: issue on approval, revoke on revocation."""
        if status == "approved":
            self.issue(agent_id)
        elif status == "revoked":
            self.revoke(agent_id)

    def certificate(self, agent_id: str) -> bytes | None:
        try:
            return (self._dir / f"{agent_id}.crt").read_bytes()
        except FileNotFoundError:
            return None

    def ca_certificate(self) -> bytes:
        return (self.ca_dir / "ca.crt").read_bytes()
