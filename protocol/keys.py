"""Ed25519 keys as JWKs: generation, PEM storage, public JWK and RFC 7638 thumbprint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from protocol.errors import MalformedMessage

PublicJWK = dict[str, str]


def generate_private_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519")


def write_private_key(path: Path, key: OKPKey) -> None:
    """Write ``key`` as PKCS#8 PEM, mode 0600; refuse to overwrite an existing file."""
    raw = key.private_key
    if not isinstance(raw, Ed25519PrivateKey):
        raise TypeError("only Ed25519 private keys are supported")
    pem = raw.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: Path) -> OKPKey:
    return OKPKey.import_key(path.read_bytes())


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
