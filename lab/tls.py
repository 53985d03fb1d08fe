"""TLS for cameras with ``https = true``: certificates made with ``cryptography``.

Seeded weaknesses: self-signed (default) or signed by the lab CA, expired, RSA-1024 key, old
protocol versions (exactly the listed set, gaps included; TLS 1.0/1.1 need OpenSSL security
level 0), and one private key shared by every camera of a ``shared_key_group`` (a vendor-wide
default key).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from lab.config import TlsSpec

__all__ = ["TlsFactory"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# a version inside min..max but not listed is switched off on its own (the set is exact)
_OP_NO = {
    "TLSv1.1": ssl.OP_NO_TLSv1_1,
    "TLSv1.2": ssl.OP_NO_TLSv1_2,
}


class TlsFactory:
    """Makes server contexts; keeps the lab CA and the shared-group keys for one fleet."""

    def __init__(self) -> None:
        self._shared: dict[str, PrivateKey] = {}
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camwarden lab CA")])
        now = dt.datetime.now(dt.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self._dir = tempfile.TemporaryDirectory(prefix="camwarden-lab-tls-")

    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    def context(self, spec: TlsSpec, host: str, common_name: str) -> ssl.SSLContext:
        key = self._key(spec)
        cert = self._certificate(spec, key, host, common_name)
        base = Path(self._dir.name) / common_name
        base.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        base.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        versions = sorted(_VERSIONS[v] for v in spec.versions)
        if versions[0] < ssl.TLSVersion.TLSv1_2 or spec.weak_key:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # TLS 1.0/1.1 and the OP_NO_* options are deprecated: accepting old versions, and
            # refusing exactly the versions not listed, is the configuration being seeded
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
            for name, version in _VERSIONS.items():
                if versions[0] < version < versions[-1] and version not in versions:
                    ctx.options |= _OP_NO[name]
        ctx.load_cert_chain(base.with_suffix(".crt"), base.with_suffix(".key"))
        return ctx

    def close(self) -> None:
        self._dir.cleanup()

    def _key(self, spec: TlsSpec) -> PrivateKey:
        group = spec.shared_key_group
        if group and group in self._shared:
            return self._shared[group]
        key: PrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # the seeded weakness
            if spec.weak_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        if group:
            self._shared[group] = key
        return key

    def _certificate(
        self, spec: TlsSpec, key: PrivateKey, host: str, common_name: str
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        start, end = (
            (now - dt.timedelta(days=800), now - dt.timedelta(days=70))
            if spec.expired
            else (now - dt.timedelta(days=1), now + dt.timedelta(days=825))
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        issuer, signer = (
            (subject, key) if spec.self_signed else (self.ca_cert.subject, self._ca_key)
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address(host))]),
                critical=False,
            )
            .sign(signer, hashes.SHA256())
        )
