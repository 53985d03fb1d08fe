"""The organisation's escrow key and what the agent seals to it (JWE ECDH-ES+A256KW, A256GCM):
a rotated password (``password_rotate``), a snapshot of a camera's settings (``remediate``).

A command carries the key as an X25519 public JWK (``escrow_jwk``) and its RFC 7638 thumbprint
(``escrow_kid``); when ``[rotation] escrow_kid`` pins the organisation's key, no other is taken.
Both refusals come before any camera contact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from agent.commands.errors import StepFailed

ALG, ENC = "ECDH-ES+A256KW", "A256GCM"


def escrow_key(kid: str, jwk: str, pinned_kid: str | None) -> OKPKey:
    """The escrow public key of a command, checked (pure; see module doc)."""
    try:
        key = OKPKey.import_key(json.loads(jwk))
    except (ValueError, JoseError, TypeError) as exc:
        raise StepFailed(
            "escrow_key_mismatch", "escrow_jwk is not a JWK", status="rejected"
        ) from exc
    if key.as_dict().get("crv") != "X25519" or key.is_private:
        raise StepFailed(
            "escrow_key_mismatch", "escrow_jwk is not an X25519 public key", status="rejected"
        )
    if key.thumbprint() != kid:
        raise StepFailed(
            "escrow_key_mismatch", "escrow_jwk's thumbprint is not escrow_kid", status="rejected"
        )
    if pinned_kid is not None and kid != pinned_kid:
        raise StepFailed(
            "escrow_key_not_pinned",
            f"escrow key {kid} is not the organisation's {pinned_kid}",
            status="rejected",
        )
    return key


def seal(key: OKPKey, payload: Mapping[str, object], cty: str) -> str:
    """``payload`` as JSON, sealed to ``key``; ``cty`` names what it is."""
    header = {"alg": ALG, "enc": ENC, "kid": key.thumbprint(), "cty": cty}
    return jwe.encrypt_compact(header, json.dumps(payload).encode(), key)
