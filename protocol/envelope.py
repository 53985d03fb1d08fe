"""The signed envelope: JWS compact, alg EdDSA over Ed25519, kid = RFC 7638 thumbprint.

Verification order is fixed: size limit, ASCII/shape, protected header (small, bounded),
signature over the exact received bytes, and only then is the payload decoded. Parsing the
payload JSON is the caller's next step (``protocol.messages``), never done before the signature
holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import OKPKey
from joserfc.jws import CompactSignature, JWSRegistry, extract_compact, validate_compact

from protocol.errors import BadSignature, MalformedMessage, OversizedMessage

ALG = "EdDSA"
DEFAULT_MAX_BYTES = 1024 * 1024
_MAX_HEADER_BYTES = 512
_ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})
_SIGNATURE_CHARS = 86  # 64 bytes of Ed25519 signature, base64url without padding
_COMPACT = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class _Ed25519Only(EdDSAAlgorithm):
    # RFC 9864 deprecates the polymorphic "EdDSA" name in favour of "Ed25519". Our keys are
    # always Ed25519 (enforced at import), so the name is unambiguous; see docs/adr/0001.
    security_warning = ""


_REGISTRY = JWSRegistry(algorithms=[ALG])
_REGISTRY.algorithms = {ALG: _Ed25519Only()}  # this instance only; the library default is untouched
# joserfc refuses payloads over 128000 bytes by default; the size limit is the caller's
# ``max_bytes``, checked before joserfc sees the token (a status report of 20 audited cameras
# is about 150 kB), so the library must not apply a smaller one of its own
_REGISTRY.max_payload_length = 1 << 62

KeyResolver = Callable[[str], OKPKey]

# RFC 7638 thumbprints of the key objects resolvers returned, by object identity: a key object is
# immutable, and resolvers return the same object for a kid again and again (the collector caches
# them), so the hash is computed once per key instead of once per message. Bounded.
_THUMBPRINTS: dict[int, tuple[OKPKey, str]] = {}
_THUMBPRINTS_MAX = 4096


def _thumbprint(key: OKPKey) -> str:
    cached = _THUMBPRINTS.get(id(key))
    if cached is not None and cached[0] is key:
        return cached[1]
    value = key.thumbprint()
    if len(_THUMBPRINTS) >= _THUMBPRINTS_MAX:
        _THUMBPRINTS.clear()
    _THUMBPRINTS[id(key)] = (key, value)  # holding the key keeps its id from being reused
    return value


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


def _check_shape(token: bytes, max_bytes: int) -> None:
    if len(token) > max_bytes:
        raise OversizedMessage(f"message of {len(token)} bytes exceeds the {max_bytes} byte limit")
    if not _COMPACT.fullmatch(token):
        raise MalformedMessage("not a JWS compact serialization (three base64url segments)")
    if token.index(b".") > _MAX_HEADER_BYTES:
        raise MalformedMessage("protected header too large")
    if len(token) - token.rindex(b".") - 1 != _SIGNATURE_CHARS:
        raise MalformedMessage("an Ed25519 signature is 64 bytes (86 base64url characters)")


def _extract(token: bytes) -> CompactSignature:
    try:
        return extract_compact(token, None, _REGISTRY)
    except (JoseError, ValueError) as exc:  # binascii.Error and JSON errors are ValueErrors
        raise MalformedMessage(f"invalid JWS: {exc}") from exc


def _check_header(header: Mapping[str, object]) -> str:
    if not set(header) <= _ALLOWED_HEADER:
        raise MalformedMessage("unexpected protected header fields")
    if header.get("alg") != ALG:
        raise MalformedMessage(f"alg must be {ALG}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 64:
        raise MalformedMessage("kid missing or invalid")
    return kid


def read_header(token: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Size and shape checks, then the protected header. Nothing is trusted yet."""
    _check_shape(token, max_bytes)
    header = _extract(token).headers()
    _check_header(header)
    return {str(k): str(v) for k, v in header.items()}


def verify(token: bytes, resolve: KeyResolver, max_bytes: int = DEFAULT_MAX_BYTES) -> Verified:
    """Verify ``token`` against the key ``resolve(kid)`` returns; return the signed payload.

    ``resolve`` raises (UnknownKey, RevokedKey, ...) when the kid is not acceptable. The JWS is
    parsed once by joserfc; its signature is checked over the exact received signing input.
    """
    _check_shape(token, max_bytes)
    obj = _extract(token)
    kid = _check_header(obj.headers())
    key = resolve(kid)
    if _thumbprint(key) != kid:
        raise BadSignature("kid does not name the key it was checked against")
    try:
        valid = validate_compact(obj, key, registry=_REGISTRY)
    except JoseError as exc:
        raise BadSignature(f"signature check failed: {exc}") from exc
    if not valid:
        raise BadSignature("signature does not verify")
    return Verified(kid=kid, payload=obj.payload, digest=digest(token))
