from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from protocol import (
    DEFAULT_MAX_BYTES,
    BadSignature,
    OversizedMessage,
    ProtocolError,
    UnknownKey,
    decode_agent_message,
    digest,
    generate_private_key,
    import_public_jwk,
    public_jwk,
    read_header,
    sign,
    verify,
)
from protocol.envelope import ACK_TYP, MESSAGE_TYP, unverified_payload
from protocol.errors import MalformedMessage
from tests.vectors import make_vectors

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "envelopes.json").read_text())
AGENT_PUB = import_public_jwk(VECTORS["agent_public_jwk"])


def resolve(kid: str) -> OKPKey:
    if kid != AGENT_PUB.thumbprint():
        raise UnknownKey(f"no approved key {kid}")
    return AGENT_PUB


def outcome(token: str) -> str:
    try:
        verified = verify(token.encode(), resolve)
        decode_agent_message(verified.payload)
    except ProtocolError as exc:
        return exc.reason
    return "valid"


def test_vectors_are_reproducible() -> None:
    path = Path(make_vectors.__file__).with_name("envelopes.json")
    assert path.read_text() == make_vectors.render()


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_golden_vectors(case: dict[str, str]) -> None:
    assert outcome(case["jws"]) == case["expect"]


@pytest.mark.parametrize(
    "case",
    [c for c in VECTORS["cases"] if c["expect"] in ("valid", "schema")],
    ids=lambda c: c["name"],
)
def test_independent_jose_implementation_verifies_our_envelopes(case: dict[str, str]) -> None:
    key = jc_jwk.JWK(**{k: v for k, v in VECTORS["agent_public_jwk"].items() if k != "kid"})
    token = jc_jws.JWS()
    token.deserialize(case["jws"])
    token.verify(key, alg="EdDSA")
    assert json.loads(token.objects["protected"])["kid"] == key.thumbprint()


def test_round_trip_and_kid_is_rfc7638_thumbprint() -> None:
    key = generate_private_key()
    jwk = public_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "kid"}
    assert jwk["kid"] == jc_jwk.JWK(kty="OKP", crv="Ed25519", x=jwk["x"]).thumbprint()
    token = sign(b'{"a":1}', key).encode()
    result = verify(token, lambda kid: import_public_jwk(jwk))
    assert result.payload == b'{"a":1}'
    assert result.kid == jwk["kid"]
    assert result.digest == digest(token)


def test_size_limit_is_enforced_before_parsing() -> None:
    huge = b"A" * (10 * 1024 * 1024)
    calls: list[str] = []

    def never(kid: str) -> OKPKey:
        calls.append(kid)
        raise AssertionError("must not resolve keys of oversized input")

    with pytest.raises(OversizedMessage):
        verify(huge, never)
    assert calls == []


def test_payloads_up_to_the_size_limit_verify() -> None:
    """joserfc's own default (128000 bytes of payload) is not a second, smaller limit: a status
    report of 20 audited cameras is about 150 kB."""
    key = generate_private_key()
    payload = json.dumps({"cameras": ["x" * 1000] * 600}).encode()
    token = sign(payload, key).encode()
    assert len(payload) > 128000
    assert len(token) < DEFAULT_MAX_BYTES
    assert verify(token, lambda _kid: key).payload == payload
    with pytest.raises(OversizedMessage):
        verify(token, lambda _kid: key, max_bytes=len(token) - 1)


@pytest.mark.parametrize(
    "token",
    [b"\xff\xfe.\x00.\x01", "é.a.b".encode(), b"a.b", b"!!!.a.b", b"e30.e30.AA"],
)
def test_garbage_is_malformed(token: bytes) -> None:
    with pytest.raises(MalformedMessage):
        read_header(token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h, p, s: b"." + p + b"." + s,  # empty header
        lambda h, p, s: h + b".." + s,  # empty payload
        lambda h, p, s: h + b"." + p + b"." + s + b".",  # four segments
        lambda h, p, s: h + b"." + p + s,  # two segments
        lambda h, p, s: h + b"." + p[:5] + b"=" + p[6:] + b"." + s,  # padding inside
        lambda h, p, s: h + b"." + p[:5] + b"+" + p[6:] + b"." + s,  # base64, not base64url
        lambda h, p, s: h + b"." + p + b"." + s + b"\n",  # a trailing newline
        lambda h, p, s: b" " + h + b"." + p + b"." + s,
    ],
)
def test_only_three_non_empty_base64url_segments_pass_the_shape_check(
    mangle: Callable[[bytes, bytes, bytes], bytes],
) -> None:
    key = generate_private_key()
    head, payload, sig = sign(b'{"a":1}', key).encode().split(b".")
    assert verify(b".".join((head, payload, sig)), lambda _kid: key).payload == b'{"a":1}'
    with pytest.raises(MalformedMessage, match="three base64url segments"):
        verify(mangle(head, payload, sig), lambda _kid: key)


