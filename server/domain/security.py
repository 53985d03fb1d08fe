"""Password hashing (argon2id through argon2-cffi) and random secrets stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# verified against when the user does not exist, so both paths cost one argon2 verification
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 10


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"passwords need at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A fresh hash of a password that just verified (parameters changed since it was set)."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_secret() -> str:
    """An API token secret; the prefix keeps it from looking like an option and lets secret
    scanners recognise it."""
    return f"cwa_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
