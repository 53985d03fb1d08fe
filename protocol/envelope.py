"""The signed envelope: JWS compact, alg EdDSA over Ed25519, kid = RFC 7638 thumbprint.

Verification order is fixed: size limit, ASCII/shape, protected header (small, bounded, no key
named twice), signature over the exact received bytes, and only then is the payload decoded.
Parsing the payload JSON is the caller's next step (``protocol.messages``), never done before the
signature holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import OKPKey
from joserfc.jws import CompactSignature, JWSRegistry, extract_compact
from joserfc.util import urlsafe_b64decode

from protocol.errors import BadSignature, MalformedMessage, OversizedMessage
from protocol.messages import unique_object

ALG = "EdDSA"
# the protected header ``typ`` of each kind of signed token (``CMD_TYP``: ``protocol.commands``)
MESSAGE_TYP: Final = "camwarden+jws"  # an agent's messages
ACK_TYP: Final = "camwarden-ack+jws"  # the collector's acknowledgements
FEED_TYP: Final = "camwarden-feed+jws"  # an advisory feed
MAX_FEED_BYTES: Final = 4 * 1024 * 1024  # the largest advisory feed an agent takes
DEFAULT_MAX_BYTES = 1024 * 1024
_MAX_HEADER_BYTES = 512
_ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})
_SIGNATURE_CHARS = 86  # 64 bytes of Ed25519 signature, base64url without padding
_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


class _Ed25519Only(EdDSAAlgorithm):
    # RFC 9864 deprecates the polymorphic "EdDSA" name in favour of "Ed25519". Our keys are
    # always Ed25519 (enforced at import), so the name is unambiguous; see docs/adr/0001.
    security_warning = ""


_REGISTRY = JWSRegistry(algorithms=[ALG])
_ALGORITHM = _Ed25519Only()
_REGISTRY.algorithms = {ALG: _ALGORITHM}  # this instance only; the library default is untouched
# joserfc refuses payloads over 128000 bytes by default; the size limit is the caller's
# ``max_bytes``, checked before joserfc sees the token (a status report of 20 audited cameras
# is about 150 kB), so the library must not apply a smaller one of its own
_REGISTRY.max_payload_length = 1 << 62

KeyResolver = Callable[[str], OKPKey]
_K = TypeVar("_K")
_V = TypeVar("_V")

# What depends only on the key or only on the protected header is checked once and remembered;
# the signature, over the exact received signing input, is checked for every message.
# Both caches are bounded and cleared when full; a miss only costs the full check again.
_CACHE_MAX = 4096
# the key objects resolvers returned, by identity, that joserfc accepted for the algorithm, with
# their RFC 7638 thumbprint: a key object is immutable, and resolvers return the same object for a
# kid again and again (the collector caches them)
_KEYS: dict[int, tuple[OKPKey, str]] = {}
# exact protected header segments that joserfc parsed and accepted and our policy allowed, with
# the kid and typ they name: an agent sends the same header bytes with every message
_HEADERS: dict[bytes, tuple[str, str]] = {}


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def _checked_thumbprint(key: OKPKey) -> str:
    """The kid of ``key`` once joserfc accepted it for EdDSA signatures (use, type, alg)."""
    cached = _KEYS.get(id(key))
    if cached is not None and cached[0] is key:
        return cached[1]
    try:
        _ALGORITHM.check_key(key)
    except JoseError as exc:
        raise BadSignature(f"signature check failed: {exc}") from exc
    value = key.thumbprint()
    _remember(_KEYS, id(key), (key, value))  # holding the key keeps its id from being reused
    return value


@dataclass(frozen=True, slots=True)
class Verified:
    """A JWS whose signature held: the kid it was checked against, the payload and its hash,
    and the ``typ`` its protected header names (empty when it names none)."""

    kid: str
    payload: bytes
    digest: str  # SHA-256 hex of the exact JWS bytes, the link in the report hash chain
    typ: str = ""


def sign(payload: bytes, key: OKPKey, typ: str = MESSAGE_TYP) -> str:
    header = {"alg": ALG, "kid": key.thumbprint(), "typ": typ}
    return jws.serialize_compact(header, payload, key, registry=_REGISTRY)


_HASH_PIECE = 2047  # hashlib releases the GIL for 2048 bytes and more


def digest(token: bytes | str) -> str:
    data = token.encode("ascii") if isinstance(token, str) else token
    h = hashlib.sha256()
    view = memoryview(data)
    for i in range(0, len(view), _HASH_PIECE):
        h.update(view[i : i + _HASH_PIECE])
    return h.hexdigest()


def _check_shape(token: bytes, max_bytes: int) -> None:
    if len(token) > max_bytes:
        raise OversizedMessage(f"message of {len(token)} bytes exceeds the {max_bytes} byte limit")
    # three non-empty base64url segments: deleting the alphabet leaves the two dots (a third
    # of the CPU of the equivalent regular expression on a 2 KB report)
    first, last = token.find(b"."), token.rfind(b".")
    if token.translate(None, _BASE64URL) != b".." or first == 0 or last - first == 1:
        raise MalformedMessage("not a JWS compact serialization (three base64url segments)")
    if first > _MAX_HEADER_BYTES:
        raise MalformedMessage("protected header too large")
    if len(token) - last - 1 != _SIGNATURE_CHARS:
        raise MalformedMessage("an Ed25519 signature is 64 bytes (86 base64url characters)")


def _extract(token: bytes) -> CompactSignature:
    try:
        compact = extract_compact(token, None, _REGISTRY)
        # joserfc's parser keeps the last of two equal keys: {"alg":"none","alg":"EdDSA"} would
        # pass our policy while another reader sees "none"; such a header is refused
        json.loads(urlsafe_b64decode(token[: token.index(b".")]), object_pairs_hook=unique_object)
    except (JoseError, ValueError) as exc:  # binascii.Error, JSON errors, DuplicateKey
        raise MalformedMessage(f"invalid JWS: {exc}") from exc
    return compact


def _check_header(header: Mapping[str, object]) -> str:
    """Our header policy, then joserfc's header checks; returns the kid."""
    if not set(header) <= _ALLOWED_HEADER:
        raise MalformedMessage("unexpected protected header fields")
    if header.get("alg") != ALG:
        raise MalformedMessage(f"alg must be {ALG}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 64:
        raise MalformedMessage("kid missing or invalid")
    try:
        _REGISTRY.check_header(dict(header))
    except JoseError as exc:
        raise MalformedMessage(f"invalid JWS header: {exc}") from exc
    return kid


def read_header(token: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Size and shape checks, then the protected header. Nothing is trusted yet."""
    _check_shape(token, max_bytes)
    header = _extract(token).headers()
    _check_header(header)
    return {str(k): str(v) for k, v in header.items()}


def unverified_payload(token: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The payload of ``token`` without checking its signature: for a token verified before it
    was stored (the collector's stored messages), or one inspected before it is signed off.
    Size, shape and header checks as ``verify``; never trust the result otherwise."""
    _check_shape(token, max_bytes)
    compact = _extract(token)
    _check_header(compact.headers())
    return compact.payload


def verify(token: bytes, resolve: KeyResolver, max_bytes: int = DEFAULT_MAX_BYTES) -> Verified:
    """Verify ``token`` against the key ``resolve(kid)`` returns; return the signed payload.

    ``resolve`` raises (UnknownKey, RevokedKey, ...) when the kid is not acceptable. A protected
    header is parsed and checked by joserfc and our policy the first time its exact bytes are
    seen; every message's sizes and payload are checked with joserfc's registry and decoder, and
    its signature by joserfc's algorithm over the exact received signing input.
    """
    _check_shape(token, max_bytes)
    header_segment, payload_segment, signature_segment = token.split(b".")
    known = _HEADERS.get(header_segment)
    if known is None:
        header = _extract(token).headers()
        known = _check_header(header), str(header.get("typ", ""))
        _remember(_HEADERS, header_segment, known)
    kid, typ = known
    try:
        _REGISTRY.validate_compact_value_size(token)
        _REGISTRY.validate_payload_size(payload_segment)
        payload = urlsafe_b64decode(payload_segment)
    except (JoseError, ValueError) as exc:  # binascii.Error is a ValueError
        raise MalformedMessage(f"invalid JWS: {exc}") from exc
    key = resolve(kid)
    if _checked_thumbprint(key) != kid:
        raise BadSignature("kid does not name the key it was checked against")
    try:
        signature = urlsafe_b64decode(signature_segment)
        valid = _ALGORITHM.verify(token[: -len(signature_segment) - 1], signature, key)
    except (JoseError, ValueError) as exc:
        raise BadSignature(f"signature check failed: {exc}") from exc
    if not valid:
        raise BadSignature("signature does not verify")
    return Verified(kid=kid, payload=payload, digest=digest(token), typ=typ)
