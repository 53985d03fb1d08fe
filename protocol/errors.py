"""Errors raised by the wire contract.

ProtocolError                 every rejection of a message; ``reason`` is a stable metric label
 +-- OversizedMessage         larger than the configured limit (checked before any parsing)
 +-- MalformedMessage         not a compact JWS, not ASCII, bad base64 or JSON, wrong header
 +-- UnknownKey               no approved key for the sender / key id
 +-- RevokedKey               the sender's key was revoked
 +-- BadSignature             the signature does not verify over the received bytes
 +-- ReplayedMessage          the (agent, seq) pair or command nonce was used by other bytes
 +-- DuplicateMessage         the exact same JWS was already stored (QoS 1 redelivery, or a
                              replay of captured bytes): harmless, nothing changes
 +-- StaleMessage             issued_at outside the allowed window, or the message expired
 +-- BrokenChain              ``prev`` does not match the hash of the previous report
 +-- SchemaViolation          signed JSON that does not match the message schema
 |    +-- BadParams           a command's params are missing, of the wrong type or out of bounds
 +-- MisaddressedMessage      fields disagree with the topic, or a command is for someone else
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A message was rejected. ``reason`` is stable and used as a metric label."""

    reason = "protocol"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OversizedMessage(ProtocolError):
    reason = "oversized"


class MalformedMessage(ProtocolError):
    reason = "malformed"


class UnknownKey(ProtocolError):
    reason = "unknown_key"


class RevokedKey(ProtocolError):
    reason = "revoked_key"


class BadSignature(ProtocolError):
    reason = "bad_signature"


class ReplayedMessage(ProtocolError):
    reason = "replay"


class DuplicateMessage(ProtocolError):
    reason = "duplicate"


class StaleMessage(ProtocolError):
    reason = "stale"


class BrokenChain(ProtocolError):
    reason = "broken_chain"


class SchemaViolation(ProtocolError):
    reason = "schema"


class BadParams(SchemaViolation):
    """A command's params are missing, of the wrong type or beyond the bounds of its action."""

    reason = "bad_params"


class MisaddressedMessage(ProtocolError):
    reason = "misaddressed"


REASONS: tuple[str, ...] = tuple(
    cls.reason
    for cls in (
        OversizedMessage,
        MalformedMessage,
        UnknownKey,
        RevokedKey,
        BadSignature,
        ReplayedMessage,
        DuplicateMessage,
        StaleMessage,
        BrokenChain,
        SchemaViolation,
        MisaddressedMessage,
    )
)
