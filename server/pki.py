"""The broker's small certificate authority: EC P-256 certificates for mutual TLS on MQTT.

The broker (Mosquitto, ``packaging/mosquitto/camwarden.conf``) accepts only clients with a
certificate from this CA and takes the certificate's common name as the MQTT username; its ACL
then lets each agent publish and read under its own ``agent_id`` only. So the CN of an agent
certificate *is* the agent's authority on the broker, and this module refuses to issue one for
a name that is not a valid topic level or that is reserved for the collector.

Typical use, by the collector::

    ca = CertificateAuthority.create()                 # once, at set-up
    ca.save(pki_dir)
    write_pem(ca.issue_server_certificate(["mqtt.example.net"], []), pki_dir / "server")
    write_pem(ca.issue_collector_certificate(), pki_dir / "collector")
    ...
    ca = CertificateAuthority.load(pki_dir)
    issued = ca.issue_agent_certificate("cam-gw-0042", public_key=key_from_enrolment)
    ...
    ca.update_crl(pki_dir, [issued.certificate.serial_number])   # revoked

The certificate revocation list ``crl.pem`` (made empty by :meth:`CertificateAuthority.save`)
is the broker's ``crlfile``: Mosquitto refuses a client whose certificate it lists, and every
client when it has no CRL of this CA. Mosquitto 2.0 rereads it on SIGHUP (a reload); connections
made before stay up (packaging/mosquitto/README.md).

Keys are written with mode 0600 and every file is replaced atomically. Errors::

    ValueError
     └── InvalidIdentity      an agent_id or name the broker's ACL cannot safely carry
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.files import atomic_write

__all__ = [
    "AGENT_VALIDITY",
    "CA_VALIDITY",
    "COLLECTOR_IDENTITY",
    "CRL_FILE",
    "SERVER_VALIDITY",
    "CertificateAuthority",
    "InvalidIdentity",
    "Issued",
    "write_pem",
]

COLLECTOR_IDENTITY: Final = "camwarden-collector"
"""CN of the collector's client certificate; the broker ACL grants it the agents' channels."""
CA_VALIDITY: Final = timedelta(days=3650)
SERVER_VALIDITY: Final = timedelta(days=397)
AGENT_VALIDITY: Final = timedelta(days=30)
"""Short: an agent renews through enrolment, and a revoked agent's access ends by itself."""
CRL_FILE: Final = "crl.pem"
"""The CA's revocation list, beside ``ca.crt``; the broker's ``crlfile``."""
_CLOCK_SKEW: Final = timedelta(minutes=5)
# the same rule as a topic level in protocol.topics: no '/', '+', '#' or '%' can reach the ACL
_IDENTITY: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED: Final = frozenset({COLLECTOR_IDENTITY})