def test_signature_with_right_kid_but_wrong_key_is_rejected() -> None:
    victim, attacker = generate_private_key(), generate_private_key()
    token = sign(b"{}", attacker)
    _, payload, sig = token.split(".")
    good_head = sign(b"{}", victim).split(".")[0]
    with pytest.raises(BadSignature):
        verify(
            f"{good_head}.{payload}.{sig}".encode(),
            lambda kid: import_public_jwk(public_jwk(victim)),
        )


def test_private_jwk_is_refused_as_public_key() -> None:
    key = generate_private_key()
    with pytest.raises(MalformedMessage):
        import_public_jwk(key.as_dict(private=True))


def test_a_known_header_checks_every_message_in_full() -> None:
    """Header bytes seen before skip only the header parsing: the key is resolved again, and the
    payload and the signature of each message are checked."""
    key = generate_private_key()
    pub = import_public_jwk(public_jwk(key))
    head, payload, sig = sign(b'{"a":1}', key).split(".")
    assert verify(f"{head}.{payload}.{sig}".encode(), lambda kid: pub).payload == b'{"a":1}'
    other = sign(b'{"a":2}', key).split(".")[1]
    with pytest.raises(BadSignature):
        verify(f"{head}.{other}.{sig}".encode(), lambda kid: pub)

    def revoked(kid: str) -> OKPKey:
        raise UnknownKey(kid)

    with pytest.raises(UnknownKey):
        verify(f"{head}.{payload}.{sig}".encode(), revoked)
    with pytest.raises(MalformedMessage):  # one base64url character is no byte
        verify(f"{head}.A.{sig}".encode(), lambda kid: pub)
    with pytest.raises(BadSignature):  # same header, another agent's key
        verify(f"{head}.{payload}.{sig}".encode(), lambda kid: AGENT_PUB)


def test_joserfc_header_checks_apply() -> None:
    header = {"alg": "EdDSA", "kid": AGENT_PUB.thumbprint(), "typ": 5}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(MalformedMessage, match="typ"):
        verify(f"{head}.e30.{'A' * 86}".encode(), resolve)


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4094, 4095, 150_000])
def test_digest_is_sha256_of_the_exact_bytes_at_any_size(size: int) -> None:
    data = (b"eyJhbGciOiJFZERTQSJ9." * (size // 21 + 1))[:size]
    assert digest(data) == hashlib.sha256(data).hexdigest()
    assert digest(data.decode("ascii")) == hashlib.sha256(data).hexdigest()


def test_a_header_naming_a_key_twice_is_malformed_before_any_key_lookup() -> None:
    key = generate_private_key()
    token = sign(b"{}", key)
    _, payload, signature = token.split(".")
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "EdDSA", "kid": key.thumbprint()}).encode()[:-1] + b', "kid": "x"}'
    )
    forged = header.rstrip(b"=") + f".{payload}.{signature}".encode()
    with pytest.raises(MalformedMessage, match="'kid' appears twice"):
        read_header(forged)

    def never(kid: str) -> OKPKey:
        raise AssertionError(f"looked up {kid}")

    with pytest.raises(MalformedMessage, match="appears twice"):
        verify(forged, never)


def test_verified_carries_the_header_typ() -> None:
    key = generate_private_key()
    token = sign(b'{"a":1}', key, typ=ACK_TYP).encode()
    assert verify(token, lambda _: key).typ == ACK_TYP
    assert verify(token, lambda _: key).typ == ACK_TYP  # from the header cache too
    assert verify(sign(b"{}", key).encode(), lambda _: key).typ == MESSAGE_TYP


def test_unverified_payload_reads_a_stored_token_and_checks_its_shape_only() -> None:
    key = generate_private_key()
    token = sign(b'{"a":1}', key).encode()
    assert unverified_payload(token) == b'{"a":1}'
    forged = token[: -len(token.split(b".")[2])] + b"A" * 86  # another signature: not checked
    assert unverified_payload(forged) == b'{"a":1}'
    with pytest.raises(MalformedMessage):
        unverified_payload(b"e30." + token.split(b".", 1)[1])  # a header without alg
    with pytest.raises(OversizedMessage):
        unverified_payload(token, max_bytes=len(token) - 1)
