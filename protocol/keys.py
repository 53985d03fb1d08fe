"""Ed25519 keys as JWKs: generation, PEM form, public JWK and RFC 7638 thumbprint. Pure: the
sides read and write their key files (``service.files.write_private``)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from protocol.errors import MalformedMessage

PublicJWK = dict[str, str]


def generate_private_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519")


def private_pem(key: OKPKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM, the form each side stores in its key file."""
    raw = key.private_key
    if not isinstance(raw, Ed25519PrivateKey):
        raise TypeError("only Ed25519 private keys are supported")
    return raw.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def import_private_pem(pem: bytes) -> OKPKey:
    """The key of a PKCS#8 PEM as ``private_pem`` writes it; ``ValueError`` otherwise."""
    return OKPKey.import_key(pem)


def public_jwk(key: OKPKey) -> PublicJWK:
    """The public JWK (``kty``, ``crv``, ``x``) with ``kid`` set to its thumbprint."""
    jwk = {k: str(v) for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x")}
    jwk["kid"] = key.thumbprint()
    return jwk


def import_public_jwk(jwk: dict[str, Any] | str | bytes) -> OKPKey:
    """Import a public Ed25519 JWK (dict or JSON text); raise MalformedMessage otherwise."""
    try:
        data = json.loads(jwk) if isinstance(jwk, str | bytes) else dict(jwk)
        if data.get("kty") != "OKP" or data.get("crv") != "Ed25519" or "d" in data:
            raise MalformedMessage("expected a public Ed25519 OKP JWK")
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": data["x"]})
    except (KeyError, TypeError, ValueError, JoseError) as exc:
        raise MalformedMessage(f"not a public Ed25519 JWK: {exc}") from exc
    kid = data.get("kid")
    if kid is not None and kid != key.thumbprint():
        raise MalformedMessage("JWK kid is not its RFC 7638 thumbprint")
    return key


def thumbprint(key: OKPKey) -> str:
    return key.thumbprint()
