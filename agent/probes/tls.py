"""TLS handshake scan (COM-02, COM-03): which protocol versions a server accepts, and its
certificate.

One handshake per version with Python's ``ssl``, each pinned to that version and at OpenSSL
security level 0, so that the scan can *see* what a hardened client would refuse (TLS 1.0,
RSA-1024). The chain is not verified: the facts are reported, not trusted. The certificate is
parsed with ``cryptography`` (imported on use).
"""

from __future__ import annotations

import functools
import hashlib
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from agent.probes._net import camera_error, connected
from agent.vendors.base import BadResponse, Unreachable

__all__ = ["VERSIONS", "Certificate", "TlsReport", "parse_certificate", "scan"]

VERSIONS: Final = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

_CAN_TRY: Final = {
    "TLSv1": ssl.HAS_TLSv1,
    "TLSv1.1": ssl.HAS_TLSv1_1,
    "TLSv1.2": ssl.HAS_TLSv1_2,
    "TLSv1.3": ssl.HAS_TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class Certificate:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key_type: str  # "RSA", "EC", "Ed25519", ...
    key_bits: int
    self_signed: bool
    spki_sha256: str  # hex SHA-256 of the DER SubjectPublicKeyInfo
    signature_hash: str | None  # "sha256", ... (None for Ed25519)


@dataclass(frozen=True, slots=True)
class TlsReport:
    accepted: dict[str, bool | None]  # version -> accepted; None: this client cannot try it
    ciphers: dict[str, str]  # version -> cipher the server chose
    certificate: Certificate


@functools.cache
def _context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """One client context per version, shared by every scan (each costs OpenSSL memory)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # facts are collected, not trusted (module doc)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: offering them is the test
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


async def _handshake(
    host: str, port: int, version: ssl.TLSVersion, timeout_s: float
) -> tuple[str, bytes] | None:
    """(cipher, DER certificate) when the server completes a handshake at ``version``."""
    try:
        async with connected(host, port, timeout_s, tls=_context(version)) as (_, writer):
            tls = writer.get_extra_info("ssl_object")
            cipher = writer.get_extra_info("cipher")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
            if der is None:
                raise BadResponse("the server sent no certificate")
            return (cipher[0] if cipher else "", der)
    except BadResponse as exc:
        if exc.detail.startswith("TLS error"):
            return None  # the server refused this version (alert or closed handshake)
        raise
    except Unreachable as exc:
        if exc.detail == "connection refused":
            raise
        return None  # reset during the handshake: the usual refusal of old versions


def parse_certificate(der: bytes) -> Certificate:
    from cryptography import x509  # noqa: PLC0415  # ~5 MB, only when a scan runs
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        Encoding,
        PublicFormat,
    )

    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        algorithm = cert.signature_hash_algorithm
        subject = cert.subject.rfc4514_string()[:200]  # a name that does not decode: ValueError
        issuer = cert.issuer.rfc4514_string()[:200]
        self_signed = cert.issuer == cert.subject
    # a curve OpenSSL does not know (UnsupportedAlgorithm), a version other than 1 or 3
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise BadResponse(f"unparsable certificate: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = f"EC-{key.curve.name}", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key_type, bits = type(key).__name__.removesuffix("PublicKey"), 256
    else:
        key_type, bits = type(key).__name__, 0
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Certificate(
        subject=subject,
        issuer=issuer,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_bits=bits,
        self_signed=self_signed,
        spki_sha256=hashlib.sha256(spki).hexdigest(),
        signature_hash=algorithm.name if algorithm is not None else None,
    )


async def scan(host: str, port: int, *, timeout_s: float) -> TlsReport:
    """Try every version in turn (one camera is never hit in parallel).

    ``Unreachable`` if nothing listens; ``BadResponse`` if no version completes a handshake.
    """
    accepted: dict[str, bool | None] = {}
    ciphers: dict[str, str] = {}
    der: bytes | None = None
    for name, version in VERSIONS.items():
        if not _CAN_TRY[name]:
            accepted[name] = None
            continue
        try:
            result = await _handshake(host, port, version, timeout_s)
        except (OSError, TimeoutError) as exc:
            raise camera_error(exc) from exc
        accepted[name] = result is not None
        if result is not None:
            ciphers[name], der = result
    if der is None:
        raise BadResponse("no TLS version completed a handshake")
    return TlsReport(accepted, ciphers, parse_certificate(der))  # microseconds: no thread