class InvalidIdentity(ValueError):
    """The name cannot be a certificate identity: not a topic level, or reserved."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and, when this CA generated it, its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        if self.key is None:
            raise ValueError("the private key was never here: the requester kept it")
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class CertificateAuthority:
    """A self-signed EC P-256 CA that issues the broker's, the collector's and agents' certs."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        if certificate.public_key() != key.public_key():
            raise ValueError("the CA key does not belong to the CA certificate")
        self.certificate = certificate
        self.key = key

    @classmethod
    def create(
        cls,
        name: str = "camwarden broker CA",
        *,
        now: datetime | None = None,
        validity: timedelta = CA_VALIDITY,
    ) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start = _now(now)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - _CLOCK_SKEW)
            .not_valid_after(start + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Read ``ca.crt`` and ``ca.key`` as written by :meth:`save`."""
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an EC private key")
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        """Write ``ca.crt`` (0644) and ``ca.key`` (0600) into ``directory``, and an empty
        ``crl.pem`` (0644) unless there is one: the broker refuses every client without it."""
        write_pem(Issued(self.certificate, self.key), directory / "ca")
        if not (directory / CRL_FILE).exists():
            self.update_crl(directory, ())

    def issue_crl(
        self, revoked: Mapping[int, datetime], *, number: int, now: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """A CRL of these serial numbers (with their revocation times), number ``number``.

        Its nextUpdate is the CA's own expiry: OpenSSL refuses every client once the CRL it
        loaded is past nextUpdate, and Mosquitto reads it only at start and reload, so a CRL that
        expires before the next revocation would lock the whole fleet out.
        """
        start = _now(now)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(start)
            .next_update(self.certificate.not_valid_after_utc)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        for serial, when in sorted(revoked.items()):
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256())

    def update_crl(
        self, directory: Path, serials: Iterable[int], *, now: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """Add ``serials`` to ``<directory>/crl.pem`` (created if missing), replacing the file
        atomically with the next CRL number; concurrent callers are serialised by a lock."""
        path = directory / CRL_FILE
        start = _now(now)
        with _locked(directory / ".crl.lock"):
            revoked: dict[int, datetime] = {}
            number = 0
            if path.exists():
                old = x509.load_pem_x509_crl(path.read_bytes())
                if not old.is_signature_valid(self.key.public_key()):
                    raise ValueError(f"{path} is not a CRL of this CA")
                revoked = {r.serial_number: r.revocation_date_utc for r in old}
                number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            for serial in serials:
                revoked.setdefault(serial, start)
            crl = self.issue_crl(revoked, number=number + 1, now=start)
            atomic_write(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return crl

    def issue_server_certificate(
        self,
        hostnames: Sequence[str],
        addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
        *,
        now: datetime | None = None,
        validity: timedelta = SERVER_VALIDITY,
    ) -> Issued:
        """The broker's TLS certificate, valid for these DNS names and IP addresses."""
        if not hostnames and not addresses:
            raise ValueError("a server certificate needs at least one DNS name or IP address")
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        names += [x509.IPAddress(a) for a in addresses]
        cn = hostnames[0] if hostnames else str(addresses[0])
        return self._issue(
            cn, ExtendedKeyUsageOID.SERVER_AUTH, names=names, now=now, validity=validity
        )

    def issue_agent_certificate(
        self,
        agent_id: str,
        *,
        public_key: ec.EllipticCurvePublicKey | None = None,
        now: datetime | None = None,
        validity: timedelta = AGENT_VALIDITY,
    ) -> Issued:
        """A client certificate with CN = ``agent_id`` (clientAuth only, short validity).

        Pass the agent's own ``public_key`` (from enrolment) so its private key never leaves the
        agent; without it a key pair is generated here and returned in :class:`Issued`.
        """
        _check_identity(agent_id)
        if agent_id in _RESERVED:
            raise InvalidIdentity(f"{agent_id!r} is reserved and cannot name an agent")
        return self._issue(
            agent_id,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            public_key=public_key,
            now=now,
            validity=validity,
        )

    def issue_collector_certificate(
        self,
        *,
        public_key: ec.EllipticCurvePublicKey | None = None,
        now: datetime | None = None,
        validity: timedelta = SERVER_VALIDITY,
    ) -> Issued:
        """The collector's client certificate, CN = :data:`COLLECTOR_IDENTITY`."""
        return self._issue(
            COLLECTOR_IDENTITY,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            public_key=public_key,
            now=now,
            validity=validity,
        )

    def _issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        *,
        names: Sequence[x509.GeneralName] = (),
        public_key: ec.EllipticCurvePublicKey | None = None,
        now: datetime | None,
        validity: timedelta,
    ) -> Issued:
        key = None
        if public_key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
        elif not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError(f"expected a P-256 public key, got {public_key.curve.name}")
        start = _now(now)
        not_after = min(start + validity, self.certificate.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - _CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(list(names)), critical=False
            )
        return Issued(builder.sign(self.key, hashes.SHA256()), key)


def write_pem(issued: Issued, stem: Path) -> tuple[Path, Path | None]:
    """Write ``<stem>.crt`` (0644) and, if there is a key, ``<stem>.key`` (0600), atomically.

    Returns the two paths (the second is None without a key). The key is written first, so a
    reader that sees the new certificate also finds its key.
    """
    key_path = None
    if issued.key is not None:
        key_path = stem.with_name(stem.name + ".key")
        atomic_write(key_path, issued.key_pem(), 0o600)
    cert_path = stem.with_name(stem.name + ".crt")
    atomic_write(cert_path, issued.certificate_pem(), 0o644)
    return cert_path, key_path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_identity(name: str) -> None:
    if not _IDENTITY.match(name):
        raise InvalidIdentity(
            f"{name!r} cannot be a certificate identity: use 1-64 of A-Z a-z 0-9 _ . - "
            "starting with a letter or digit"
        )


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now
