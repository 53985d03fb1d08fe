"""The signed envelope: JWS compact, alg EdDSA over Ed25519, kid = RFC 7638 thumbprint.

Verification order is fixed: size limit, ASCII/shape, protected header (small, bounded),
signature over the exact received bytes, and only then is the payload decoded. Parsing the
payload JSON is the caller's next step (``protocol.messages``), never done before the signature
holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry

from protocol.errors import BadSignature, MalformedMessage, OversizedMessage

ALG = "EdDSA"
DEFAULT_MAX_BYTES = 1024 * 1024
_MAX_HEADER_BYTES = 512
_ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
_SIGNATURE_BYTES = 64


class _Ed25519Only(EdDSAAlgorithm):
    # RFC 9864 deprecates the polymorphic "EdDSA" name in favour of "Ed25519". Our keys are
    # always Ed25519 (enforced at import), so the name is unambiguous; see docs/adr/0001.
    security_warning = ""


_REGISTRY = JWSRegistry(algorithms=[ALG])
_REGISTRY.algorithms = {ALG: _Ed25519Only()}  # this instance only; the library default is untouched

KeyResolver = Callable[[str], OKPKey]


@dataclass(frozen=True, slots=True)
class Verified:
    """A JWS whose signature held: the kid it was checked against, the payload and its hash."""

    kid: str
    payload: bytes
    digest: str  # SHA-256 hex of the exact JWS bytes, the link in the report hash chain


def sign(payload: bytes, key: OKPKey, typ: str = "camwarden+jws") -> str:
    header = {"alg": ALG, "kid": key.thumbprint(), "typ": typ}
    return jws.serialize_compact(header, payload, key, registry=_REGISTRY)


def digest(token: bytes | str) -> str:
    data = token.encode("ascii") if isinstance(token, str) else token
    return hashlib.sha256(data).hexdigest()


def _b64decode(segment: bytes) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise MalformedMessage("bad base64url in JWS")
    pad = b"=" * (-len(segment) % 4)
    try:
        return base64.urlsafe_b64decode(segment + pad)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("bad base64url in JWS") from exc


def read_header(token: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Size and shape checks, then the protected header only. The payload is not touched."""
    if len(token) > max_bytes:
        raise OversizedMessage(f"message of {len(token)} bytes exceeds the {max_bytes} byte limit")
    if not token.isascii():
        raise MalformedMessage("JWS compact serialization must be ASCII")
    if token.count(b".") != 2:
        raise MalformedMessage("not a JWS compact serialization (need three segments)")
    head = token.split(b".", 1)[0]
    if len(head) > _MAX_HEADER_BYTES:
        raise MalformedMessage("protected header too large")
    try:
        header = json.loads(_b64decode(head))
    except ValueError as exc:
        raise MalformedMessage("protected header is not JSON") from exc
    if not isinstance(header, dict) or not set(header) <= _ALLOWED_HEADER:
        raise MalformedMessage("unexpected protected header fields")
    if header.get("alg") != ALG:
        raise MalformedMessage(f"alg must be {ALG}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 64:
        raise MalformedMessage("kid missing or invalid")
    return {str(k): str(v) for k, v in header.items()}


def verify(token: bytes, resolve: KeyResolver, max_bytes: int = DEFAULT_MAX_BYTES) -> Verified:
    """Verify ``token`` against the key ``resolve(kid)`` returns; return the signed payload.

    ``resolve`` raises (UnknownKey, RevokedKey, ...) when the kid is not acceptable.
    """
    header = read_header(token, max_bytes)
    kid = header["kid"]
    key = resolve(kid)
    if key.thumbprint() != kid:
        raise BadSignature("kid does not name the key it was checked against")
    public = key.public_key
    if not isinstance(public, Ed25519PublicKey):
        raise BadSignature("the resolved key is not an Ed25519 key")
    # RFC 7515 section 5.2, done directly on the exact received bytes: the signing input is
    # everything before the last dot. Verification is a single call into ``cryptography``
    # (which releases the GIL), so several collector threads verify in parallel.
    signing_input, _, signature_b64 = token.rpartition(b".")
    signature = _b64decode(signature_b64)
    if len(signature) != _SIGNATURE_BYTES:
        raise MalformedMessage("an Ed25519 signature is 64 bytes")
    payload = _b64decode(signing_input.partition(b".")[2])
    try:
        public.verify(signature, signing_input)
    except InvalidSignature as exc:
        raise BadSignature("signature does not verify") from exc
    return Verified(kid=kid, payload=payload, digest=digest(token))
